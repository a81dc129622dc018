"""Chunk documents into passages, counting tokens with the embedder's own tokenizer.

A document is cut at its headings first: each section (a heading's body, up to the next
heading) is chunked on its own, so a chunk never straddles two sections and its heading
path is exact. A section longer than a chunk is split by ``semantic-text-splitter`` (MIT):
at the largest unit that fits (blank lines, then lines, sentences by Unicode UAX #29, words),
with Markdown blocks (lists, code, tables) kept whole when the document is Markdown.

A chunk's passage content is its breadcrumb, a newline, then its text, as HippoRAG puts a
passage's title first: the breadcrumb is the document title and the heading path
(``Guide > Install > Debian``). The chunk size counts the breadcrumb too, so a passage
never exceeds what the embedder reads. The span ``[start, end)`` indexes the document's
extracted text; the chunk text is exactly ``document.text[start:end]``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from hippo.config import EmbedConfig, IngestConfig
from hippo.ids import passage_id
from hippo.ingest.document import Document, Heading, heading_path, page_of
from hippo.types import META_KEYS, Passage

BREADCRUMB_SEP = " > "
_WORDS = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class Tokenizer:
    """Counts tokens as the embedder does. ``hf`` is a ``tokenizers.Tokenizer`` (None: an
    approximation, one token per word or punctuation mark, for embedders without one)."""

    name: str
    hf: Any = None

    def count(self, text: str) -> int:
        """Tokens in ``text``, without the special tokens the embedder adds."""
        if self.hf is None:
            return len(_WORDS.findall(text))
        return len(self.hf.encode(text, add_special_tokens=False).ids)


@lru_cache(maxsize=8)
def _hf_tokenizer(folder: str) -> Any:
    path = Path(folder)
    if (path / "tokenizer.json").is_file():
        from tokenizers import Tokenizer as HFTokenizer

        tok = HFTokenizer.from_file(str(path / "tokenizer.json"))
    else:  # a model folder with only the slow tokenizer files
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True).backend_tokenizer
    tok.no_truncation()
    tok.no_padding()
    return tok


def embedder_tokenizer(embed: EmbedConfig) -> Tokenizer:
    """The tokenizer of the configured sentence-transformers model, loaded from its folder
    (no model weights); the word approximation for ``hashing:`` and ``openai:`` embedders."""
    if embed.model.startswith(("hashing:", "openai:")):
        return Tokenizer("words")
    from hippo.embed.st import resolve_model_path

    folder = resolve_model_path(embed.model)
    return Tokenizer(embed.model, _hf_tokenizer(str(folder)))


@dataclass(frozen=True)
class Chunk:
    """A piece of a document: ``text == document.text[start:end]``, its heading path
    (outermost first), its breadcrumb title, and its index in the document."""

    index: int
    start: int
    end: int
    text: str
    headings: tuple[str, ...]
    title: str


class Chunker:
    """Splits documents into chunks of at most ``size`` tokens (breadcrumb included) with up
    to ``overlap`` tokens repeated between neighbours of one section.

    ``breadcrumb``: ``path`` (title and heading path, the default), ``title`` (the document
    title only) or ``none``. ``sections=False`` lets chunks run across headings (the whole
    text is split at once; measured worse, kept for the benchmark).
    """

    def __init__(
        self, tokenizer: Tokenizer, size: int, overlap: int = 0, breadcrumb: str = "path", sections: bool = True
    ) -> None:
        if breadcrumb not in ("path", "title", "none"):
            raise ValueError(f"breadcrumb must be path, title or none, not {breadcrumb!r}")
        self.tokenizer, self.size, self.overlap = tokenizer, size, overlap
        self.breadcrumb, self.sections = breadcrumb, sections
        self._splitters: dict[tuple[bool, int], Any] = {}

    @classmethod
    def from_config(cls, ingest: IngestConfig, embed: EmbedConfig) -> Chunker:
        """The chunker the config describes, with the embedder's tokenizer."""
        return cls(embedder_tokenizer(embed), ingest.chunk_tokens, ingest.chunk_overlap)

    def _splitter(self, markdown: bool, capacity: int) -> Any:
        capacity = max(8, capacity - capacity % 4)  # few distinct splitters: each costs ~30 ms to make
        key = (markdown, capacity)
        found = self._splitters.get(key)
        if found is None:
            from semantic_text_splitter import MarkdownSplitter, TextSplitter

            kind = MarkdownSplitter if markdown else TextSplitter
            overlap = min(self.overlap, capacity // 2)
            if self.tokenizer.hf is not None:
                found = kind.from_huggingface_tokenizer(self.tokenizer.hf, capacity, overlap=overlap)
            else:
                found = kind.from_callback(self.tokenizer.count, capacity, overlap=overlap)
            self._splitters[key] = found
        return found

    def crumb(self, doc: Document, path: Sequence[Heading]) -> str:
        """The breadcrumb title of a chunk under ``path``."""
        if self.breadcrumb == "none":
            return ""
        names = [h.text for h in path] if self.breadcrumb == "path" else []
        if names and doc.title and names[0].casefold() == doc.title.casefold():
            names = names[1:]  # a leading "# Title" heading is the title
        return BREADCRUMB_SEP.join([x for x in (doc.title, *names) if x])

    def _pieces(self, doc: Document, lo: int, hi: int, crumb: str) -> list[tuple[int, int]]:
        budget = self.size - (self.tokenizer.count(crumb + "\n") if crumb else 0)
        budget = max(budget, self.size // 2)  # a very long breadcrumb: the embedder may cut its tail
        return [(lo + off, lo + off + len(piece)) for off, piece in self._splitter(doc.markdown, budget).chunk_indices(doc.text[lo:hi])]

    def chunk(self, doc: Document) -> list[Chunk]:
        """The chunks of ``doc`` in text order."""
        if not self.sections:
            spans = self._pieces(doc, doc.start, len(doc.text), self.crumb(doc, []) + " > a heading path")
            return [self._make(doc, i, s, e, heading_path(doc.headings, s)) for i, (s, e) in enumerate(spans)]
        out: list[Chunk] = []
        marks = [h for h in doc.headings if h.start >= doc.start]
        bounds: list[tuple[int, int, Heading | None]] = [(doc.start, marks[0].start if marks else len(doc.text), None)]
        bounds += [(h.end, marks[j + 1].start if j + 1 < len(marks) else len(doc.text), h) for j, h in enumerate(marks)]
        for lo, hi, head in bounds:
            if lo >= hi or not doc.text[lo:hi].strip():
                continue
            path = heading_path(marks, head.start) if head is not None else []
            for s, e in self._pieces(doc, lo, hi, self.crumb(doc, path)):
                out.append(self._make(doc, len(out), s, e, path))
        return out

    def _make(self, doc: Document, i: int, s: int, e: int, path: Sequence[Heading]) -> Chunk:
        return Chunk(i, s, e, doc.text[s:e], tuple(h.text for h in path), self.crumb(doc, path))

    def passages(self, doc: Document, chunks: Sequence[Chunk] | None = None) -> list[Passage]:
        """One passage per chunk: content ``breadcrumb + "\\n" + text``, a content-hash id,
        and the citation metadata (``document_id``, ``source``, ``title`` (the document's),
        ``headings``, ``span``, ``chunk``, and ``page`` for PDFs) over the document's own metadata."""
        own = {k: v for k, v in doc.metadata.items() if k not in META_KEYS}
        out = []
        for c in self.chunk(doc) if chunks is None else chunks:
            content = f"{c.title}\n{c.text}" if c.title else c.text
            meta: dict[str, Any] = {
                **own, "document_id": doc.id, "source": doc.source, "title": doc.title, "headings": list(c.headings),
                "span": [c.start, c.end], "chunk": c.index,
            }
            if doc.pages:
                meta["page"] = page_of(doc, c.start)
            out.append(Passage(passage_id(content), content, c.title, meta))
        return out

