"""Which documents a re-run over a folder adds, re-indexes, keeps or deletes (pure functions).

A re-run first compares files by the hash of their bytes: files whose bytes are unchanged
are not even read. The documents of the files that are read (new or changed) are then
compared one by one by the hash of their extracted text, title and metadata, so a JSON
Lines file with one edited record re-indexes that record only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from hippo.ingest.document import Document


@dataclass(frozen=True)
class DocState:
    """What the plan needs to know of one document: the file it came from and its hash."""

    file: str
    hash: str


@dataclass(frozen=True)
class DocumentPlan:
    """Document ids by fate, each list sorted.

    ``gone``: registered documents whose file disappeared, or that a re-read file no longer
    holds; they are deleted only when ``deleted`` lists them (``--sync``), else kept.
    ``failed``: registered documents of files that could not be read this time; kept as they
    were indexed."""

    new: list[str]
    changed: list[str]
    unchanged: list[str]
    gone: list[str]
    deleted: list[str]
    failed: list[str]

    def to_dict(self) -> dict[str, int]:
        """Counts, for reports."""
        return {k: len(getattr(self, k)) for k in ("new", "changed", "unchanged", "gone", "deleted", "failed")}


def file_hash(data: bytes) -> str:
    """sha256 of a file's bytes."""
    return hashlib.sha256(data).hexdigest()


def document_hash(doc: Document) -> str:
    """sha256 of what a document's chunks are made of: title, text, kind and metadata."""
    head = json.dumps([doc.title, doc.kind, doc.source, dict(doc.metadata)], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(f"{head}\n{doc.text}".encode()).hexdigest()


def files_to_read(registered: Mapping[str, str], found: Mapping[str, str]) -> list[str]:
    """Files (by id) whose bytes are new or changed since the registry recorded them."""
    return sorted(f for f, h in found.items() if registered.get(f) != h)


def plan_documents(
    registered: Mapping[str, DocState],
    found_files: Collection[str],
    read_files: Collection[str],
    read: Mapping[str, DocState],
    failed_files: Collection[str] = (),
    sync: bool = False,
) -> DocumentPlan:
    """The fate of every document.

    ``registered``: the index's documents. ``found_files``: the files the folder holds now.
    ``read_files``: the files read this time (new or changed bytes) without error, even if
    they hold no document now; ``read``: their documents. ``failed_files``: files that could
    not be read this time; their documents stay as they were indexed. The documents of the
    other found files (bytes unchanged, not read) are unchanged.
    """
    found, reread, failed_set = set(found_files), set(read_files), set(failed_files)
    new = sorted(d for d in read if d not in registered)
    changed = sorted(d for d, s in read.items() if d in registered and registered[d].hash != s.hash)
    unchanged = [d for d, s in read.items() if d in registered and registered[d].hash == s.hash]
    gone, failed = [], []
    for d, s in registered.items():
        if d in read:
            continue
        if s.file in failed_set and s.file in found:
            failed.append(d)
        elif s.file not in found or s.file in reread:
            gone.append(d)  # the file disappeared, or no longer holds this document
        else:
            unchanged.append(d)
    gone.sort()
    return DocumentPlan(new, changed, sorted(unchanged), gone, gone if sync else [], sorted(failed))
