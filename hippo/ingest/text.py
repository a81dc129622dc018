"""Plain text and Markdown loaders. Markdown headings (ATX and setext, never ones inside
code blocks) are found with ``markdown-it-py``; the extracted text is the file's own text,
so a span cites the file itself (line endings normalised to ``\\n``)."""

from __future__ import annotations

import re

from hippo.ingest.document import Document, Heading, SkipFile

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?---[ \t]*(\n|\Z)", re.S)
_FM_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.M)


def decode_text(data: bytes) -> str:
    """UTF-8 text with ``\\n`` line endings; a clear :class:`SkipFile` for other encodings
    and for files with nothing but whitespace."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SkipFile(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            f"convert it, e.g. `iconv -f latin1 -t utf-8 FILE > FILE.utf8`"
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise SkipFile("empty file (no text)")
    return text


def markdown_headings(text: str, start: int = 0) -> list[Heading]:
    """The headings of Markdown ``text`` at or after offset ``start``, with their line spans."""
    from markdown_it import MarkdownIt

    line_starts = [0]
    for m in re.finditer("\n", text):
        line_starts.append(m.end())
    line_starts.append(len(text) + 1)
    out: list[Heading] = []
    tokens = MarkdownIt("commonmark").parse(text)
    for i, tok in enumerate(tokens):
        if tok.type != "heading_open" or tok.map is None:
            continue
        first, last = tok.map
        begin, end = line_starts[first], min(line_starts[last] - 1, len(text))
        if begin < start:
            continue
        inline = tokens[i + 1]
        words = "".join(c.content for c in inline.children or () if c.type in ("text", "code_inline", "softbreak"))
        title = " ".join(words.split()) or " ".join(inline.content.split())
        if title:
            out.append(Heading(int(tok.tag[1:]), title, begin, end))
    return out


def front_matter(text: str) -> tuple[int, str]:
    """The offset after a leading ``---`` YAML block (0 when there is none) and its ``title:``."""
    m = _FRONT_MATTER.match(text)
    if not m:
        return 0, ""
    t = _FM_TITLE.search(m.group(1) or "")
    return m.end(), (t.group(1).strip("\"'") if t else "")


def markdown_document(text: str, doc_id: str, source: str, stem: str, kind: str = "markdown") -> Document:
    """A Markdown document: title from front matter, else a leading level-1 heading, else ``stem``."""
    start, title = front_matter(text)
    if not text[start:].strip():
        raise SkipFile("no text besides the front matter")
    headings = markdown_headings(text, start)
    if not title:
        first = headings[0] if headings else None
        lead = text[start : first.start].strip() if first else "x"
        title = first.text if first is not None and first.level == 1 and not lead else stem
    return Document(doc_id, source, title, text, kind, tuple(headings), markdown=True, start=start)


class MarkdownLoader:
    """``.md`` files: the text as written, headings as structure."""

    kind: str = "markdown"
    extensions: tuple[str, ...] = (".md", ".markdown")
    extra: str = ""

    def load(self, data: bytes, source: str, doc_id: str, stem: str) -> list[Document | SkipFile]:
        """One document, or :class:`SkipFile` raised."""
        return [markdown_document(decode_text(data), doc_id, source, stem)]


class TextLoader:
    """``.txt`` files: the text as written, no structure; the file stem is the title."""

    kind: str = "text"
    extensions: tuple[str, ...] = (".txt",)
    extra: str = ""

    def load(self, data: bytes, source: str, doc_id: str, stem: str) -> list[Document | SkipFile]:
        """One document, or :class:`SkipFile` raised."""
        return [Document(doc_id, source, stem, decode_text(data), self.kind)]
