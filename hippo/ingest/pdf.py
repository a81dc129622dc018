"""PDF loader: each page's text layer, read by ``pypdf`` (BSD-3; ``pip install
'hippo[documents]'``), pages joined by a blank line. A PDF's lines are wrapped at the page
width, so the lines of a paragraph are joined (a line much shorter than the page's full
lines ends its paragraph): chunks then end at sentences, not at line ends. The outline
(bookmarks), when the PDF has one, gives the headings: each is placed where its title
appears on its page, else at the page's start. Encrypted, image-only and broken files are
refused with the reason."""

from __future__ import annotations

import io
import logging
import re
from typing import Any

from hippo.ingest.document import Document, Heading, MissingExtra, SkipFile


def _outline(reader: Any) -> list[tuple[int, str, int]]:
    """(level, title, 0-based page) of every outline entry, in order."""
    out: list[tuple[int, str, int]] = []

    def walk(items: Any, level: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, level + 1)
                continue
            try:
                page = reader.get_destination_page_number(item)
            except Exception:  # a dangling bookmark: skip it, keep the text
                continue
            title = " ".join(str(getattr(item, "title", "") or "").split())
            if title and page is not None and page >= 0:
                out.append((level, title, int(page)))

    try:
        walk(reader.outline, 1)
    except Exception:  # a broken outline is no reason to lose the text
        return []
    return out


def reflow(text: str) -> str:
    """Join the wrapped lines of each paragraph of a page. A line shorter than 3/4 of the
    page's full lines (its 90th percentile length) ends a paragraph, as does a blank line;
    a line ending in a hyphen before a lower-case letter joins without a space."""
    lines = [line.rstrip() for line in text.split("\n")]
    lengths = sorted(len(line) for line in lines if line.strip())
    if len(lengths) < 3:
        return "\n".join(lines)
    full = lengths[int(0.9 * (len(lengths) - 1))]
    out: list[str] = []
    para = ""
    for line in lines:
        if not line.strip():
            if para:
                out.append(para)
            out.append("")
            para = ""
            continue
        if not para:
            para = line
        elif para.endswith("-") and line.lstrip()[:1].islower():
            para += line.lstrip()
        else:
            para += " " + line.lstrip()
        if len(line) < 0.75 * full:
            out.append(para)
            para = ""
    if para:
        out.append(para)
    return "\n".join(out)


def _find_line(text: str, title: str, lo: int, hi: int) -> tuple[int, int] | None:
    """The span of the line holding ``title`` (whitespace-insensitive) in ``text[lo:hi]``."""
    pattern = r"\s+".join(re.escape(w) for w in title.split())
    m = re.search(pattern, text[lo:hi])
    if not m:
        return None
    begin = text.rfind("\n", 0, lo + m.start()) + 1
    end = text.find("\n", lo + m.end())
    return max(begin, lo), (hi if end < 0 or end > hi else end)


class PDFLoader:
    """``.pdf`` files: the text layer, page by page; the outline as headings."""

    kind: str = "pdf"
    extensions: tuple[str, ...] = (".pdf",)
    extra: str = "documents"

    def load(self, data: bytes, source: str, doc_id: str, stem: str) -> list[Document | SkipFile]:
        """One document, or :class:`SkipFile` raised."""
        try:
            from pypdf import PdfReader
            from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError
        except ImportError:
            raise MissingExtra("reading .pdf needs pypdf: pip install 'hippo[documents]'") from None
        if not data.strip():
            raise SkipFile("empty file (no text)")
        logging.getLogger("pypdf").setLevel(logging.ERROR)  # it logs every recoverable glitch
        try:
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                raise SkipFile("encrypted PDF (a password is needed); decrypt it first, e.g. `qpdf --decrypt --password=PW in.pdf out.pdf`")
            pages = [reflow(page.extract_text() or "").strip() for page in reader.pages]
        except SkipFile:
            raise
        except FileNotDecryptedError:
            raise SkipFile("encrypted PDF (a password is needed); decrypt it first, e.g. `qpdf --decrypt --password=PW in.pdf out.pdf`") from None
        except DependencyError as exc:
            raise SkipFile(f"encrypted PDF that pypdf cannot decrypt here ({exc}); decrypt it first, e.g. with qpdf") from None
        except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError, RecursionError) as exc:
            raise SkipFile(f"broken or unreadable PDF ({type(exc).__name__}: {str(exc)[:120]}); re-export or repair it (e.g. `qpdf in.pdf out.pdf`)") from None
        if not any(pages):
            raise SkipFile(
                f"PDF with no text layer ({len(pages)} page(s) of images, e.g. a scan); run OCR first, e.g. `ocrmypdf in.pdf out.pdf`"
            )
        starts, parts, at = [], [], 0
        for text in pages:
            starts.append(at)
            parts.append(text)
            at += len(text) + 2
        full = "\n\n".join(parts)
        headings: list[Heading] = []
        for level, title, page in _outline(reader):
            if page >= len(pages):
                continue
            lo, hi = starts[page], starts[page] + len(pages[page])
            found = _find_line(full, title, max(lo, headings[-1].end if headings and headings[-1].start >= lo else lo), hi)
            begin, end = found if found else (lo, lo)
            headings.append(Heading(level, title, begin, end))
        headings.sort(key=lambda h: h.start)
        meta_title = ""
        try:
            info = reader.metadata
            meta_title = " ".join(str(info.get("/Title") or "").split()) if info else ""
        except Exception:  # unreadable metadata: fall back to the file name
            meta_title = ""
        return [Document(doc_id, source, meta_title or stem, full, self.kind, tuple(headings), pages=tuple(starts))]
