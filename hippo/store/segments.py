"""Index directory, format 2: immutable segments listed by one manifest, committed atomically.

::

    DIR/
      CURRENT              the manifest (JSON): format, embedder, extractor, config, counts, and
                           the segments of the live index, oldest first; replacing it commits a write
      seg-000001/          a folder segment: one file per array (memory-mapped when read)
      seg-000002.hseg      a file segment: the same members in one uncompressed zip (small writes)
      history.jsonl        one line per write (informational; appended after the commit)
      .lock                the writer lock (:mod:`hippo.store.locks`)
      .work/               the resume cache of an interrupted write (:mod:`hippo.store.workcache`)

A write makes one new segment (fsynced, renamed into place) and then replaces ``CURRENT``
(written to a temporary file, fsynced, renamed, the folder fsynced): a crash at any point
leaves the previous manifest, whose segments are untouched, or the new one. A small write
costs three fsyncs. A segment is never modified; merging segments writes a new one and a
manifest that lists it instead. Segments the live manifest no longer lists are deleted once
no reader has them pinned (a shared ``flock`` on the segment's file, or on ``meta.json`` of a
folder). This module reads and writes bytes; what the members mean is
:mod:`hippo.live`'s business. Nothing here is pickled.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hippo.errors import HippoError, IndexFormatError
from hippo.store.locks import LOCK_FILE, holds_writer_lock, share, try_claim
from hippo.store.strings import StringTable, pack_strings

FORMAT_NAME = "hippo-index"
FORMAT_VERSION = 2
POINTER = "CURRENT"
HISTORY = "history.jsonl"
WORK_DIR = ".work"
SEGMENT_SUFFIX = ".hseg"
META = "meta.json"
_SEGMENT = re.compile(r"^seg-(\d{6})(\.hseg)?$")
_OWN = (LOCK_FILE, WORK_DIR, POINTER, HISTORY)


def fsync_path(path: Path) -> None:
    """fsync a file or a folder (opening read-only works for both)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_digest(path: Path, chunk: int = 1 << 24) -> str:
    """sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def encode_member(name: str, value: Any) -> bytes:
    """Bytes of one segment member: ``.npy`` arrays (no pickle), ``.bin`` raw bytes, JSON Lines
    (``.jsonl``, a list of objects) or JSON (anything else)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, np.ndarray):
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(value), allow_pickle=False)
        return buf.getvalue()
    if name.endswith(".jsonl"):
        return "".join(json.dumps(v, ensure_ascii=False, sort_keys=True) + "\n" for v in value).encode()
    return (json.dumps(value, ensure_ascii=False, sort_keys=True, indent=1) + "\n").encode()


def string_members(stem: str, strings: Sequence[str]) -> dict[str, Any]:
    """The two members of a packed string table (:mod:`hippo.store.strings`)."""
    data, off = pack_strings(strings)
    return {f"{stem}.bin": data.tobytes(), f"{stem}.off.npy": off}


