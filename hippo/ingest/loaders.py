"""The loader interface and the registry of loaders by file extension."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from hippo.ingest.document import Document, SkipFile
from hippo.ingest.html import HTMLLoader
from hippo.ingest.jsondocs import JSONLoader
from hippo.ingest.pdf import PDFLoader
from hippo.ingest.text import MarkdownLoader, TextLoader


@runtime_checkable
class Loader(Protocol):
    """Reads one file type into documents."""

    kind: str
    """Short name, e.g. ``markdown``; stored as the document's ``kind``."""
    extensions: tuple[str, ...]
    """Lower-case file extensions it reads, with the dot."""
    extra: str
    """The ``hippo[...]`` extra its libraries come from; empty for the base install."""

    def load(self, data: bytes, source: str, doc_id: str, stem: str) -> list[Document | SkipFile]:
        """The documents in ``data`` (a file's bytes), in order, with a :class:`SkipFile`
        in place of each part that cannot be read. A file that cannot be read at all raises
        :class:`SkipFile`. ``source`` is the path as given, ``doc_id`` the document id,
        ``stem`` the file name without extension (the fallback title)."""
        ...


LOADERS: dict[str, Loader] = {}
"""Loader by lower-case extension (with the dot)."""


def register_loader(loader: Loader) -> None:
    """Make ``loader`` read its extensions (replacing any loader they had)."""
    for ext in loader.extensions:
        LOADERS[ext.lower()] = loader


for _loader in (MarkdownLoader(), TextLoader(), HTMLLoader(), PDFLoader(), JSONLoader()):
    register_loader(_loader)


def loader_for(path: str | Path) -> Loader | None:
    """The loader of ``path``'s extension, or None when no loader reads it."""
    return LOADERS.get(Path(path).suffix.lower())


def supported() -> str:
    """The extensions loaders read, for messages: ``.htm, .html, ...``."""
    return ", ".join(sorted(LOADERS))
