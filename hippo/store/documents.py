"""The document registry of an index: which files the documents came from, their extracted
texts, and the chunking settings. The passages themselves (and each chunk's citation, in its
metadata) live in the segments; this module keeps what the segments do not.

::

    DIR/documents/
      registry.json        {"format", "version", "settings", "files": {file id: sha256},
                            "documents": {document id: record}}; replaced atomically after
                            the passage commit
      pending.json         the records a document write is about to commit (written before the
                            commit, removed after the registry): present only while, or because,
                            a write was interrupted
      texts/<sha256>.txt   each document's extracted text (what citation spans index),
                            content-addressed, written before the commit

A record is ``{source, title, kind, file, hash, text, chunks: [[passage id, start, end], ...],
shared: {passage id: metadata}}``: ``text`` names its text file, ``chunks`` its chunks in order
and ``shared`` the chunks another document's passage holds (identical text is stored once).

**Crash safety.** A document write runs: texts, ``pending.json``, the passage commits, then
``registry.json``, then ``pending.json`` removed. Killed anywhere, the passages' metadata is the
truth about which documents exist and which chunks each has; the registry may lag behind it by
the documents ``pending.json`` names, whose records (and texts) are then on disk already. The
next document write re-derives those documents from the passages (:mod:`hippo.ingest.pipeline`).
Texts nothing refers to (a write killed before its commit) are deleted by the next registry write.

This module reads and writes bytes; what the records mean is :mod:`hippo.ingest`'s and
:mod:`hippo.documents`' business.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hippo.errors import IndexFormatError
from hippo.store.locks import holds_writer_lock
from hippo.store.segments import fsync_path

FOLDER = "documents"
REGISTRY = "registry.json"
PENDING = "pending.json"
TEXTS = "texts"
REPORT = "ingest_report.json"
FORMAT = "hippo-documents"
VERSION = 1


@dataclass
class Registry:
    """The documents of an index as last recorded: the files' hashes, and each document's record."""

    settings: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)

    def find(self, key: str) -> str | None:
        """The id of the document whose id or source is ``key`` (paths compared normalised)."""
        return find_document(self.documents, key)


def find_document(records: Mapping[str, Mapping[str, Any]], key: str) -> str | None:
    """The id among ``records`` (id -> record with a ``source``) whose id or source is ``key``."""
    if key in records:
        return key
    for doc_id, rec in sorted(records.items()):
        if rec.get("source") == key:
            return doc_id
    norm = os.path.normpath(key)
    for doc_id, rec in sorted(records.items()):
        if os.path.normpath(str(rec.get("source", ""))) == norm or os.path.normpath(doc_id) == norm:
            return doc_id
    return None


def _folder(root: str | Path) -> Path:
    return Path(root) / FOLDER


def _read_json(path: Path, what: str) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexFormatError(f"{path}: unreadable {what} ({exc}); re-index the folder with --rebuild") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise IndexFormatError(f"{path}: not a hippo {what}; re-index the folder with --rebuild")
    if data.get("version") != VERSION:
        raise IndexFormatError(f"{path}: {what} version {data.get('version')} is not supported (reads {VERSION}); "
                               f"re-index the folder with --rebuild")
    return data


def load_registry(root: str | Path) -> Registry:
    """The registry of the index at ``root``; an empty one when it has none."""
    data = _read_json(_folder(root) / REGISTRY, "document registry")
    if data is None:
        return Registry()
    return Registry(dict(data["settings"]), dict(data["files"]), dict(data["documents"]))


def load_pending(root: str | Path) -> dict[str, dict[str, Any] | None]:
    """The records an interrupted (or running) document write was committing: document id ->
    its new record, or None for a document it was deleting. Empty when none."""
    data = _read_json(_folder(root) / PENDING, "pending document write")
    return {} if data is None else dict(data["documents"])


def _write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary name, fsync, rename over ``path``, fsync the folder."""
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_path(path.parent)


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, sort_keys=True, indent=1) + "\n").encode("utf-8")


def _need_lock(root: str | Path) -> None:
    if not holds_writer_lock(root):
        raise RuntimeError("writing the document registry needs the index's writer lock")


def text_name(text: str) -> str:
    """The file name a document text is stored under (its sha256)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest() + ".txt"


def write_texts(root: str | Path, texts: Iterable[str]) -> list[str]:
    """Store document texts (content-addressed; an existing one is not rewritten), durably:
    each is fsynced and the folder too. Returns their names. Call before the passage commit."""
    _need_lock(root)
    folder = _folder(root) / TEXTS
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    wrote = False
    for text in texts:
        name = text_name(text)
        names.append(name)
        path = folder / name
        if path.exists():
            continue
        tmp = folder / f".tmp-{name}"
        with open(tmp, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        wrote = True
    if wrote:
        fsync_path(folder)
        fsync_path(folder.parent)
    return names


def write_pending(root: str | Path, records: Mapping[str, Mapping[str, Any] | None]) -> None:
    """Record what a document write is about to commit (see the module docstring)."""
    _need_lock(root)
    _folder(root).mkdir(parents=True, exist_ok=True)
    _write_atomic(_folder(root) / PENDING, _json_bytes({"format": FORMAT, "version": VERSION, "documents": dict(records)}))


def save_registry(root: str | Path, registry: Registry) -> None:
    """Replace the registry (atomically), then remove ``pending.json`` and the texts no record
    names. Call after the passage commit."""
    _need_lock(root)
    folder = _folder(root)
    folder.mkdir(parents=True, exist_ok=True)
    data = {"format": FORMAT, "version": VERSION, "settings": registry.settings,
            "files": dict(sorted(registry.files.items())), "documents": dict(sorted(registry.documents.items()))}
    _write_atomic(folder / REGISTRY, _json_bytes(data))
    (folder / PENDING).unlink(missing_ok=True)
    used = {str(rec.get("text")) for rec in registry.documents.values()}
    texts = folder / TEXTS
    if texts.is_dir():
        for p in texts.iterdir():
            if p.name not in used:
                p.unlink(missing_ok=True)


def read_text(root: str | Path, name: str) -> str:
    """A stored document text by name (raises ``FileNotFoundError`` when it is not stored)."""
    return (_folder(root) / TEXTS / name).read_text(encoding="utf-8")


def write_report(root: str | Path, report: Mapping[str, Any]) -> Path:
    """``DIR/ingest_report.json``: the last document run's plan and skipped files."""
    path = Path(root) / REPORT
    _write_atomic(path, _json_bytes(dict(report)))
    return path
