"""The resume cache: work an interrupted write had already done, in ``DIR/.work``.

A write extracts and embeds in checkpoints; each checkpoint lands here before the next
starts, so a write killed at any moment loses at most one checkpoint of work. The next
write of the same directory (same extractor / embedder settings) reuses it. A successful
commit deletes the folder: by then everything in it is part of the live generation.

::

    .work/extractions.jsonl           one JSON line per extracted passage, appended
    .work/vectors/<key>-000001.json   the strings of one embedding checkpoint
    .work/vectors/<key>-000001.npy    their vectors (written last: the chunk's commit mark)

Entries are keyed by content, never trusted blindly: an extraction counts only for the
same extractor settings and the same passage text (sha256), a vector only for the same
embedder settings and the same string. A torn last line or an unfinished chunk (the
process died mid-write) is ignored. Only the writer-lock holder touches this folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hippo.protocols import FloatArray
from hippo.types import Extraction, Passage


def settings_key(settings: Any) -> str:
    """A short stable hash of JSON-serialisable settings."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def content_sha(text: str) -> str:
    """sha256 of a passage's content, as recorded with its cached extraction."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class WorkCache:
    """Checkpointed extractions and vectors of the write in progress in ``root/.work``."""

    def __init__(self, root: str | Path, extractor_key: str = "", embedder_key: str = "") -> None:
        self.dir = Path(root) / ".work"
        self.extractor_key = extractor_key
        self.embedder_key = embedder_key

    # -- extractions ----------------------------------------------------------------
    def extractions(self) -> dict[tuple[str, str], Extraction]:
        """Cached extractions by (passage id, content sha256), for this extractor only."""
        out: dict[tuple[str, str], Extraction] = {}
        path = self.dir / "extractions.jsonl"
        try:
            lines = path.read_bytes().split(b"\n")
        except FileNotFoundError:
            return out
        for line in lines:
            try:
                rec = json.loads(line)
                if rec["k"] != self.extractor_key:
                    continue
                triples = tuple((str(s), str(r), str(o)) for s, r, o in rec["triples"])
                out[(rec["id"], rec["sha"])] = Extraction(rec["id"], tuple(map(str, rec["entities"])), triples)
            except (ValueError, KeyError, TypeError):
                continue  # the torn tail of a killed write (or a blank line)
        return out

    def add_extractions(self, passages: Sequence[Passage], extractions: Sequence[Extraction]) -> None:
        """Append one checkpoint of extractions and fsync it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / "extractions.jsonl"
        _drop_torn_tail(path)
        lines = [
            json.dumps(
                {"k": self.extractor_key, "id": p.id, "sha": content_sha(p.content),
                 "entities": list(e.entities), "triples": [list(t) for t in e.triples]},
                ensure_ascii=False,
            )
            for p, e in zip(passages, extractions)
        ]
        with open(path, "ab") as fh:
            fh.write(("\n".join(lines) + "\n").encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())

    # -- vectors --------------------------------------------------------------------
    def vectors(self, dim: int | None = None) -> dict[str, FloatArray]:
        """Cached vectors by string, for this embedder only (and of dimension ``dim`` if given)."""
        out: dict[str, FloatArray] = {}
        folder = self.dir / "vectors"
        if not folder.is_dir():
            return out
        for strings_path in sorted(folder.glob(f"{self.embedder_key}-*.json")):
            try:
                texts = json.loads(strings_path.read_text(encoding="utf-8"))
                vecs = np.load(strings_path.with_suffix(".npy"), allow_pickle=False)
            except (OSError, ValueError):
                continue  # the chunk never finished
            if not isinstance(texts, list) or vecs.ndim != 2 or len(vecs) != len(texts):
                continue
            dim = vecs.shape[1] if dim is None else dim
            if vecs.shape[1] != dim:
                continue
            for text, vec in zip(texts, vecs):
                out[str(text)] = vec
        return out

    def add_vectors(self, texts: Sequence[str], vectors: FloatArray) -> None:
        """Save one checkpoint of vectors: the strings first, the vectors last (atomically)."""
        folder = self.dir / "vectors"
        folder.mkdir(parents=True, exist_ok=True)
        n = 1 + sum(1 for _ in folder.glob(f"{self.embedder_key}-*.json"))
        stem = folder / f"{self.embedder_key}-{n:06d}"
        _atomic_write(stem.with_suffix(".json"), json.dumps(list(texts), ensure_ascii=False).encode("utf-8"))
        tmp = stem.with_suffix(".npy.tmp")
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, stem.with_suffix(".npy"))

    def clear(self) -> None:
        """Forget everything (after a successful commit)."""
        shutil.rmtree(self.dir, ignore_errors=True)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _drop_torn_tail(path: Path) -> None:
    """Cut a partial last line (a write killed mid-line) so the next append starts clean."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return
    with open(path, "rb+") as fh:
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        fh.seek(0)
        content = fh.read()
        fh.truncate(content.rfind(b"\n") + 1)
