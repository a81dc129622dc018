"""``hippo index``: build an index from a corpus."""

from __future__ import annotations

import argparse
import sys

from hippo.cli.common import add_config_args, print_json, progress_bar, resolve_config, set_threads
from hippo.indexer import build_index


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "index", help="index a corpus into a knowledge graph",
        description="Index CORPUS (JSON list of {title, text}, .jsonl of {id?, title?, text}, or a folder of "
        ".txt/.md files) into the index directory --out. OpenIE is offline spaCy unless --openie gives "
        "a HippoRAG OpenIE results file.",
    )
    p.add_argument("corpus", help="corpus file or folder")
    p.add_argument("--out", required=True, metavar="DIR", help="index directory to write")
    p.add_argument("--openie", metavar="FILE", help="HippoRAG OpenIE results file (implies --extractor precomputed)")
    p.add_argument("--extractor", choices=["spacy", "precomputed"], help="OpenIE extractor (default: spacy)")
    p.add_argument("--json", action="store_true", help="print counts and timings as JSON")
    add_config_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = resolve_config(args)
    if args.extractor:
        config = config.replace({"extract.extractor": args.extractor}).validate()
    set_threads(config.runtime.threads)
    report = build_index(args.corpus, args.out, config, openie=args.openie, progress=progress_bar())
    if args.json:
        print_json(report.to_dict())
        return 0
    c, t = report.counts, report.timings_s
    e = c["edges"]
    print(
        f"indexed {c['passages']} passages into {report.path}: {c['entities']} entities, {c['facts']} facts, "
        f"edges relation {e['relation']} / context {e['context']} / synonym {e['synonym']}"
    )
    print(
        f"time: extract {t['extract']:.1f}s, embed {t['embed']:.1f}s, graph {t['graph']:.2f}s, "
        f"write {t['write']:.2f}s, total {t['total']:.1f}s"
    )
    for key, value in report.notes.items():
        print(f"note: {key}: {value}", file=sys.stderr)
    return 0
