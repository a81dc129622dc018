"""PROVISIONAL document registry, kept beside an index until the living index (issue 17)
stores documents itself.

TODO(lead, living index): move the registry and the document texts into the store
(``hippo.store``, the only owner of index files) and the chunk citations into passage
metadata; then delete this module and read them through the store API.

Files, written after the index commit by :func:`save_registry`:

* ``DIR/documents.json``: ``{"format", "version", "settings", "files": {file id: sha256},
  "documents": {document id: {source, title, kind, file, hash, text, chunks: [{id,
  headings, span, chunk, page?}]}}}``;
* ``DIR/documents/<sha256>.txt``: each document's extracted text (what spans index).

Each file is written to a temporary name, fsynced, then renamed: a crash leaves the old
registry or the new one. A registry a crash left behind the index heals itself on the next
run: documents it lacks are read as new, and their passages are already in the index.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hippo.errors import IndexFormatError

REGISTRY_FILE = "documents.json"
TEXTS_DIR = "documents"
REGISTRY_FORMAT = "hippo-documents-provisional"


@dataclass
class Registry:
    """The documents of an index: what the files hashed to, and each document's record."""

    settings: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)

    def chunk_ids(self, doc_ids: Any = None) -> set[str]:
        """Passage ids of these documents (all when None)."""
        ids = self.documents if doc_ids is None else doc_ids
        return {c["id"] for d in ids for c in self.documents[d]["chunks"]}

    def find(self, key: str) -> str | None:
        """The id of the document whose id or source is ``key``."""
        if key in self.documents:
            return key
        for doc_id, rec in sorted(self.documents.items()):
            if rec.get("source") == key:
                return doc_id
        norm = os.path.normpath(key)
        for doc_id, rec in sorted(self.documents.items()):
            if os.path.normpath(str(rec.get("source", ""))) == norm or os.path.normpath(doc_id) == norm:
                return doc_id
        return None

    def citations(self) -> dict[str, dict[str, Any]]:
        """Passage id -> citation metadata (the first document, by id, when two share a chunk)."""
        out: dict[str, dict[str, Any]] = {}
        for doc_id, rec in sorted(self.documents.items()):
            for c in rec["chunks"]:
                if c["id"] not in out:
                    meta = {"document_id": doc_id, "source": rec["source"], "headings": c["headings"],
                            "span": c["span"], "chunk": c["chunk"]}
                    if "page" in c:
                        meta["page"] = c["page"]
                    out[c["id"]] = meta
        return out


def load_registry(root: str | Path) -> Registry:
    """The registry of the index at ``root``; an empty one when it has none."""
    path = Path(root) / REGISTRY_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Registry()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexFormatError(f"{path}: unreadable document registry ({exc}); re-index the folder with --rebuild") from None
    if data.get("format") != REGISTRY_FORMAT:
        raise IndexFormatError(f"{path}: not a hippo document registry; re-index the folder with --rebuild")
    return Registry(data.get("settings", {}), data.get("files", {}), data.get("documents", {}))


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def text_name(text: str) -> str:
    """The file name a document text is stored under (content-addressed)."""
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest() + ".txt"


def save_registry(root: str | Path, registry: Registry, texts: Mapping[str, str]) -> None:
    """Write the new document ``texts`` (name -> text), then the registry; then remove the
    texts no document refers to any more."""
    base = Path(root)
    folder = base / TEXTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        if not (folder / name).exists():
            _write_atomic(folder / name, text.encode("utf-8"))
    data = {"format": REGISTRY_FORMAT, "version": 1, "settings": registry.settings,
            "files": dict(sorted(registry.files.items())), "documents": dict(sorted(registry.documents.items()))}
    _write_atomic(base / REGISTRY_FILE, (json.dumps(data, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
    used = {rec["text"] for rec in registry.documents.values()}
    for p in folder.iterdir():
        if p.suffix == ".txt" and p.name not in used:
            p.unlink(missing_ok=True)


def read_text(root: str | Path, record: Mapping[str, Any]) -> str:
    """A registered document's extracted text."""
    path = Path(root) / TEXTS_DIR / str(record["text"])
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise IndexFormatError(f"{path}: document text missing ({exc.strerror}); re-index the folder") from None


def write_report(root: str | Path, report: Mapping[str, Any]) -> Path:
    """``DIR/ingest_report.json``: the last document run's plan and skipped files.

    TODO(lead, living index): the store writes this file with the commit."""
    path = Path(root) / "ingest_report.json"
    _write_atomic(path, (json.dumps(report, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
    return path
