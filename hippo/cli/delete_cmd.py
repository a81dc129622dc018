"""``hippo delete``: remove passages from an index."""

from __future__ import annotations

import argparse
from pathlib import Path

from hippo.cli.common import add_config_args, print_json
from hippo.cli.index_cmd import print_summary
from hippo.config import load_config
from hippo.corpus import read_corpus
from hippo.errors import HippoError, IndexFormatError
from hippo.indexer import delete_passages, saved_config
from hippo.store import read_manifest


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "delete", help="delete passages from an index",
        description="Delete passages from index DIR, by id or every passage of a corpus file: one new segment of "
        "tombstones, gone from results at once. Facts and entities that no remaining passage states go too; "
        "relation weights are recounted (a compaction drops them from the files). All or nothing: an unknown id "
        "deletes nothing.",
    )
    p.add_argument("index", metavar="DIR", help="index directory")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--ids", metavar="ID,ID,...", help="comma-separated passage ids")
    which.add_argument("--corpus", metavar="FILE", help="delete every passage of this corpus file (matched by id)")
    p.add_argument("--json", action="store_true", help="print counts, timings and changes as JSON")
    add_config_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not Path(args.index).is_dir() or read_manifest(args.index) is None:  # the "not an index" error first
        raise IndexFormatError(f"{args.index} is not a hippo index; build one with `hippo index CORPUS --out {args.index}`")
    config = load_config(args.config, args.overrides, base=saved_config(args.index))
    if args.ids is not None:
        ids = [i.strip() for i in args.ids.split(",") if i.strip()]
        if not ids:
            raise HippoError("--ids is empty; give comma-separated passage ids, e.g. --ids p-1234,p-5678")
    else:
        ids = [p.id for p in read_corpus(args.corpus)]
    report = delete_passages(args.index, ids, config)
    if args.json:
        print_json(report.to_dict())
    else:
        print_summary(report)
    return 0
