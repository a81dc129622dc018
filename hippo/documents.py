"""The documents of an index: which exist, their chunks, their texts.

The truth is in the passages: each chunk's metadata names its document and span, and a
document exists while a live passage holds one of its chunks (a chunk whose text another
document's chunk already has is stored once; the registry remembers that the second document
shares it). The registry (:mod:`hippo.store.documents`) adds what passages do not hold: each
document's extracted text, the file it came from, and its hash.

Hits carry their citation themselves (``Hit.document_id``, ``source``, ``headings``, ``span``);
:func:`text_of` returns the text a span indexes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hippo.errors import HippoError
from hippo.live.snapshot import Snapshot
from hippo.store.documents import Registry, find_document, load_pending, load_registry, read_text
from hippo.store.strings import StringTable

PASSAGE_KEYS = ("headings", "span", "chunk", "page")
"""The chunk fields ``show-doc --json`` lists from each passage's metadata."""


@dataclass(frozen=True)
class Held:
    """The documents the live passages of one commit hold.

    ``owner``: live passage id -> the ``document_id`` of its metadata (None: none).
    ``docs``: document id -> {passage id: metadata} of its live passages.
    ``rows``: live passage id -> its row (to read its title and content)."""

    owner: dict[str, str | None]
    docs: dict[str, dict[str, dict[str, Any]]]
    rows: dict[str, int]


def _strings(table: Sequence[str]) -> list[str]:
    """Every string of a table, decoded in one pass."""
    if isinstance(table, StringTable):
        buf = bytes(table.data[: int(table.offsets[-1])]) if len(table) else b""
        off = [int(x) for x in table.offsets]
        return [buf[a:b].decode("utf-8") for a, b in zip(off, off[1:])]
    return list(table)


def held_documents(snap: Snapshot) -> Held:
    """Read the metadata of every live passage of ``snap`` (one pass over the segments)."""
    alive = snap.passage_alive
    owner: dict[str, str | None] = {}
    docs: dict[str, dict[str, dict[str, Any]]] = {}
    rows: dict[str, int] = {}
    start = 0
    for v in snap.views:
        n = v.rows[0]
        ids = _strings(v.strings("passage_ids"))
        table = v.passage_meta
        metas = _strings(table) if table is not None else [""] * n
        for k in range(n):
            row = start + k
            if alive is not None and not alive[row]:
                continue
            pid = ids[k]
            meta = json.loads(metas[k]) if metas[k] else {}
            doc = meta.get("document_id")
            owner[pid] = str(doc) if doc is not None else None
            rows[pid] = row
            if doc is not None:
                docs.setdefault(str(doc), {})[pid] = meta
        start += n
    return Held(owner, docs, rows)


def consistent(record: Mapping[str, Any], doc_id: str, held: Held, complete: bool = True) -> bool:
    """Whether the passages agree with a document's record: the live ones citing it are chunks
    it lists, with the recorded span, and the chunks it shares are recorded as shared.
    ``complete``: and every chunk it lists is live (else: at least one)."""
    owned = held.docs.get(doc_id, {})
    chunks: dict[str, tuple[int, int]] = {}
    for c in record.get("chunks", ()):  # a chunk repeated in its document: its passage cites the first
        chunks.setdefault(str(c[0]), (int(c[1]), int(c[2])))
    if not chunks or not set(owned) <= set(chunks):
        return False
    live = 0
    for pid, span in chunks.items():
        if pid not in held.owner:
            if complete:
                return False
            continue
        live += 1
        meta = owned.get(pid)
        if meta is None:
            if pid not in record.get("shared", {}):
                return False
        elif tuple(meta.get("span", ())) != span:
            return False
    return live > 0


_HELD: dict[tuple[str, int], Held] = {}
"""Held documents of the last few commits read (by index folder and generation)."""


def _held(snap: Snapshot) -> Held:
    key = (str(snap.root.resolve()), snap.generation)
    got = _HELD.get(key)
    if got is None:
        got = held_documents(snap)
        while len(_HELD) >= 4:
            _HELD.pop(next(iter(_HELD)))
        _HELD[key] = got
    return got


def _state(index_dir: str | Path, snap: Snapshot | None = None) -> tuple[Held, Registry, dict[str, dict[str, Any] | None]]:
    """The held documents of the live commit (or of ``snap``), the registry and the pending records."""
    own = snap is None
    snap = snap or Snapshot.open(index_dir)  # also the "not an index" error
    try:
        return _held(snap), load_registry(index_dir), load_pending(index_dir)
    finally:
        if own:
            snap.close()


def _record(doc_id: str, held: Held, registry: Registry, pending: Mapping[str, Any]) -> dict[str, Any] | None:
    """The record that agrees with the passages: the pending one (its write committed) or the
    registered one; None when neither does (or the document has none)."""
    for rec in (pending.get(doc_id), registry.documents.get(doc_id)):
        if rec is not None and consistent(rec, doc_id, held, complete=False):
            return dict(rec)
    return None


