"""Index directory layout and atomic writes.

::

    DIR/
      CURRENT            name of the live generation, e.g. "gen-000003"
      gen-000003/        one complete, immutable index
        manifest.json    format, versions, embedder, extractor, config, counts, file digests
        *.json, *.jsonl  passages, entities, facts, raw extractions
        *.npy            vectors and graph arrays (memory-mapped on open)
        stats.json       timings and the history of every write (the only file that
                         differs between identical builds)
      gen-000002/        the previous generation, kept for readers that still use it
      .lock              the writer lock (see :mod:`hippo.store.locks`)
      .work/             what an interrupted write had done (see :mod:`hippo.store.workcache`)

A write builds a new generation in a temporary folder, fsyncs every file, renames the
folder into place, then atomically replaces ``CURRENT``. A crash at any point leaves the
old index (or no index) readable, never a torn one. Afterwards the oldest generations
beyond ``keep`` are deleted, except any that a reader still has open. Nothing here is pickled.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hippo.errors import HippoError, IndexFormatError
from hippo.store.strings import StringTable
from hippo.store.locks import LOCK_FILE, Pin, holds_writer_lock, pin_generation, try_claim_for_deletion, writer_lock

FORMAT_NAME = "hippo-index"
FORMAT_VERSION = 1
_GEN = re.compile(r"^gen-(\d{6})$")
WORK_DIR = ".work"
"""Resume cache of an interrupted write (:mod:`hippo.store.workcache`)."""
_OWN = (LOCK_FILE, WORK_DIR)


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
            if p.name not in _OWN and not p.name.startswith((".tmp-", ".trash-")) and not _GEN.match(p.name)
        ]
        if others:
            raise HippoError(
                f"{directory} is not empty and is not a hippo index; refusing to write into it (choose another --out)"
            )


def check_writable(directory: str | Path) -> None:
    """Refuse to write into something that is neither missing, empty, nor a hippo index."""
    _check_writable(Path(directory))


def generation_numbers(directory: Path) -> list[int]:
    """Numbers of the generation folders present, ascending (committed or not)."""
    return sorted(int(m.group(1)) for p in directory.iterdir() if (m := _GEN.match(p.name)))


def next_generation(directory: str | Path) -> str:
    """Name the next write will give its generation (after :func:`discard_uncommitted`)."""
    numbers = generation_numbers(Path(directory))
    return f"gen-{(numbers[-1] + 1) if numbers else 1:06d}"


def discard_uncommitted(directory: str | Path) -> None:
    """Remove what interrupted writes left: temporary folders, and generation folders newer
    than the live one (renamed into place, but ``CURRENT`` never pointed to them).

    Only call it holding the writer lock: nobody else writes, and no reader can have opened
    a generation that ``CURRENT`` never named.
    """
    root = Path(directory)
    if not holds_writer_lock(root):
        raise RuntimeError("discard_uncommitted needs the writer lock")
    live = current_generation(root)
    live_no = int(live[4:]) if live else 0
    for p in root.iterdir():
        m = _GEN.match(p.name)
        if (m and int(m.group(1)) > live_no) or p.name.startswith((".tmp-", ".trash-")):
            _remove(p)


def write_generation(
    directory: str | Path,
    files: Mapping[str, Any],
    manifest: dict[str, Any],
    volatile: Mapping[str, Any] | None = None,
    keep: int = 2,
    progress: Callable[[str, int, int], None] | None = None,
) -> Path:
    """Write ``files`` (name -> ndarray | JSON value | bytes) and the manifest as a new
    generation, switch ``CURRENT`` to it, then collect garbage (keeping ``keep``
    generations, and any a reader has open). Takes the writer lock unless already held.

    The manifest records the sha256 of every file. ``volatile`` files (timings, history)
    are written too but not digested: everything else is byte-identical for identical
    input. ``progress("write", i, n)`` is called as files are written. Returns the folder.
    """
    root = Path(directory)
    _check_writable(root)
    with writer_lock(root):
        _check_writable(root)
        discard_uncommitted(root)
        name = next_generation(root)
        tmp = root / f".tmp-{name}-{os.getpid()}"
        _remove(tmp)
        tmp.mkdir()
        digests = {}
        items = sorted(files.items())
        total = len(items) + len(volatile or {}) + 1
        for done, (fname, value) in enumerate(items, 1):
            digests[fname] = _write_value(tmp / fname, fname, value)
            if progress:
                progress("write", done, total)
        for fname, value in sorted((volatile or {}).items()):
            _write_file(tmp / fname, _encode(fname, value))
        manifest = {**manifest, "files": digests}
        _write_file(tmp / "manifest.json", _encode("manifest.json", manifest))
        _fsync_dir(tmp)
        if progress:
            progress("write", total, total)
        os.rename(tmp, root / name)
        _fsync_dir(root)
        pointer_tmp = root / f".tmp-CURRENT-{os.getpid()}"
        _write_file(pointer_tmp, (name + "\n").encode())
        os.replace(pointer_tmp, root / "CURRENT")
        _fsync_dir(root)
        if progress:
            progress("commit", 1, 1)
        collect_garbage(root, keep)
    return root / name


def _write_value(path: Path, name: str, value: Any) -> str:
    """Write one file of a generation and return its sha256. A large array is saved straight
    to the file and a :class:`~pathlib.Path` (a file staged on the same file system, e.g. a
    search index) is moved in, then hashed in chunks: neither is held twice in memory."""
    if isinstance(value, Path):
        os.replace(value, path)
        _fsync_dir(path)  # opening read-only and fsyncing works for files too
        return file_digest(path)
    if isinstance(value, np.ndarray) and value.nbytes > 1 << 26:
        with open(path, "wb") as fh:
            np.save(fh, np.ascontiguousarray(value), allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        return file_digest(path)
    data = _encode(name, value)
    _write_file(path, data)
    return hashlib.sha256(data).hexdigest()


def file_digest(path: Path, chunk: int = 1 << 24) -> str:
    """sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def collect_garbage(directory: str | Path, keep: int = 2) -> list[str]:
    """Delete committed generations older than the newest ``keep`` (the live one counts),
    skipping any that a reader has open; they go at a later write. Needs the writer lock.
    Returns the names deleted."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    root = Path(directory)
    if not holds_writer_lock(root):
        raise RuntimeError("collect_garbage needs the writer lock")
    live = current_generation(root)
    if live is None:
        return []
    live_no = int(live[4:])
    old = [n for n in generation_numbers(root) if n <= live_no][:-keep]
    deleted = []
    for n in old:
        gen = root / f"gen-{n:06d}"
        claim = try_claim_for_deletion(gen)
        if claim is None:  # a reader has it open
            continue
        try:
            trash = root / f".trash-{gen.name}-{os.getpid()}"
            os.rename(gen, trash)  # readers opening it from now on find it gone and retry
        finally:
            claim.close()
        _remove(trash)
        deleted.append(gen.name)
    for p in root.iterdir():
        if p.name.startswith(".tmp-"):
            _remove(p)
    return deleted


@dataclass(frozen=True)
class IndexFiles:
    """A generation opened for reading: its manifest and lazy access to its files."""

    root: Path
    generation: Path
    manifest: dict[str, Any]
    pin: Pin | None = field(default=None, repr=False, compare=False)
    """The reader pin that keeps this generation from garbage collection while this object
    lives (engines sharing it, e.g. ``with_overrides`` twins, share the pin)."""

    def close(self) -> None:
        """Release the reader pin (garbage collection may then delete the generation)."""
        if self.pin is not None:
            self.pin.close()

    def array(self, name: str, mmap: bool = True) -> npt.NDArray[Any]:
        """A ``.npy`` file, memory-mapped read-only by default."""
        arr: npt.NDArray[Any] = np.load(self.generation / name, mmap_mode="r" if mmap else None, allow_pickle=False)
        return arr

    def has(self, name: str) -> bool:
        """Whether the generation holds the file ``name``."""
        return (self.generation / name).exists()

    def prefetch(self, names: Sequence[str], chunk: int = 1 << 24) -> int:
        """Read the files ``names`` (those present) once from start to end, so that the page
        cache holds them before anything reads them at random through a memory map. Plain
        reads into one reused buffer: the pages are cached, not mapped into this process.
        (``posix_fadvise(WILLNEED)`` instead returned at once but, measured from a cold page
        cache at 10^6 passages, left the push faulting as before.) Returns the bytes read."""
        buffer = bytearray(chunk)
        total = 0
        for name in names:
            path = self.generation / name
            if not path.exists():
                continue
            with open(path, "rb", buffering=0) as fh:
                while got := fh.readinto(buffer):
                    total += got
        return total

    def strings(self, stem: str) -> StringTable:
        """The packed string table ``stem.bin`` + ``stem.off.npy``, memory-mapped."""
        offsets = self.array(f"{stem}.off.npy")
        path = self.generation / f"{stem}.bin"
        data: Any = np.memmap(path, dtype=np.uint8, mode="r") if path.stat().st_size else np.zeros(0, np.uint8)
        return StringTable(data, offsets)

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

    def stats(self) -> dict[str, Any]:
        """``stats.json``: timings of the write that made this generation and the history."""
        try:
            data: dict[str, Any] = json.loads((self.generation / "stats.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}
        return data

    def history(self) -> list[dict[str, Any]]:
        """One entry per write that led to this generation, oldest first."""
        entries: list[dict[str, Any]] = self.stats().get("history", [])
        return entries

    def verify(self) -> list[str]:
        """Names of files whose sha256 differs from the manifest (empty when intact)."""
        bad = []
        for fname, digest in self.manifest.get("files", {}).items():
            path = self.generation / fname
            if not path.exists() or file_digest(path) != digest:
                bad.append(fname)
        return bad


def read_index_files(directory: str | Path) -> IndexFiles:
    """Open the live generation of an index directory, checking its format.

    The generation is pinned for as long as the returned object lives (or until
    :meth:`IndexFiles.close`): a writer switching ``CURRENT`` meanwhile does not disturb it.
    """
    root = Path(directory)
    if not root.exists():
        raise IndexFormatError(f"index not found: {root}; build one with `hippo index CORPUS --out {root}`")
    if not root.is_dir():
        raise IndexFormatError(f"{root} is a file, not an index directory; give the folder `hippo index --out` wrote")
    for _ in range(100):
        name = current_generation(root)
        if name is None:
            if (root / WORK_DIR).exists():
                raise IndexFormatError(
                    f"{root} holds no index yet: its first build was interrupted; run the same "
                    f"`hippo index CORPUS --out {root}` again to finish it (work already done is reused)"
                )
            raise IndexFormatError(f"{root} is not a hippo index (no CURRENT file); build one with `hippo index CORPUS --out {root}`")
        gen = root / name
        pin = pin_generation(gen)
        if pin is not None:
            break
        if gen.is_dir() and not (gen / "manifest.json").exists():
            raise IndexFormatError(f"{gen}: manifest.json is missing; rebuild the index")
        time.sleep(0.01)  # collected between reading CURRENT and pinning: CURRENT has moved on
    else:
        raise IndexFormatError(f"{root}: the live generation keeps disappearing; is something deleting it?")
    try:
        manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        pin.close()
        raise IndexFormatError(f"{gen}: unreadable manifest.json ({exc}); rebuild the index") from None
    if manifest.get("format") != FORMAT_NAME:
        pin.close()
        raise IndexFormatError(f"{gen}: not a hippo index manifest (format {manifest.get('format')!r})")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        pin.close()
        raise IndexFormatError(
            f"{root}: index format version {version} is not supported by this hippo (reads version {FORMAT_VERSION}); "
            f"rebuild it with `hippo index CORPUS --out {root}` or install the hippo version that wrote it "
            f"({manifest.get('hippo_version', 'unknown')})"
        )
    return IndexFiles(root, gen, manifest, pin)
