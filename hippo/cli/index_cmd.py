"""``hippo index``: build an index from a corpus, or add a corpus to an existing index."""

from __future__ import annotations

import argparse
import sys

from hippo.cli.common import add_config_args, print_json, progress_bar, set_threads
from hippo.cli.llm_args import add_llm_args, needs_llm_endpoint, run_llm_index, with_llm_args
from hippo.config import load_config
from hippo.indexer import BuildReport, build_index, saved_config


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "index", help="index a corpus into a knowledge graph, or add it to an existing index",
        description="Index CORPUS (JSON list of {title, text}, .jsonl of {id?, title?, text}, or a folder of "
        ".txt/.md files) into the index directory --out. If --out already holds an index, the passages it "
        "lacks are added as one new segment (only they are extracted and embedded); with --update, passages "
        "whose id is already there with other text are replaced. OpenIE is offline spaCy unless --openie gives "
        "a HippoRAG OpenIE results file. An interrupted run leaves the previous index readable; run it again "
        "to finish (work done is reused).",
    )
    p.add_argument("corpus", help="corpus file or folder")
    p.add_argument("--out", required=True, metavar="DIR", help="index directory to write or add to")
    p.add_argument("--openie", metavar="FILE", help="HippoRAG OpenIE results file (implies --extractor precomputed)")
    p.add_argument("--extractor", choices=["spacy", "precomputed", "llm"], help="OpenIE extractor (default: spacy; llm: HippoRAG 2's LLM OpenIE)")
    p.add_argument("--update", action="store_true", help="replace passages whose id is in the index with other text")
    p.add_argument("--rebuild", action="store_true",
                   help="ignore the index in --out: build CORPUS from scratch (any settings), replacing it")
    p.add_argument("--json", action="store_true", help="print counts, timings and changes as JSON")
    add_config_args(p)
    add_llm_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # An existing index's saved config is the base: its index-time settings carry over.
    config = load_config(args.config, args.overrides, base=None if args.rebuild else saved_config(args.out))
    if args.extractor:
        config = config.replace({"extract.extractor": args.extractor}).validate()
    set_threads(config.runtime.threads)
    config = with_llm_args(config, args)
    if needs_llm_endpoint(config):  # LLM OpenIE or the openai: embedder
        return run_llm_index(args, config)
    report = build_index(args.corpus, args.out, config, openie=args.openie, progress=progress_bar(),
                         update=args.update, rebuild=args.rebuild)
    if args.json:
        print_json(report.to_dict())
        return 0
    print_summary(report)
    return 0


def print_summary(report: BuildReport) -> None:
    """The human-readable lines ``hippo index`` and ``hippo delete`` print."""
    c, t, ch = report.counts, report.timings_s, report.changes
    e = c["edges"]
    if not ch:
        print(f"nothing to do: {report.path} already holds these passages ({c['passages']} passages)")
        return
    p = ch["passages"]
    what = {"build": f"indexed {p['added']} passages into", "add": f"added {p['added']} passages to",
            "rebuild": f"re-indexed {p['added']} passages from scratch into",
            "update": f"added {p['added']} and replaced {p['updated']} passages in",
            "delete": f"deleted {p['removed']} passages from"}[ch["operation"]]
    print(
        f"{what} {report.path} (generation {ch['generation']}, segment {ch['segment'].get('name', '?')}): "
        f"{c['passages']} passages, {c['entities']} entities, {c['facts']} facts, "
        f"edges relation {e['relation']} / context {e['context']} / synonym {e['synonym']}"
    )
    reused = ch.get("reused", {})
    if (p["unchanged"] or p["duplicates"]) and ch["operation"] != "delete":
        print(f"skipped {p['unchanged']} passages already indexed" + (f" and {p['duplicates']} duplicates" if p["duplicates"] else ""))
    if reused.get("extractions") or reused.get("vectors"):
        print(f"resumed: reused {reused['extractions']} extractions and {reused['vectors']} vectors of an interrupted run")
    parts = [f"{k} {v:.2f}s" for k, v in t.items() if k != "total"]
    print(f"time: {', '.join(parts)}, total {t.get('total', 0):.1f}s "
          f"({ch.get('extracted', 0)} passages extracted, {ch.get('embedded', 0)} strings embedded)")
    for key, value in report.notes.items():
        print(f"note: {key}: {value}", file=sys.stderr)
