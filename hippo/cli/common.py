"""Helpers shared by CLI commands: config resolution, output, progress."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from hippo.config import Config, load_config


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
    """``--set`` values (and a config file's retrieval section) as a dict for open_index."""
    config = load_config(args.config, args.overrides)
    base = Config()
    out: dict[str, Any] = {}
    for section in ("retrieval", "runtime"):
        for key, value in getattr(config, section).__dict__.items():
            if value != getattr(getattr(base, section), key):
                out[f"{section}.{key}"] = value
    for item in args.overrides:
        key = item.partition("=")[0].strip()
        if not key.startswith(("retrieval.", "runtime.")):
            out[key] = item.partition("=")[2]
    return out


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
            bar = bars[stage] = tqdm(total=total, desc=stage, file=sys.stderr, leave=False)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def set_threads(n: int) -> None:
    """Pin torch's intra-op threads (0 keeps the default)."""
    if n > 0:
        import torch

        torch.set_num_threads(n)
