"""``hippo info``: what an index holds."""

from __future__ import annotations

import argparse

from hippo.cli.common import print_json
from hippo.errors import IndexFormatError
from hippo.store import read_index_files


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("info", help="describe an index", description="Counts, embedder, extractor and config of index DIR.")
    p.add_argument("index", metavar="DIR", help="index directory")
    p.add_argument("--verify", action="store_true", help="check every file against its recorded sha256")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    files = read_index_files(args.index)
    m = files.manifest
    info = files.describe()
    if args.verify:
        bad = files.verify()
        info["verified"] = not bad
        if bad:
            raise IndexFormatError(f"{files.generation}: files changed since they were written: {', '.join(bad)}; rebuild the index")
    if args.json:
        print_json(info)
        return 0
    c = m["counts"]
    e = c["edges"]
    print(f"{files.root} ({files.generation.name}, format v{m['format_version']})")
    print(f"passages {c['passages']}, entities {c['entities']}, facts {c['facts']}")
    print(f"edges: relation {e['relation']}, context {e['context']}, synonym {e['synonym']}")
    print(f"embedder {m['embedder']['id']} (dim {m['embedder']['dim']}, {m['embedder']['precision']})")
    print(f"extractor {m['extractor']['name']} {m['extractor']['settings']}")
    if args.verify:
        print("all files match their recorded sha256")
    return 0
