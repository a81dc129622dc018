"""The documents of an index: their texts (what citation spans index) and citations on hits.

PROVISIONAL: read from the registry beside the index (:mod:`hippo.ingest.provisional`)
until the living index stores documents and passage metadata.
TODO(lead, living index): read both through the store; ``cite`` becomes a no-op once hits
carry their metadata from the index.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from hippo.errors import HippoError
from hippo.ingest.provisional import Registry, load_registry, read_text
from hippo.store import read_index_files
from hippo.types import Answer, Hit, QueryResult


def _registry(index_dir: str | Path) -> Registry:
    read_index_files(index_dir).close()  # "not an index" before anything else
    return load_registry(index_dir)


def list_documents(index_dir: str | Path) -> list[dict[str, Any]]:
    """Every document of the index: id, source, title, kind and chunk count, by id."""
    reg = _registry(index_dir)
    return [
        {"id": d, "source": r["source"], "title": r["title"], "kind": r["kind"], "chunks": len(r["chunks"])}
        for d, r in sorted(reg.documents.items())
    ]


def document(index_dir: str | Path, document_id: str) -> dict[str, Any]:
    """One document by id or source: its record (source, title, kind, chunks with their
    headings and spans) and its extracted ``text``."""
    reg = _registry(index_dir)
    found = reg.find(document_id)
    if found is None:
        some = ", ".join(sorted(reg.documents)[:5])
        hint = f"documents include {some}" if some else "this index has no documents (it was built from a passage corpus)"
        raise HippoError(f"no document {document_id!r} in {index_dir}; {hint}; `hippo show-doc {index_dir}` lists them")
    rec = reg.documents[found]
    return {"id": found, **{k: v for k, v in rec.items() if k not in ("text", "hash", "file")},
            "text": read_text(index_dir, rec)}


def text_of(index_dir: str | Path, document_id: str) -> str:
    """The extracted text of a document (by id or source): ``text[start:end]`` is the chunk
    a hit with that ``span`` cites."""
    text: str = document(index_dir, document_id)["text"]
    return text


def document_count(index_dir: str | Path, passage_ids: Any) -> int:
    """Documents in the index: the registered ones plus every passage no document holds
    (a passage corpus: each passage is its own document)."""
    reg = load_registry(index_dir)
    chunked = reg.chunk_ids()
    return len(reg.documents) + sum(1 for p in passage_ids if p not in chunked)


def cite(index_dir: str | Path, result: QueryResult) -> QueryResult:
    """``result`` with each hit's document, source, heading path and span filled in from the
    document registry (hits of passages no document holds are left as they are)."""
    citations = load_registry(index_dir).citations()
    if not citations:
        return result
    return dataclasses.replace(result, hits=tuple(_cited(h, citations) for h in result.hits))


def cite_answer(index_dir: str | Path, answer: Answer) -> Answer:
    """``answer`` with its passages and retrieval cited (see :func:`cite`)."""
    citations = load_registry(index_dir).citations()
    if not citations:
        return answer
    return dataclasses.replace(
        answer, passages=tuple(_cited(h, citations) for h in answer.passages), retrieval=cite(index_dir, answer.retrieval)
    )


def _cited(hit: Hit, citations: dict[str, dict[str, Any]]) -> Hit:
    meta = citations.get(hit.passage_id)
    if meta is None or hit.metadata.get("document_id"):
        return hit
    span = meta["span"]
    return dataclasses.replace(
        hit, document_id=meta["document_id"], source=meta["source"], headings=tuple(meta["headings"]),
        span=(int(span[0]), int(span[1])), metadata={**hit.metadata, **meta},
    )
