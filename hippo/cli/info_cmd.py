"""``hippo info``: what an index holds."""

from __future__ import annotations

import argparse
from typing import Any

from hippo.cli.common import print_json
from hippo.live.ranking import describe
from hippo.errors import IndexFormatError
from hippo.live.snapshot import Snapshot
from hippo.store import read_history


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("info", help="describe an index",
                       description="Counts, segments, tombstones, sizes, embedder, extractor and config of index DIR.")
    p.add_argument("index", metavar="DIR", help="index directory")
    p.add_argument("--verify", action="store_true", help="check every file against its recorded sha256")
    p.add_argument("--history", action="store_true", help="list every write (generation, time, what changed, counts)")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    snap = Snapshot.open(args.index)
    info = describe(snap)
    m = snap.manifest
    from hippo.documents import document_count

    info["counts"] = {**info["counts"], "documents": document_count(args.index, snap)}
    if args.verify:
        bad = [b for v, entry in zip(snap.views, m["segments"]) for b in v.files.verify(entry)]
        info["verified"] = not bad
        if bad:
            raise IndexFormatError(f"{args.index}: files changed since they were written: {', '.join(bad)}; rebuild the index")
    if args.history:
        info["history"] = read_history(args.index)
    if args.json:
        print_json(info)
        return 0
    c = m["counts"]
    e = c["edges"]
    print(f"{args.index} (generation {m['generation']}, format v{m['format_version']})")
    print(f"documents {info['counts']['documents']}, passages {c['passages']}, entities {c['entities']}, facts {c['facts']}")
    print(f"edges: relation {e['relation']}, context {e['context']}, synonym {e['synonym']}")
    segs = info["segments"]
    print(f"segments {len(segs)} ({_size(info['bytes'])}), tombstones {c.get('tombstones', 0)}: "
          + ", ".join(f"{s['name']} {s['rows'][0]}p" for s in segs[:8]) + (" ..." if len(segs) > 8 else ""))
    emb, ext = m.get("embedder"), m.get("extractor")
    print(f"embedder {emb['id']} (dim {emb['dim']}, {emb['precision']})" if emb else "embedder: none yet (empty index)")
    print(f"extractor {ext['name']} {ext['settings']}" if ext else "extractor: none yet (empty index)")
    if args.verify:
        print("all files match their recorded sha256")
    if args.history:
        print_history(info["history"])
    return 0


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def print_history(entries: list[dict[str, Any]]) -> None:
    """One line per write."""
    if not entries:
        print("history: none recorded")
        return
    print("history (oldest first):")
    for h in entries:
        p, c = h.get("passages", {}), h["counts"]
        change = f"passages +{p.get('added', 0)} ~{p.get('updated', 0)} -{p.get('removed', 0)}" if p else ""
        print(f"  {h['generation']:>6}  {h.get('time', '')}  {h['operation']:<8} {change}  -> {c['passages']} passages, "
              f"{c['entities']} entities, {c['facts']} facts  [{h.get('segment', '')}] ({h.get('source', '')})")
