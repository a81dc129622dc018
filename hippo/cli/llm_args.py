"""The ``--llm-*`` flags shared by index, query, ask, eval and estimate, and the LLM index run."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hippo.cli.common import print_json, progress_bar
from hippo.config import Config
from hippo.errors import ConfigError

PARTIAL_EXIT = 3
"""Exit status of ``hippo index --extractor llm`` when some passages failed and were left out."""

_FLAGS = (
    ("--llm-model", "model", "NAME", "chat model (default gpt-4o-mini)"),
    ("--llm-base-url", "base_url", "URL", "OpenAI-compatible server, e.g. http://localhost:8000/v1 (default $OPENAI_BASE_URL, else OpenAI)"),
    ("--llm-api-key-env", "api_key_env", "VAR", "environment variable holding the API key (default OPENAI_API_KEY)"),
    ("--llm-concurrency", "concurrency", "N", "requests in flight at once (default 8)"),
)


def add_llm_args(parser: argparse.ArgumentParser) -> None:
    """``--llm-model``, ``--llm-base-url``, ``--llm-api-key-env``, ``--llm-concurrency``;
    the other ``llm.*`` settings go through ``--set llm.KEY=VALUE``."""
    group = parser.add_argument_group("LLM endpoint (any OpenAI-compatible server)")
    for flag, key, metavar, help_ in _FLAGS:
        group.add_argument(flag, dest=f"llm_{key}", metavar=metavar, type=int if key == "concurrency" else str, help=help_)


def llm_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``{"llm.model": ...}`` for the ``--llm-*`` flags given."""
    out: dict[str, Any] = {}
    for _, key, _, _ in _FLAGS:
        value = getattr(args, f"llm_{key}", None)
        if value is not None:
            out[f"llm.{key}"] = value
    return out


def with_llm_args(config: Config, args: argparse.Namespace) -> Config:
    """``config`` with the ``--llm-*`` flags applied."""
    flags = llm_overrides(args)
    return config.replace(flags).validate() if flags else config


def needs_llm_endpoint(config: Config) -> bool:
    """True when indexing talks to an LLM server: LLM OpenIE or the ``openai:`` embedder."""
    return config.extract.extractor == "llm" or config.embed.model.startswith("openai:")


def run_llm_index(args: argparse.Namespace, config: Config, runner: Any = None) -> int:
    """``hippo index`` when an LLM server is involved; exit 3 when passages failed."""
    from hippo.cli.index_cmd import print_summary
    from hippo.embed import make_embedder

    embedder = make_embedder(config.embed, config.llm) if config.embed.model.startswith("openai:") else None
    if config.extract.extractor != "llm":
        from hippo.indexer import build_index

        report = build_index(args.corpus, args.out, config, openie=args.openie, embedder=embedder,
                             progress=progress_bar(), update=args.update, rebuild=args.rebuild, runner=runner)
        if args.json:
            print_json({**report.to_dict(), **({"ray": runner.summary()} if runner is not None else {})})
        else:
            print_summary(report)
        return 0

    from hippo.llm.indexing import index_with_llm

    if args.openie:
        raise ConfigError("--openie reads recorded triples and --extractor llm asks an LLM: give one of them")
    result = index_with_llm(args.corpus, args.out, config, embedder=embedder, progress=progress_bar(),
                            update=args.update, rebuild=args.rebuild, runner=runner)
    if args.json:
        print_json({**result.to_dict(), **({"ray": runner.summary()} if runner is not None else {})})
    else:
        print_summary(result.build)
        print(f"LLM OpenIE ({config.llm.model}): {result.extracted} passages extracted, {result.reused} taken "
              f"from the index, {len(result.failures)} failed")
        for stage, u in result.usage.items():
            print(f"  {stage}: {u['requests']} requests, {u['cache_hits']} cache hits, {u['calls']} HTTP calls "
                  f"({u['retries']} retries), {u['prompt_tokens']} prompt + {u['completion_tokens']} completion tokens")
        if result.openie_file:
            print(f"OpenIE results (HippoRAG format): {result.openie_file}")
    if result.failures:
        for f in result.failures[:20]:
            print(f"hippo: failed: {f.passage_id} ({f.title or 'untitled'}) at the {f.stage} step: {f.reason}", file=sys.stderr)
        more = " (first 20 shown above)" if len(result.failures) > 20 else ""
        print(
            f"hippo: partial index: {len(result.failures)} of {len(result.failures) + result.extracted + result.reused} "
            f"passages failed LLM OpenIE and were left out{more}; they are listed in {result.failures_file}; "
            f"run the same command again to retry only them",
            file=sys.stderr,
        )
        return PARTIAL_EXIT
    return 0
