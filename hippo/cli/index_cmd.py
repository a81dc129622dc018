"""``hippo index``: build an index from a corpus or a folder of documents, or add to one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hippo.cli.common import add_config_args, print_json, progress_bar, set_threads
from hippo.cli.llm_args import add_llm_args, needs_llm_endpoint, run_llm_index, with_llm_args
from hippo.config import load_config
from hippo.errors import ConfigError
from hippo.indexer import BuildReport, build_index, saved_config


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "index", help="index a corpus into a knowledge graph, or add it to an existing index",
        description="Index CORPUS into the index directory --out. CORPUS is a passage corpus (a JSON list of "
        "{title, text} or a .jsonl of {id?, title?, text}: each record is one passage), or documents: a folder "
        "(read recursively: .md .txt .html .htm .pdf .json .jsonl) or one .md/.txt/.html/.pdf file, chunked "
        "at headings and sentences into passages that cite their document. If --out already holds an index, "
        "only what it lacks is extracted and embedded: re-running over a folder re-indexes the documents that "
        "changed (and with --sync deletes those whose files are gone). Files that cannot be read are skipped "
        "and listed. OpenIE is offline spaCy unless --openie gives a HippoRAG OpenIE results file. "
        "An interrupted run leaves the previous index readable; run it again to finish (work done is reused).",
    )
    p.add_argument("corpus", help="corpus file, document file, or folder of documents")
    p.add_argument("--out", required=True, metavar="DIR", help="index directory to write or add to")
    p.add_argument("--openie", metavar="FILE", help="HippoRAG OpenIE results file (implies --extractor precomputed)")
    p.add_argument("--extractor", choices=["spacy", "precomputed", "llm"], help="OpenIE extractor (default: spacy; llm: HippoRAG 2's LLM OpenIE)")
    p.add_argument("--update", action="store_true", help="replace passages whose id is in the index with other text")
    p.add_argument("--rebuild", action="store_true",
                   help="ignore the index in --out: build CORPUS from scratch (any settings) as its next generation")
    p.add_argument("--documents", action="store_true",
                   help="read a .json/.jsonl file as documents {id?, title?, text, metadata?} to chunk, not as passages")
    p.add_argument("--sync", action="store_true", help="documents: also delete the documents whose files are gone")
    p.add_argument("--json", action="store_true", help="print counts, timings and changes as JSON")
    add_config_args(p)
    add_llm_args(p)
    p.set_defaults(func=run)


def is_passage_corpus(path: str, documents: bool = False) -> bool:
    """Whether ``path`` is read as passages as given (a HippoRAG corpus), not chunked as documents."""
    p = Path(path)
    return not documents and p.suffix.lower() in (".json", ".jsonl", ".ndjson") and not p.is_dir()


def run(args: argparse.Namespace) -> int:
    # An existing index's saved config is the base: its index-time settings carry over.
    config = load_config(args.config, args.overrides, base=None if args.rebuild else saved_config(args.out))
    if args.extractor:
        config = config.replace({"extract.extractor": args.extractor}).validate()
    set_threads(config.runtime.threads)
    config = with_llm_args(config, args)
    if not is_passage_corpus(args.corpus, args.documents):
        from hippo.cli.index_docs import run_documents

        return run_documents(args, config)
    if args.sync:
        raise ConfigError("--sync applies to folders of documents; to remove passages use `hippo delete DIR --ids`")
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
    what = {"build": f"indexed {p['added']} passages into", "insert": f"added {p['added']} passages to",
            "rebuild": f"re-indexed {p['added']} passages from scratch into",
            "update": f"added {p['added']} and replaced {p['updated']} passages in",
            "delete": f"deleted {p['removed']} passages from"}[ch["operation"]]
    print(
        f"{what} {report.path} ({ch['generation']}): {c['passages']} passages, {c['entities']} entities, "
        f"{c['facts']} facts, edges relation {e['relation']} / context {e['context']} / synonym {e['synonym']}"
    )
    reused = ch["reused"]
    if p["unchanged"] and ch["operation"] != "delete":
        print(f"skipped {p['unchanged']} passages already indexed" + (f" and {p['duplicates']} duplicates" if p["duplicates"] else ""))
    if reused["extractions"] or reused["vectors"]:
        print(f"resumed: reused {reused['extractions']} extractions and {reused['vectors']} vectors of an interrupted run")
    syn = ch["synonymy"]
    print(
        f"time: extract {t['extract']:.1f}s ({ch['extracted']} passages), embed {t['embed']:.1f}s "
        f"({ch['embedded']} strings), synonymy {t['synonymy']:.2f}s ({syn['new_entities']} new of "
        f"{syn['entities']} entities), graph {t['graph']:.2f}s, write {t['write']:.2f}s, total {t['total']:.1f}s"
    )
    for key, value in report.notes.items():
        print(f"note: {key}: {value}", file=sys.stderr)
