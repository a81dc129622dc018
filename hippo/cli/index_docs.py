"""``hippo index FOLDER``: index documents, print what was indexed and what was skipped."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hippo.cli.common import print_json, progress_bar
from hippo.config import Config
from hippo.errors import ConfigError
from hippo.ingest.pipeline import IngestReport, index_documents

SHOWN = 20
"""Skipped files listed one per line on stderr; the rest are counted (all are in the report file)."""


def run_documents(args: argparse.Namespace, config: Config) -> int:
    """Index the documents of ``args.corpus`` into ``args.out``."""
    if args.update:
        raise ConfigError("--update applies to passage corpora; a re-run over documents re-indexes the changed ones by itself")
    if args.openie or config.extract.extractor == "precomputed":
        raise ConfigError("--openie gives recorded OpenIE of passages; chunks of documents have none: index documents with "
                          "the spaCy extractor (the default), or index a passage corpus with --openie")
    if config.extract.extractor == "llm":
        raise ConfigError(
            "LLM OpenIE of documents is not wired yet; index the folder with the spaCy extractor, or chunk it into a "
            ".jsonl of passages and index that with --extractor llm"
        )
    embedder = None
    if config.embed.model.startswith("openai:"):
        from hippo.embed import make_embedder

        embedder = make_embedder(config.embed, config.llm)
    report = index_documents(args.corpus, args.out, config, sync=args.sync, rebuild=args.rebuild,
                             embedder=embedder, progress=progress_bar())
    print_skipped(report)
    if args.json:
        print_json(report.to_dict())
    else:
        print_documents(report)
    return 0


def print_skipped(report: IngestReport) -> None:
    """One line per skipped file on stderr (the first ``SHOWN``), then a count."""
    for s in report.skipped[:SHOWN]:
        print(f"hippo: {s.line()}", file=sys.stderr)
    if len(report.skipped) > SHOWN:
        print(f"hippo: ... and {len(report.skipped) - SHOWN} more skipped; all are listed in {report.path}/ingest_report.json",
              file=sys.stderr)


def print_documents(report: IngestReport) -> None:
    """The human summary of a document run."""
    p, c = report.plan, report.counts
    parts = [f"{len(p.new)} new", f"{len(p.changed)} changed", f"{len(p.unchanged)} unchanged"]
    if p.deleted:
        parts.append(f"{len(p.deleted)} deleted")
    kept = [d for d in p.gone if d not in p.deleted]
    if kept:
        parts.append(f"{len(kept)} gone but kept (pass --sync to delete them)")
    if p.failed:
        parts.append(f"{len(p.failed)} kept as indexed (their files could not be read now)")
    print(f"documents: {', '.join(parts)}; {len(report.skipped)} file(s) skipped")
    ch = report.chunks
    print(f"chunks: {ch['chunked']} in new and changed documents; passages {ch['added']} added, {ch['updated']} replaced "
          f"(their citation moved), {ch['deleted']} deleted" + (f"; {ch['shared']} shared with another document" if ch["shared"] else ""))
    print(f"{report.path}: {c.get('documents', 0)} documents, {c.get('passages', 0)} passages, {c.get('entities', 0)} entities, "
          f"{c.get('facts', 0)} facts")
    t: dict[str, Any] = report.timings_s
    print(f"time: read {t['read']:.1f}s, chunk {t['chunk']:.1f}s, index {t['index']:.1f}s, total {t['total']:.1f}s")
