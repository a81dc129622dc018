"""``hippo compact``: merge every segment of an index into one new base."""

from __future__ import annotations

import argparse

from hippo.cli.common import print_json
from hippo.engine import open_index


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "compact", help="merge the segments of an index into one (also runs automatically)",
        description="Merge every segment of index DIR into one new base, as a from-scratch build of its live "
        "passages would write it (tombstoned passages and the facts and entities only they stated are dropped; "
        "nothing is extracted or embedded). Readers keep answering meanwhile; the writer lock is held only to "
        "swap in the result.",
    )
    p.add_argument("index", metavar="DIR", help="index directory")
    p.add_argument("--wait", type=float, default=60.0, metavar="S",
                   help="seconds to wait for another writer of DIR to finish (default 60)")
    p.add_argument("--json", action="store_true", help="print what was done as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with open_index(args.index, writable=True, wait=args.wait) as mem:
        report = mem.compact()
    if args.json:
        print_json(report)
    elif report["operation"] == "none":
        print(f"{args.index} is already one segment with no tombstone: nothing to do")
    else:
        c = report["counts"]
        print(f"compacted {report['merged']} segment(s) of {args.index} into {report['base']} "
              f"({c['passages']} passages, {c['entities']} entities, {c['facts']} facts) in {report['seconds']:.1f}s"
              + (f"; {report['replayed']} write(s) made meanwhile were replayed onto it" if report["replayed"] else ""))
    return 0
