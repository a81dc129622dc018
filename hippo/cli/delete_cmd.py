"""``hippo delete``: remove passages or documents from an index."""

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
        "delete", help="delete passages or documents from an index",
        description="Delete passages from index DIR: by id, every passage of a corpus file, or every chunk of a "
        "document (--doc, by document id or source path): one new segment of tombstones, gone from results at "
        "once. Facts and entities that no remaining passage states go too; relation weights are recounted (a "
        "compaction drops them from the files). All or nothing: an unknown id or document deletes nothing.",
    )
    p.add_argument("index", metavar="DIR", help="index directory")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--ids", metavar="ID,ID,...", help="comma-separated passage ids")
    which.add_argument("--corpus", metavar="FILE", help="delete every passage of this corpus file (matched by id)")
    which.add_argument("--doc", action="append", metavar="SOURCE_OR_ID",
                       help="delete a document: every chunk of it (repeatable; `hippo show-doc DIR` lists documents)")
    p.add_argument("--json", action="store_true", help="print counts, timings and changes as JSON")
    add_config_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not Path(args.index).is_dir() or read_manifest(args.index) is None:  # the "not an index" error first
        raise IndexFormatError(f"{args.index} is not a hippo index; build one with `hippo index CORPUS --out {args.index}`")
    config = load_config(args.config, args.overrides, base=saved_config(args.index))
    if args.doc:
        from hippo.ingest.pipeline import delete_documents

        done = delete_documents(args.index, args.doc, config)
        if args.json:
            print_json(done)
            return 0
        c = done["counts"]
        handed = f"; {done['chunks_handed_over']} shared chunk(s) now cite another document" if done["chunks_handed_over"] else ""
        print(f"deleted {len(done['documents'])} document(s) ({done['chunks_deleted']} chunks{handed}): "
              f"{', '.join(done['documents'])}; {args.index}: {c['passages']} passages, {c['entities']} entities, {c['facts']} facts")
        return 0
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
