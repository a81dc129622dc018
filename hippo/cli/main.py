"""Entry point of the ``hippo`` command."""

from __future__ import annotations

import argparse
import os
import select
import sys
from collections.abc import Sequence

from hippo import __version__
from hippo.cli import (
    add_cmd, ask_cmd, compact_cmd, delete_cmd, estimate_cmd, eval_cmd, export_cmd, index_cmd, info_cmd, neo4j_cmd, query_cmd,
    serve_cmd, show_doc_cmd, upgrade_cmd,
)
from hippo.errors import ConfigError, HippoError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="hippo",
        description="Graph-based hippocampal retrieval (HippoRAG 2): index a corpus into a knowledge "
        "graph, retrieve with Personalized PageRank, evaluate Recall@k.",
    )
    parser.add_argument("--version", action="version", version=f"hippo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (index_cmd, add_cmd, delete_cmd, compact_cmd, query_cmd, ask_cmd, eval_cmd, info_cmd, show_doc_cmd,
                   upgrade_cmd, export_cmd, neo4j_cmd, estimate_cmd, serve_cmd):
        module.register(sub)
    return parser


def _stdout_gone() -> bool:
    """Whether standard output is a pipe whose reader has gone (poll reports an error on it)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), or no real stdout
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; exit code 2 for usage errors (incl. bad config), 1 for domain errors."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"hippo: error: {exc}", file=sys.stderr)
        return 2
    except HippoError as exc:
        print(f"hippo: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError as exc:
        if not _stdout_gone():  # a pipe of the work itself (a socket, a worker): a real error
            print(f"hippo: error: {exc.strerror or exc} (not on standard output)", file=sys.stderr)
            return 1
        # the reader went away (`hippo query ... | head`): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail again
        return 0
    except OSError as exc:  # a file problem the library did not anticipate: still one line
        where = f": {exc.filename}" if exc.filename else ""
        print(f"hippo: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hippo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
