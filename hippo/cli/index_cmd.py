"""``hippo index``: build an index from a corpus or a folder of documents, or add to one."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from hippo.cli.common import add_config_args, print_json, progress_bar, set_threads
from hippo.cli.llm_args import add_llm_args, needs_llm_endpoint, run_llm_index, with_llm_args
from hippo.cli.ray_args import add_ray_args, ray_runner
from hippo.config import load_config
from hippo.conversation import conversation_config, read_turns, turn_passages
from hippo.errors import ConfigError
from hippo.indexer import BuildReport, build_index, saved_config
from hippo.types import Passage


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "index", help="index a corpus into a knowledge graph, or add it to an existing index",
        description="Index CORPUS into the index directory --out. CORPUS is a passage corpus (a JSON list of "
        "{title, text} or a .jsonl of {id?, title?, text}: each record is one passage), or documents: a folder "
        "(read recursively: .md .txt .html .htm .pdf .json .jsonl) or one .md/.txt/.html/.pdf file, chunked "
        "at headings and sentences into passages that cite their document. If --out already holds an index, "
        "only what it lacks is extracted and embedded, as one new segment: re-running over a folder re-indexes the documents that "
        "changed (and with --sync deletes those whose files are gone). Files that cannot be read are skipped "
        "and listed. With --update, passages whose id is already there with other text are replaced. OpenIE is offline spaCy unless --openie gives a HippoRAG OpenIE results file. "
        "An interrupted run leaves the previous index readable; run it again to finish (work done is reused).",
    )
    p.add_argument("corpus", help="corpus file, document file, or folder of documents")
    p.add_argument("--out", required=True, metavar="DIR", help="index directory to write or add to")
    p.add_argument("--openie", metavar="FILE", help="HippoRAG OpenIE results file (implies --extractor precomputed)")
    p.add_argument("--extractor", choices=["spacy", "precomputed", "llm"], help="OpenIE extractor (default: spacy; llm: HippoRAG 2's LLM OpenIE)")
    p.add_argument("--format", choices=["passages", "conversation"],
                   help="passages (default) or conversation: CORPUS holds conversation turns (.jsonl of {id, speaker, "
                   "session, time, text}, LoCoMo JSON, or OpenAI chat messages); each turn is a passage with its "
                   "speaker, session and time, extracted with the conversation extractor (docs/conversations.md). "
                   "Default: the format the index in --out was built with")
    p.add_argument("--update", action="store_true", help="replace passages whose id is in the index with other text")
    p.add_argument("--rebuild", action="store_true",
                   help="ignore the index in --out: build CORPUS from scratch (any settings), replacing it")
    p.add_argument("--documents", action="store_true",
                   help="read a .json/.jsonl file as documents {id?, title?, text, metadata?} to chunk, not as passages")
    p.add_argument("--sync", action="store_true", help="documents: also delete the documents whose files are gone")
    p.add_argument("--json", action="store_true", help="print counts, timings and changes as JSON")
    add_config_args(p)
    add_llm_args(p)
    add_ray_args(p)
    p.set_defaults(func=run)


def is_passage_corpus(path: str, documents: bool = False) -> bool:
    """Whether ``path`` is read as passages as given (a HippoRAG corpus), not chunked as documents."""
    p = Path(path)
    return not documents and p.suffix.lower() in (".json", ".jsonl", ".ndjson") and not p.is_dir()


def run(args: argparse.Namespace) -> int:
    # An existing index's saved config is the base: its index-time settings carry over.
    saved = None if args.rebuild else saved_config(args.out)
    conversation = args.format == "conversation" or (
        args.format is None and saved is not None and saved.extract.extractor == "conversation")
    base = saved
    if base is None and conversation:  # a new conversation index records the settings chosen for conversations
        base = conversation_config()
    config = load_config(args.config, args.overrides, base=base)
    if args.extractor:
        config = config.replace({"extract.extractor": args.extractor}).validate()
    if conversation:
        if args.openie or args.extractor:
            raise ConfigError("--format conversation extracts with the conversation extractor: drop --openie/--extractor")
        if args.documents or args.sync:
            raise ConfigError("--format conversation reads conversation turns, not documents: drop --documents/--sync")
        config = config.replace({"extract.extractor": "conversation"}).validate()
    set_threads(config.runtime.threads)
    config = with_llm_args(config, args)
    if not conversation and not is_passage_corpus(args.corpus, args.documents):
        from hippo.cli.index_docs import run_documents

        return run_documents(args, config)
    if args.sync:
        raise ConfigError("--sync applies to folders of documents; to remove passages use `hippo delete DIR --ids`")
    runner = ray_runner(args, config.runtime.threads)
    with contextlib.ExitStack() as stack:
        if runner is not None:
            from hippo.distributed.cluster import main_thread_stdout

            stack.enter_context(main_thread_stdout())  # Ray's notices go to stderr: --json stays parseable
            stack.callback(runner.cluster.close)  # closed first, while its notices still go to stderr
        if needs_llm_endpoint(config):  # LLM OpenIE or the openai: embedder
            return run_llm_index(args, config, runner)
        corpus: str | list[Passage] = args.corpus
        if conversation:
            corpus = turn_passages(read_turns(args.corpus))
        report = build_index(corpus, args.out, config, openie=args.openie, progress=progress_bar(),
                             update=args.update, rebuild=args.rebuild, runner=runner)
    if args.json:
        print_json({**report.to_dict(), **({"ray": runner.summary()} if runner is not None else {})})
        return 0
    print_summary(report)
    if runner is not None:
        print_ray_summary(runner.summary())
    return 0


def print_ray_summary(summary: dict[str, Any]) -> None:
    """One line per Ray stage: rows, rows/s, workers, nodes."""
    c = summary["cluster"]
    for stage in ("extract", "llm_openie", "embed"):
        s = summary.get(stage)
        if s:
            print(f"ray ({c['address']}, {c['nodes']} node(s), {c['cpus']:g} CPUs): {stage} {s['rows']} rows in "
                  f"{s['seconds']:.1f}s ({s['rows_per_s']} rows/s) on {s['workers']} worker(s), "
                  f"{len(s['parts_by_node'])} node(s)")


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
