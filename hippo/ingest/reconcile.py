"""What a document write changes in the index: the passages to add or replace and to delete,
so that the live passages become exactly the chunks the documents want (pure).

A chunk's passage id is the hash of its content, so a chunk two documents have (the same
text under the same heading path, e.g. a copied file) is one passage: it cites the document
that holds it, and the others *share* it (their registry record keeps the citation it would
have for them). When the holder goes, the first document that shares it takes it over: the
passage is replaced by one citing that document instead of being deleted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hippo.documents import Held
from hippo.types import Passage


@dataclass(frozen=True)
class Wanted:
    """One document of the index after the write: ``passages``, its chunks as passages citing
    it (all of them when it was re-chunked, else only those another document holds now), and
    ``holds``, the live passages it holds and keeps as they are. ``rechunked``: ``passages``
    are all its chunks (its record is made from them)."""

    doc_id: str
    passages: Sequence[Passage]
    holds: Sequence[str] = ()
    rechunked: bool = True


@dataclass
class Writes:
    """The passages to add (or replace: ``update=True``) and the ids to delete; per document
    wanted, its chunks ``[[id, start, end], ...]`` (re-chunked documents) and what it shares."""

    add: list[Passage] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    shared: int = 0


def _plain(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata as the index stores it (JSON types: lists, not tuples)."""
    out: dict[str, Any] = json.loads(json.dumps(dict(meta), ensure_ascii=False))
    return out


def reconcile(wanted: Sequence[Wanted], held: Held, managed: set[str]) -> Writes:
    """The writes that make the live passages the chunks ``wanted`` (earlier documents take a
    shared chunk first). Live passages citing a ``managed`` document that no document wants
    are deleted; passages citing no managed document are never touched (a chunk equal to one
    of them is shared with it)."""
    cands: dict[str, list[tuple[str, Passage | None]]] = {}
    for w in wanted:
        for p in w.passages:
            cands.setdefault(p.id, []).append((w.doc_id, p))
        for pid in w.holds:
            cands.setdefault(pid, []).append((w.doc_id, None))
    owner: dict[str, str] = {}
    for pid, options in cands.items():
        live = pid in held.owner
        current = held.owner.get(pid)
        if live and (current is None or current not in managed):
            continue  # not ours to change
        docs = [d for d, _ in options]
        if live and current in docs:
            owner[pid] = str(current)
        else:
            owner[pid] = next(d for d, p in options if p is not None)
    out = Writes()
    queued: set[str] = set()
    for w in wanted:
        shared: dict[str, Any] = {}
        for p in w.passages:
            meta = _plain(p.metadata)
            if owner.get(p.id) != w.doc_id:
                shared[p.id] = meta
                continue
            if p.id in queued:
                continue
            queued.add(p.id)
            if held.owner.get(p.id) == w.doc_id and held.docs[w.doc_id].get(p.id) == meta:
                continue  # already there, citing the same
            out.add.append(Passage(p.id, p.content, p.title, meta))
        chunks = [[p.id, *p.metadata["span"]] for p in w.passages] if w.rechunked else []
        out.records[w.doc_id] = {"chunks": chunks, "shared": shared}
        if w.rechunked:
            out.shared += len(shared)
    out.delete = sorted((pid for pid, d in held.owner.items() if d is not None and d in managed and pid not in owner),
                        key=lambda pid: held.rows[pid])
    return out
