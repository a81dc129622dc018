"""``hippo info``: what an index holds."""

from __future__ import annotations

import argparse
from typing import Any

from hippo.cli.common import print_json
from hippo.errors import IndexFormatError
from hippo.store import IndexFiles, read_index_files


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("info", help="describe an index", description="Counts, embedder, extractor and config of index DIR.")
    p.add_argument("index", metavar="DIR", help="index directory")
    p.add_argument("--verify", action="store_true", help="check every file against its recorded sha256")
    p.add_argument("--history", action="store_true", help="list every write (generation, time, what changed, counts)")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    files = read_index_files(args.index)
    m = files.manifest
    info = files.describe()
    from hippo.documents import document_count

    info["counts"] = {**info["counts"], "documents": document_count(files.root, files.strings("passage_ids"))}
    if args.verify:
        bad = files.verify()
        info["verified"] = not bad
        if bad:
            raise IndexFormatError(f"{files.generation}: files changed since they were written: {', '.join(bad)}; rebuild the index")
    if args.history:
        info["history"] = history(files)
    if args.json:
        print_json(info)
        return 0
    c = m["counts"]
    e = c["edges"]
    print(f"{files.root} ({files.generation.name}, format v{m['format_version']})")
    print(f"documents {info['counts']['documents']}, passages {c['passages']}, entities {c['entities']}, facts {c['facts']}")
    print(f"edges: relation {e['relation']}, context {e['context']}, synonym {e['synonym']}")
    print(f"embedder {m['embedder']['id']} (dim {m['embedder']['dim']}, {m['embedder']['precision']})")
    print(f"extractor {m['extractor']['name']} {m['extractor']['settings']}")
    if args.verify:
        print("all files match their recorded sha256")
    if args.history:
        print_history(info["history"])
    return 0


def history(files: IndexFiles) -> list[dict[str, Any]]:
    """The writes that led to the live generation, oldest first, each marked ``on_disk``
    (its generation folder is still there) or not (garbage-collected)."""
    return [{**entry, "on_disk": (files.root / str(entry.get("generation"))).is_dir()} for entry in files.history()]


def print_history(entries: list[dict[str, Any]]) -> None:
    """One line per write."""
    if not entries:
        print("history: none recorded (the index predates history)")
        return
    print("history (oldest first; * = generation still on disk):")
    for h in entries:
        p, e, f, c = h["passages"], h["entities"], h["facts"], h["counts"]
        mark = "*" if h["on_disk"] else " "
        print(
            f"{mark} {h['generation']}  {h['time']}  {h['operation']:<6}  passages +{p['added']} ~{p['updated']} "
            f"-{p['removed']}  entities +{e['added']} -{e['removed']}  facts +{f['added']} -{f['removed']}  "
            f"-> {c['passages']} passages, {c['entities']} entities, {c['facts']} facts  ({h['source']})"
        )
