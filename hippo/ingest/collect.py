"""Find the files of a folder, read them through their loaders, and say what was skipped."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from hippo.errors import CorpusError
from hippo.ingest.document import Document, SkipFile
from hippo.ingest.loaders import loader_for, supported
from hippo.ingest.plan import file_hash

log = logging.getLogger("hippo.ingest")


@dataclass(frozen=True)
class SourceFile:
    """A file to read: where it is, its path as given (``source``) and its document id (its
    path relative to the folder given, with ``/``; its name when a single file is given)."""

    path: Path
    source: str
    id: str


@dataclass(frozen=True)
class Skipped:
    """A file, or a part of one, that was not indexed, and why."""

    source: str
    reason: str

    def line(self) -> str:
        """The one line printed for it."""
        return f"skipped {self.source}: {self.reason}"

    def to_dict(self) -> dict[str, str]:
        """JSON shape."""
        return {"source": self.source, "reason": self.reason}


@dataclass(frozen=True)
class Loaded:
    """What one file gave: its hash, its documents, and the records of it that were skipped."""

    file: SourceFile
    hash: str
    documents: list[Document]
    skipped: list[Skipped] = field(default_factory=list)


def scan(path: str | Path, max_file_mb: float, exclude: Path | None = None) -> tuple[list[SourceFile], list[Skipped]]:
    """The readable files under ``path`` (a folder, recursively, or one file), sorted, and the
    ones skipped: unsupported extensions, hidden files and folders, files over the size
    limit, and the folder ``exclude`` (the index being written, when it is inside ``path``).
    A single named file of an unsupported type is an error."""
    root = Path(path)
    if not root.exists():
        raise CorpusError(f"not found: {root}; give a folder of documents or a file ({supported()})")
    limit = int(max_file_mb * 1024 * 1024)
    if root.is_file():
        if loader_for(root) is None:
            raise CorpusError(f"{root}: cannot index {root.suffix or 'files without an extension'}; supported: {supported()}")
        one = SourceFile(root, str(path), root.name)
        too_big = _too_big(one, limit, max_file_mb)
        if too_big is not None:
            raise CorpusError(f"{root}: {too_big.reason}")
        return [one], []
    files: list[SourceFile] = []
    skipped: list[Skipped] = []
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        hidden = sorted(d for d in dirs if d.startswith("."))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if exclude is not None and exclude.resolve().parent == here.resolve() and exclude.name in dirs:
            dirs.remove(exclude.name)
            skipped.append(Skipped(_given(path, here / exclude.name, root) + "/", "the index being written (--out) is not read"))
        for d in hidden:
            skipped.append(Skipped(_given(path, here / d, root) + "/", "hidden folder (names starting with '.' are not read)"))
        for name in sorted(names):
            f = here / name
            source = _given(path, f, root)
            if name.startswith("."):
                skipped.append(Skipped(source, "hidden file (names starting with '.' are not read)"))
            elif loader_for(f) is None:
                skipped.append(Skipped(source, f"unsupported file type {f.suffix or '(no extension)'}; supported: {supported()}"))
            elif f.is_file():
                sf = SourceFile(f, source, f.relative_to(root).as_posix())
                big = _too_big(sf, limit, max_file_mb)
                if big is None:
                    files.append(sf)
                else:
                    skipped.append(big)
    files.sort(key=lambda s: s.id)
    skipped.sort(key=lambda s: s.source)
    return files, skipped


def _given(path: str | Path, f: Path, root: Path) -> str:
    """``f`` as the user would write it: the folder as given, then the relative path."""
    return os.path.join(str(path), f.relative_to(root).as_posix())


def _too_big(f: SourceFile, limit: int, max_mb: float) -> Skipped | None:
    size = f.path.stat().st_size
    if size <= limit:
        return None
    shown = f"{size / 1048576:.1f} MB" if size >= 104858 else f"{size / 1024:.0f} KB"
    return Skipped(f.source, f"{shown} is over the {max_mb:g} MB limit; raise it with --set ingest.max_file_mb=N")


def read_bytes(f: SourceFile) -> bytes:
    """The file's bytes; a vanished or unreadable file is a :class:`SkipFile`."""
    try:
        return f.path.read_bytes()
    except OSError as exc:
        raise SkipFile(f"cannot read it ({exc.strerror or exc})") from None


def load(f: SourceFile, data: bytes) -> Loaded:
    """The documents of one file (raises :class:`SkipFile` when none can be read)."""
    loader = loader_for(f.path)
    if loader is None:  # pragma: no cover - scan() only returns files with a loader
        raise SkipFile(f"unsupported file type {f.path.suffix}")
    docs: list[Document] = []
    skipped: list[Skipped] = []
    for item in loader.load(data, f.source, f.id, f.path.stem):
        if isinstance(item, SkipFile):
            skipped.append(Skipped(f"{f.source} ({item.where})" if item.where else f.source, str(item)))
        else:
            docs.append(item)
    if not docs:
        reason = skipped[0].reason if len(skipped) == 1 else f"no readable document ({len(skipped)} bad records)"
        raise SkipFile(reason if skipped else "no documents in it")
    return Loaded(f, file_hash(data), docs, skipped)


def unique_ids(loaded: Iterable[Loaded], taken: Iterable[str] = ()) -> tuple[list[Loaded], list[Skipped]]:
    """Drop documents whose id another document already has (the first one keeps it)."""
    seen = set(taken)
    out, skipped = [], []
    for item in loaded:
        docs = []
        for d in item.documents:
            if d.id in seen:
                skipped.append(Skipped(d.source, f"document id {d.id!r} is already used by another document; give it another id"))
            else:
                seen.add(d.id)
                docs.append(d)
        out.append(Loaded(item.file, item.hash, docs, item.skipped))
    return out, skipped


@dataclass(frozen=True)
class DocumentSet:
    """Documents read from a path, and what was skipped."""

    documents: list[Document]
    skipped: list[Skipped]
    files: list[Loaded]


def read_documents(path: str | Path, max_file_mb: float = 50.0) -> DocumentSet:
    """Every document under ``path`` (a folder or a file). Bad files are skipped and listed;
    a single named file that cannot be read is an error (:class:`~hippo.errors.CorpusError`)."""
    files, skipped = scan(path, max_file_mb)
    single = Path(path).is_file()
    loaded: list[Loaded] = []
    for f in files:
        try:
            loaded.append(load(f, read_bytes(f)))
        except SkipFile as exc:
            if single:
                raise CorpusError(f"{f.source}: {exc}") from None
            skipped.append(Skipped(f.source, str(exc)))
    loaded, dup = unique_ids(loaded)
    skipped += dup + [s for item in loaded for s in item.skipped]
    for s in skipped:
        log.warning(s.line())
    return DocumentSet([d for item in loaded for d in item.documents], skipped, loaded)
