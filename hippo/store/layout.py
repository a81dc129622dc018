"""Index directory layout and atomic writes.

::

    DIR/
      CURRENT            name of the live generation, e.g. "gen-000003"
      gen-000003/        one complete, immutable index
        manifest.json    format, versions, embedder, extractor, config, counts, file digests
        *.json, *.jsonl  passages, entities, facts, raw extractions
        *.npy            vectors and graph arrays (memory-mapped on open)
        stats.json       build timings (the only file that differs between identical builds)
      gen-000002/        the previous generation, kept for readers that still use it

A write builds a new generation in a temporary folder, fsyncs every file, renames the
folder into place, then atomically replaces ``CURRENT``. A crash at any point leaves the
old index (or no index) readable, never a torn one. Nothing here is pickled.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hippo.errors import HippoError, IndexFormatError

FORMAT_NAME = "hippo-index"
FORMAT_VERSION = 1
_GEN = re.compile(r"^gen-(\d{6})$")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _encode(name: str, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, np.ndarray):
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(value), allow_pickle=False)
        return buf.getvalue()
    if name.endswith(".jsonl"):
        return "".join(json.dumps(v, ensure_ascii=False, sort_keys=True) + "\n" for v in value).encode()
    return (json.dumps(value, ensure_ascii=False, sort_keys=True, indent=1) + "\n").encode()


@contextlib.contextmanager
def writer_lock(directory: Path) -> Iterator[None]:
    """Exclusive lock on an index directory; a second writer fails at once."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise HippoError(f"{directory} is being written by another process; wait for it to finish") from None
        yield
    finally:
        os.close(fd)


def current_generation(directory: Path) -> str | None:
    """Name of the live generation, or None when ``directory`` holds no index."""
    pointer = directory / "CURRENT"
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if not _GEN.match(name) or not (directory / name).is_dir():
        raise IndexFormatError(f"{directory}: CURRENT points to {name!r}, which is not a generation folder; rebuild the index")
    return name


def _check_writable(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise HippoError(f"{directory} exists and is not a folder; choose another --out")
    if directory.is_dir() and not (directory / "CURRENT").exists():
        # Generation folders without CURRENT are what a crash during the first build leaves.
        others = [
            p.name for p in directory.iterdir()
            if p.name != ".lock" and not p.name.startswith(".tmp-") and not _GEN.match(p.name)
        ]
        if others:
            raise HippoError(
                f"{directory} is not empty and is not a hippo index; refusing to write into it (choose another --out)"
            )


def write_generation(
    directory: str | Path,
    files: Mapping[str, Any],
    manifest: dict[str, Any],
    volatile: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``files`` (name -> ndarray | JSON value | bytes) and the manifest as a new generation.

    The manifest records the sha256 of every file. ``volatile`` files (timings, argv) are
    written too but not digested: everything else is byte-identical for identical input.
    Returns the new generation folder.
    """
    root = Path(directory)
    _check_writable(root)
    with writer_lock(root):
        _check_writable(root)
        live = current_generation(root) if (root / "CURRENT").exists() else None
        numbers = [int(m.group(1)) for p in root.iterdir() if (m := _GEN.match(p.name))]
        name = f"gen-{(max(numbers) + 1) if numbers else 1:06d}"
        tmp = root / f".tmp-{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        digests = {}
        for fname, value in sorted(files.items()):
            data = _encode(fname, value)
            digests[fname] = hashlib.sha256(data).hexdigest()
            _write_file(tmp / fname, data)
        for fname, value in sorted((volatile or {}).items()):
            _write_file(tmp / fname, _encode(fname, value))
        manifest = {**manifest, "files": digests}
        _write_file(tmp / "manifest.json", _encode("manifest.json", manifest))
        _fsync_dir(tmp)
        os.rename(tmp, root / name)
        _fsync_dir(root)
        pointer_tmp = root / f".tmp-CURRENT-{os.getpid()}"
        _write_file(pointer_tmp, (name + "\n").encode())
        os.replace(pointer_tmp, root / "CURRENT")
        _fsync_dir(root)
        # Keep the generation readers may still use (the one CURRENT pointed to), not
        # merely the highest-numbered one: a crashed write can leave an unused newer one.
        _collect_garbage(root, keep={name, live or name})
    return root / name


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _collect_garbage(root: Path, keep: set[str]) -> None:
    for p in root.iterdir():
        if (_GEN.match(p.name) and p.name not in keep) or p.name.startswith(".tmp-"):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


@dataclass(frozen=True)
class IndexFiles:
    """A generation opened for reading: its manifest and lazy access to its files."""

    root: Path
    generation: Path
    manifest: dict[str, Any]

    def array(self, name: str, mmap: bool = True) -> npt.NDArray[Any]:
        """A ``.npy`` file, memory-mapped read-only by default."""
        arr: npt.NDArray[Any] = np.load(self.generation / name, mmap_mode="r" if mmap else None, allow_pickle=False)
        return arr

    def json(self, name: str) -> Any:
        """A JSON file."""
        return json.loads((self.generation / name).read_text(encoding="utf-8"))

    def jsonl(self, name: str) -> list[Any]:
        """A JSON Lines file."""
        with open(self.generation / name, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    def describe(self) -> dict[str, Any]:
        """What ``hippo info --json`` prints: counts, embedder, extractor, config, versions."""
        m = self.manifest
        return {
            "path": str(self.root),
            "generation": self.generation.name,
            "format_version": m["format_version"],
            "counts": m["counts"],
            "embedder": m["embedder"],
            "extractor": m["extractor"],
            "config": m["config"],
            "versions": m["versions"],
        }

    def verify(self) -> list[str]:
        """Names of files whose sha256 differs from the manifest (empty when intact)."""
        bad = []
        for fname, digest in self.manifest.get("files", {}).items():
            path = self.generation / fname
            if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                bad.append(fname)
        return bad


def read_index_files(directory: str | Path) -> IndexFiles:
    """Open the live generation of an index directory, checking its format."""
    root = Path(directory)
    if not root.exists():
        raise IndexFormatError(f"index not found: {root}; build one with `hippo index CORPUS --out {root}`")
    if not root.is_dir():
        raise IndexFormatError(f"{root} is a file, not an index directory; give the folder `hippo index --out` wrote")
    name = current_generation(root)
    if name is None:
        raise IndexFormatError(f"{root} is not a hippo index (no CURRENT file); build one with `hippo index CORPUS --out {root}`")
    gen = root / name
    try:
        manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise IndexFormatError(f"{gen}: unreadable manifest.json ({exc}); rebuild the index") from None
    if manifest.get("format") != FORMAT_NAME:
        raise IndexFormatError(f"{gen}: not a hippo index manifest (format {manifest.get('format')!r})")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexFormatError(
            f"{root}: index format version {version} is not supported by this hippo (reads version {FORMAT_VERSION}); "
            f"rebuild it with `hippo index CORPUS --out {root}` or install the hippo version that wrote it "
            f"({manifest.get('hippo_version', 'unknown')})"
        )
    return IndexFiles(root, gen, manifest)