# --------------------------------------------------------------------------- writing


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _write_large(path: Path, value: Any) -> str:
    """Write one member of a folder segment and return its sha256; a large array is saved
    straight to the file and a staged :class:`~pathlib.Path` (e.g. a search index) moved in."""
    if isinstance(value, Path):
        os.replace(value, path)
        fsync_path(path)
        return file_digest(path)
    if isinstance(value, np.ndarray) and value.nbytes > 1 << 26:
        with open(path, "wb") as fh:
            np.save(fh, np.ascontiguousarray(value), allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        return file_digest(path)
    data = encode_member(path.name, value)
    _write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def next_segment_number(root: Path, manifest: Mapping[str, Any] | None) -> int:
    """One more than any segment number in use: listed by the manifest or present on disk."""
    used = [0]
    if manifest is not None:
        used += [int(_SEGMENT.match(s["name"]).group(1)) for s in manifest["segments"]]  # type: ignore[union-attr]
    used += [int(m.group(1)) for p in root.iterdir() if (m := _SEGMENT.match(p.name.removeprefix(".tmp-")))]
    return max(used) + 1


def write_segment(root: str | Path, number: int, members: Mapping[str, Any], meta: dict[str, Any], folder: bool) -> dict[str, Any]:
    """Write a segment (``folder``: ``seg-N/`` with one file per member; else ``seg-N.hseg``)
    under a temporary name, fsync it, and rename it into place. The index folder itself is
    fsynced by the commit that lists it. Returns its manifest entry: name, bytes, sha256 (of
    the file, or of ``meta.json`` for a folder, which holds every member's sha256)."""
    base = Path(root)
    if folder:
        name = f"seg-{number:06d}"
        tmp = base / f".tmp-{name}"
        _remove(tmp)
        tmp.mkdir()
        digests = {fname: _write_large(tmp / fname, value) for fname, value in sorted(members.items())}
        meta_bytes = encode_member(META, {**meta, "files": digests})
        _write_bytes(tmp / META, meta_bytes)
        fsync_path(tmp)
        size = sum(p.stat().st_size for p in tmp.iterdir())
        os.rename(tmp, base / name)
        return {"name": name, "bytes": size, "sha256": hashlib.sha256(meta_bytes).hexdigest()}
    name = f"seg-{number:06d}{SEGMENT_SUFFIX}"
    # Written under its final name (no rename to pay for): until a manifest lists it, nobody
    # reads it, and a write killed half way leaves an unlisted file the next write collects.
    tmp = base / name
    with open(tmp, "wb") as fh:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as zf:
            for fname, value in [(META, meta), *sorted(members.items())]:
                # a fixed timestamp: equal members give equal bytes
                zf.writestr(zipfile.ZipInfo(fname, date_time=(1980, 1, 1, 0, 0, 0)), encode_member(fname, value))
        fh.flush()
        os.fsync(fh.fileno())
    digest = file_digest(tmp)
    size = tmp.stat().st_size
    return {"name": name, "bytes": size, "sha256": digest}


def commit(root: str | Path, manifest: dict[str, Any], history: dict[str, Any] | None = None) -> None:
    """Make ``manifest`` the live one (needs the writer lock): ``CURRENT`` is replaced
    atomically and the folder fsynced, which also makes the new segment's name durable. Then
    ``history`` is appended to ``history.jsonl`` (best effort: it is informational)."""
    base = Path(root)
    if not holds_writer_lock(base):
        raise RuntimeError("commit needs the writer lock")
    tmp = base / f".tmp-{POINTER}-{os.getpid()}"
    _write_bytes(tmp, encode_member(POINTER, manifest))
    os.replace(tmp, base / POINTER)
    fsync_path(base)
    if history is not None:
        with open(base / HISTORY, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(history, ensure_ascii=False, sort_keys=True) + "\n")


def read_manifest(root: str | Path) -> dict[str, Any] | None:
    """The live manifest of ``root``, or None when it holds no index (no ``CURRENT``).

    Raises :class:`IndexFormatError` for a format-1 index (``CURRENT`` names a generation
    folder), an unreadable manifest, or an unknown format version.
    """
    base = Path(root)
    try:
        text = (base / POINTER).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexFormatError(f"{base}: unreadable {POINTER} ({exc}); rebuild the index") from None
    if text.startswith("gen-"):
        raise IndexFormatError(
            f"{base} is a format-1 index (written by hippo before segments); upgrade it in place with "
            f"`hippo upgrade {base}` (no extraction or embedding is redone), or rebuild it"
        )
    try:
        manifest: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IndexFormatError(f"{base}: {POINTER} is not valid JSON ({exc.msg}); rebuild the index") from None
    if manifest.get("format") != FORMAT_NAME:
        raise IndexFormatError(f"{base}: not a hippo index manifest (format {manifest.get('format')!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexFormatError(
            f"{base}: index format version {manifest.get('format_version')} is not supported by this hippo "
            f"(reads version {FORMAT_VERSION}); install the hippo version that wrote it "
            f"({manifest.get('hippo_version', 'unknown')}) or rebuild the index"
        )
    return manifest


def is_format1(root: str | Path) -> bool:
    """Whether ``root`` holds a format-1 index (``CURRENT`` names a ``gen-N`` folder)."""
    try:
        return (Path(root) / POINTER).read_text(encoding="utf-8").startswith("gen-")
    except (OSError, UnicodeDecodeError):
        return False


def check_writable(root: str | Path) -> None:
    """Refuse to write into something that is neither missing, empty, nor a hippo index."""
    base = Path(root)
    if base.exists() and not base.is_dir():
        raise HippoError(f"{base} exists and is not a folder; choose another --out")
    if base.is_dir() and not (base / POINTER).exists():
        others = [
            p.name for p in base.iterdir()
            if p.name not in _OWN and not p.name.startswith(".tmp-") and not _SEGMENT.match(p.name)
        ]
        if others:
            raise HippoError(f"{base} is not empty and is not a hippo index; refusing to write into it (choose another --out)")


# --------------------------------------------------------------------------- reading


class SegmentFiles:
    """One segment opened for reading: its members by name, and a reader pin (a shared
    ``flock``) that keeps garbage collection from deleting it while this object lives.

    Arrays of a folder segment are memory-mapped; those of a file segment are read into
    memory (file segments are small)."""

    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        self.path = root / name
        self.folder = self.path.is_dir()
        self._fd: int | None = share(self.path / META if self.folder else self.path)
        if self._fd is None:
            raise FileNotFoundError(name)  # gone or being deleted: the caller re-reads CURRENT
        self._zip: zipfile.ZipFile | None = None
        self._names: set[str]
        if self.folder:
            self._names = {p.name for p in self.path.iterdir()}
        else:
            self._zip = zipfile.ZipFile(self.path)
            self._names = set(self._zip.namelist())
        self.meta: dict[str, Any] = self.json(META)

    def close(self) -> None:
        """Release the pin (idempotent)."""
        if self._zip is not None:
            self._zip.close()
            self._zip = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.close()

    def has(self, name: str) -> bool:
        """Whether the segment holds the member ``name``."""
        return name in self._names

    def _bytes(self, name: str) -> bytes:
        if self._zip is not None:
            return self._zip.read(name)
        return (self.path / name).read_bytes()

    def array(self, name: str, mmap: bool = True) -> npt.NDArray[Any]:
        """An ``.npy`` member (memory-mapped read-only in a folder segment by default)."""
        if self._zip is None:
            arr: npt.NDArray[Any] = np.load(self.path / name, mmap_mode="r" if mmap else None, allow_pickle=False)
            return arr
        out: npt.NDArray[Any] = np.load(io.BytesIO(self._zip.read(name)), allow_pickle=False)
        return out

    def optional(self, name: str, empty: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """:meth:`array`, or ``empty`` when the segment lacks the member."""
        return self.array(name) if self.has(name) else empty

    def strings(self, stem: str) -> StringTable:
        """The packed string table ``stem.bin`` + ``stem.off.npy``."""
        offsets = self.array(f"{stem}.off.npy")
        if self._zip is None:
            path = self.path / f"{stem}.bin"
            data: Any = np.memmap(path, dtype=np.uint8, mode="r") if path.stat().st_size else np.zeros(0, np.uint8)
        else:
            data = np.frombuffer(self._zip.read(f"{stem}.bin"), dtype=np.uint8)
        return StringTable(data, offsets)

    def json(self, name: str) -> Any:
        """A JSON member."""
        return json.loads(self._bytes(name).decode("utf-8"))

    def jsonl(self, name: str) -> list[Any]:
        """A JSON Lines member (an empty list when absent)."""
        if not self.has(name):
            return []
        return [json.loads(line) for line in self._bytes(name).decode("utf-8").splitlines() if line.strip()]

    def file_path(self, name: str) -> Path:
        """Path of a member file of a folder segment (e.g. a faiss index read by its library)."""
        if not self.folder:
            raise ValueError(f"{self.name} is a file segment; {name} has no path of its own")
        return self.path / name

    def prefetch(self, names: Sequence[str], chunk: int = 1 << 24) -> int:
        """Read the member files ``names`` once in order, so the page cache holds them before
        something reads them at random through a memory map (folder segments). Returns bytes read."""
        if not self.folder:
            return 0
        buffer = bytearray(chunk)
        total = 0
        for name in names:
            path = self.path / name
            if not path.exists():
                continue
            with open(path, "rb", buffering=0) as fh:
                while got := fh.readinto(buffer):
                    total += got
        return total

    def verify(self, entry: Mapping[str, Any]) -> list[str]:
        """Members whose bytes differ from what was written (empty when intact)."""
        if not self.folder:
            return [] if file_digest(self.path) == entry.get("sha256") else [self.name]
        meta_path = self.path / META
        if hashlib.sha256(meta_path.read_bytes()).hexdigest() != entry.get("sha256"):
            return [f"{self.name}/{META}"]
        bad = []
        for fname, digest in self.meta.get("files", {}).items():
            path = self.path / fname
            if not path.exists() or file_digest(path) != digest:
                bad.append(f"{self.name}/{fname}")
        return bad


@dataclass
class OpenIndex:
    """The live manifest of an index directory and its segments, pinned while open."""

    root: Path
    manifest: dict[str, Any]
    segments: list[SegmentFiles]
    closed: bool = field(default=False, repr=False)

    @property
    def generation(self) -> int:
        """The commit number of the manifest (each write adds one)."""
        return int(self.manifest["generation"])

    def close(self) -> None:
        """Release every segment pin."""
        for s in self.segments:
            s.close()
        self.closed = True


def open_index_files(root: str | Path, reuse: Mapping[str, SegmentFiles] | None = None) -> OpenIndex:
    """Open the live manifest of ``root`` and pin its segments. ``reuse`` (name -> open
    segment) spares reopening segments a reader already has: they are taken over as they are.

    Retries when a segment disappears between reading the manifest and pinning it (a
    compaction committed and collected it meanwhile)."""
    base = Path(root)
    if not base.exists():
        raise IndexFormatError(f"index not found: {base}; build one with `hippo index CORPUS --out {base}`")
    if not base.is_dir():
        raise IndexFormatError(f"{base} is a file, not an index directory; give the folder `hippo index --out` wrote")
    for _ in range(100):
        manifest = read_manifest(base)
        if manifest is None:
            if (base / WORK_DIR).exists():
                raise IndexFormatError(
                    f"{base} holds no index yet: its first build was interrupted; run the same "
                    f"`hippo index CORPUS --out {base}` again to finish it (work already done is reused)"
                )
            raise IndexFormatError(f"{base} is not a hippo index (no {POINTER} file); build one with `hippo index CORPUS --out {base}`")
        opened: list[SegmentFiles] = []
        try:
            for entry in manifest["segments"]:
                name = entry["name"]
                if reuse is not None and name in reuse:
                    opened.append(reuse[name])
                else:
                    opened.append(SegmentFiles(base, name))
        except FileNotFoundError:
            for s in opened:
                if reuse is None or s.name not in reuse:
                    s.close()
            time.sleep(0.005)
            continue
        except (zipfile.BadZipFile, json.JSONDecodeError, OSError) as exc:
            raise IndexFormatError(f"{base}: a segment of the live index is unreadable ({exc}); rebuild the index") from None
        return OpenIndex(base, manifest, opened)
    raise IndexFormatError(f"{base}: the live segments keep disappearing; is something deleting them?")


def manifest_changed(root: str | Path, since: Mapping[str, Any]) -> bool:
    """Whether ``CURRENT`` holds another commit than ``since`` (one small file read)."""
    try:
        text = (Path(root) / POINTER).read_text(encoding="utf-8")
    except OSError:
        return False
    try:
        return int(json.loads(text).get("generation", -1)) != int(since["generation"])
    except (ValueError, AttributeError):
        return True


def read_history(root: str | Path) -> list[dict[str, Any]]:
    """Every write recorded in ``history.jsonl``, oldest first (a torn last line is skipped)."""
    out = []
    try:
        lines = (Path(root) / HISTORY).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


# --------------------------------------------------------------------------- garbage


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def collect_garbage(root: str | Path) -> list[str]:
    """Delete segments the live manifest does not list, unless a reader pins them, and what
    interrupted writes left (temporary files and folders). Needs the writer lock. Returns the
    names deleted; pinned segments go at a later write."""
    base = Path(root)
    if not holds_writer_lock(base):
        raise RuntimeError("collect_garbage needs the writer lock")
    manifest = read_manifest(base)
    live = {s["name"] for s in manifest["segments"]} if manifest else set()
    deleted = []
    for p in sorted(base.iterdir()):
        if p.name.startswith(".tmp-"):
            _remove(p)
            continue
        if not _SEGMENT.match(p.name) or p.name in live:
            continue
        claim = try_claim(p / META if p.is_dir() else p)
        if claim is None:
            continue
        try:
            trash = base / f".tmp-trash-{p.name}-{os.getpid()}"
            os.rename(p, trash)
        finally:
            claim.close()
        _remove(trash)
        deleted.append(p.name)
    return deleted


def segment_names(manifest: Mapping[str, Any]) -> Iterator[str]:
    """Names of the segments a manifest lists, oldest first."""
    for entry in manifest["segments"]:
        yield str(entry["name"])
