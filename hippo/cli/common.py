"""Helpers shared by CLI commands: config resolution, output, progress."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from hippo.config import Config, load_config, query_overrides


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` and repeatable ``--set section.key=value``."""
    parser.add_argument("--config", metavar="FILE", help="config file (TOML or JSON)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one config value, e.g. --set retrieval.damping=0.5 (repeatable)",
    )


def resolve_config(args: argparse.Namespace) -> Config:
    """Defaults < --config file < HIPPO_* env < --set."""
    return load_config(args.config, args.overrides)


def overrides_dict(args: argparse.Namespace) -> dict[str, Any]:
    """Query-time overrides for ``open_index`` from --config, HIPPO_* and --set."""
    return query_overrides(args.config, args.overrides)


def print_json(data: Any) -> None:
    """Machine output on stdout."""
    json.dump(data, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


def progress_bar() -> Callable[[str, int, int], None] | None:
    """A tqdm progress callback on stderr, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            unit = "rows" if stage in ("extract", "embed", "llm openie") else "it"
            bar = bars[stage] = tqdm(total=total, desc=stage, unit=unit, file=sys.stderr, leave=False)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def set_threads(n: int) -> None:
    """Pin torch's intra-op threads (0 keeps the default)."""
    if n > 0:
        import torch

        torch.set_num_threads(n)
