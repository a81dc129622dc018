"""``hippo add``: add one passage, or a small batch, to an index (one new segment)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from hippo.cli.common import print_json
from hippo.corpus import read_corpus
from hippo.engine import open_index
from hippo.errors import HippoError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "add", help="add a passage (or a file of passages) to an index, visible to readers at once",
        description="Add TEXT as one passage, or every passage of --file (any corpus format hippo index reads), "
        "to the index DIR. The write is one new segment: it costs what it adds (extraction, embedding, the "
        "graph entries it changes), and it is durable when the command returns. Merges the policy asks for "
        "(runtime.max_segments, runtime.compact_ratio) run before the command exits.",
    )
    p.add_argument("index", metavar="DIR", help="index directory (created, empty, with --create)")
    p.add_argument("text", nargs="?", help="the passage text")
    p.add_argument("--file", metavar="FILE", help="add every passage of this corpus file instead")
    p.add_argument("--title", default="", help="title of TEXT")
    p.add_argument("--id", dest="pid", metavar="ID", help="id of TEXT (default: a hash of its content)")
    p.add_argument("--update", action="store_true", help="replace passages whose id is in the index with other text")
    p.add_argument("--create", action="store_true", help="start an empty index in DIR if it holds none")
    p.add_argument("--wait", type=float, default=10.0, metavar="S",
                   help="seconds to wait for another writer of DIR to finish (default 10)")
    p.add_argument("--json", action="store_true", help="print the ids and the write as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if (args.text is None) == (args.file is None):
        raise HippoError("give the passage TEXT or --file FILE (one of the two)")
    if args.file is not None:
        items: list[Any] = list(read_corpus(args.file))
    else:
        items = [{"text": args.text, "title": args.title, **({"id": args.pid} if args.pid else {})}]
    t0 = time.perf_counter()
    with open_index(args.index, writable=True, create=args.create, wait=args.wait) as mem:
        mem._writer.background = False  # hippo add merges before it exits
        before = mem.manifest["generation"]
        ids = mem.add(items, update=args.update)
        m = mem.manifest
        out = {"ids": ids, "generation": m["generation"], "written": m["generation"] != before,
               "counts": m["counts"], "segments": len(m["segments"]), "seconds": round(time.perf_counter() - t0, 3)}
    if args.json:
        print_json(out)
    else:
        what = f"added {len(ids)} passage(s)" if out["written"] else "nothing to do (already indexed)"
        print(f"{what} to {args.index}: {', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''} "
              f"({m['counts']['passages']} passages in {out['segments']} segment(s))")
    return 0
