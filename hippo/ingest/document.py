"""What a loader returns: a document's extracted text and its heading structure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hippo.errors import HippoError


class SkipFile(HippoError):
    """A file (or one record of it) that cannot be indexed; the message says why and what to do.

    A folder run reports it and indexes the rest; a single named file fails with it.
    ``where`` names the part of the file (``line 3``) when only that part is bad."""

    def __init__(self, reason: str, where: str = "") -> None:
        super().__init__(reason)
        self.where = where


class MissingExtra(SkipFile):
    """Reading this file type needs an optional dependency (``pip install 'hippo[documents]'``)."""


@dataclass(frozen=True)
class Heading:
    """A heading of a document: its level (1 = outermost), text, and where its line is in
    the document's extracted text (``start``/``end`` character offsets, end exclusive)."""

    level: int
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Document:
    """One document as a loader read it.

    ``text`` is the extracted text every span indexes (a Markdown or text file's own text,
    HTML's main content as Markdown, a PDF's pages). ``headings`` are in text order.
    ``kind`` names the loader (``markdown``, ``text``, ``html``, ``pdf``, ``json``).
    ``markdown`` says the text is Markdown (lists and code blocks are kept whole when chunking).
    """

    id: str
    source: str
    title: str
    text: str
    kind: str
    headings: tuple[Heading, ...] = ()
    markdown: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)
    pages: tuple[int, ...] = ()
    """PDF only: the offset in ``text`` where each page starts."""
    start: int = 0
    """Where the content starts in ``text``: after a Markdown file's front matter, else 0."""


def heading_path(headings: Sequence[Heading], offset: int) -> list[Heading]:
    """The headings above ``offset``, outermost first: each heading before it closes every
    open heading of its level or deeper."""
    stack: list[Heading] = []
    for h in headings:
        if h.start > offset:
            break
        while stack and stack[-1].level >= h.level:
            stack.pop()
        stack.append(h)
    return stack


def page_of(doc: Document, offset: int) -> int:
    """The 1-based page of a PDF document holding ``offset`` (0 when it has no pages)."""
    page = 0
    for i, start in enumerate(doc.pages):
        if start > offset:
            break
        page = i + 1
    return page