def _all_ids(held: Held, registry: Registry, pending: Mapping[str, Any]) -> list[str]:
    ids = set(held.docs)
    for d in set(registry.documents) | {d for d, r in pending.items() if r is not None}:
        if _record(d, held, registry, pending) is not None:
            ids.add(d)
    return sorted(ids)


def _summary(doc_id: str, held: Held, registry: Registry, pending: Mapping[str, Any]) -> dict[str, Any]:
    rec = _record(doc_id, held, registry, pending)
    owned = held.docs.get(doc_id, {})
    first = next(iter(owned.values()), {})
    if rec is not None:
        return {"id": doc_id, "source": rec["source"], "title": rec["title"], "kind": rec["kind"], "chunks": len(rec["chunks"])}
    return {"id": doc_id, "source": str(first.get("source", "")), "title": str(first.get("title", "")),
            "kind": str(first.get("kind", "")), "chunks": len(owned)}


def list_documents(index_dir: str | Path) -> list[dict[str, Any]]:
    """Every document of the index: id, source, title, kind and chunk count, by id."""
    held, registry, pending = _state(index_dir)
    return [_summary(d, held, registry, pending) for d in _all_ids(held, registry, pending)]


def _find(index_dir: str | Path, key: str, held: Held, registry: Registry, pending: Mapping[str, Any]) -> str:
    ids = _all_ids(held, registry, pending)
    records = {d: {"source": _summary(d, held, registry, pending)["source"]} for d in ids}
    found = find_document(records, key)
    if found is None:
        some = ", ".join(ids[:5])
        hint = f"documents include {some}" if some else "this index has no documents (it was built from a passage corpus)"
        raise HippoError(f"no document {key!r} in {index_dir}; {hint}; `hippo show-doc {index_dir}` lists them")
    return found


def document(index_dir: str | Path, document_id: str) -> dict[str, Any]:
    """One document by id or source: id, source, title, kind, its chunks (passage id, headings,
    span, chunk index, page) in order, and its extracted ``text``."""
    held, registry, pending = _state(index_dir)
    found = _find(index_dir, document_id, held, registry, pending)
    rec = _record(found, held, registry, pending)
    if rec is None or not rec.get("text"):
        raise HippoError(
            f"the text of document {found!r} in {index_dir} is not recorded (an interrupted `hippo index`); run the "
            f"same `hippo index FOLDER --out {index_dir}` again to finish it"
        )
    owned = held.docs.get(found, {})
    chunks = []
    for i, (pid, start, end) in enumerate(rec["chunks"]):
        meta = owned.get(pid) or rec.get("shared", {}).get(pid, {})  # a repeated chunk: the first's page and headings
        chunks.append({"id": pid, **{k: meta[k] for k in PASSAGE_KEYS if k in meta}, "span": [start, end], "chunk": i})
    try:
        text = read_text(index_dir, rec["text"])
    except FileNotFoundError:  # replaced by a write that committed meanwhile: read the new state
        return document(index_dir, document_id)
    return {"id": found, "source": rec["source"], "title": rec["title"], "kind": rec["kind"], "chunks": chunks, "text": text}


def text_of(index_dir: str | Path, document_id: str) -> str:
    """The extracted text of a document (by id or source): ``text[start:end]`` is the chunk
    a hit with that ``span`` cites."""
    text: str = document(index_dir, document_id)["text"]
    return text


def document_count(index_dir: str | Path, snap: Snapshot | None = None) -> int:
    """Documents in the index (at its live commit, or ``snap``'s): those its passages hold or
    share, plus each passage that cites no document (a passage corpus: one per passage)."""
    own = snap is None
    snap = snap or Snapshot.open(index_dir)
    try:
        if all(v.passage_meta is None for v in snap.views):
            return snap.n_passages - len(snap.dead)
        held, registry, pending = _state(index_dir, snap)
    finally:
        if own:
            snap.close()
    return len(_all_ids(held, registry, pending)) + sum(1 for d in held.owner.values() if d is None)


def document_graph(index_dir: str | Path, snap: Snapshot) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]],
                                                                    list[tuple[str, str, int]]] | None:
    """What an export adds for documents, at the commit ``snap``: every document (id, source,
    title, kind, chunks), each live passage's citation (its metadata), and the ``(passage id,
    document id, chunk index)`` of every chunk, the shared ones included. None when no passage
    cites a document."""
    if all(v.passage_meta is None for v in snap.views):
        return None
    held, registry, pending = _state(index_dir, snap)
    if not held.docs:
        return None
    ids = _all_ids(held, registry, pending)
    cites = {pid: meta for doc in held.docs.values() for pid, meta in doc.items()}
    parts = [(pid, d, int(meta.get("chunk", 0))) for d in ids for pid, meta in held.docs.get(d, {}).items()]
    for d in ids:
        rec = _record(d, held, registry, pending)
        for pid, meta in (rec or {}).get("shared", {}).items():
            if pid in held.owner:
                parts.append((pid, d, int(meta.get("chunk", 0))))
    return [_summary(d, held, registry, pending) for d in ids], cites, sorted(parts)
