"""Loaders, chunking and re-run planning over real files made here (Markdown, text, HTML,
and PDFs written with reportlab / pypdf)."""

from __future__ import annotations

import io
import json
import sys

import pytest

from hippo.config import load_config
from hippo.errors import CorpusError
from hippo.ingest import Chunker, Tokenizer, embedder_tokenizer, read_documents
from hippo.ingest.collect import scan
from hippo.ingest.document import Document, Heading, heading_path
from hippo.ingest.plan import DocState, files_to_read, plan_documents

GUIDE = """---
title: Beekeeping handbook
author: someone
---
Intro before any heading. Bees are insects that live in colonies.

# Hives

A hive holds one colony. The queen lays eggs in the brood chamber.
Workers build comb from wax, and drones mate with queens.

## Frames

Frames hold the comb. Lift them gently and never crush a bee.

```
# a comment in code, not a heading
```

Setext heading
--------------

Under a setext heading.

# Honey

Honey is harvested in late summer, once the cells are capped.
"""

WORDS = Tokenizer("words")


def words_chunker(size: int = 40, overlap: int = 0) -> Chunker:
    return Chunker(WORDS, size, overlap)


def make_pdf(pages: list[list[str]], title: str = "Field manual", outline: bool = True) -> bytes:
    """A text PDF: the first line of each page is its heading (and an outline entry)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    c.setTitle(title)
    for i, lines in enumerate(pages):
        c.setFont("Helvetica-Bold", 16)
        c.drawString(72, 800, lines[0])
        if outline:
            c.bookmarkPage(f"p{i}")
            c.addOutlineEntry(lines[0], f"p{i}", level=0)
        c.setFont("Helvetica", 11)
        for j, line in enumerate(lines[1:]):
            c.drawString(72, 770 - 15 * j, line)
        c.showPage()
    c.save()
    return buf.getvalue()


def test_markdown_headings_structure_and_spans(tmp_path):
    (tmp_path / "guide.md").write_text(GUIDE)
    docs = read_documents(tmp_path / "guide.md")
    (doc,) = docs.documents
    assert doc.id == "guide.md" and doc.title == "Beekeeping handbook" and doc.kind == "markdown"
    assert [(h.level, h.text) for h in doc.headings] == [(1, "Hives"), (2, "Frames"), (2, "Setext heading"), (1, "Honey")]
    for h in doc.headings:  # each heading span is its line(s) in the file
        assert h.text.split()[0] in doc.text[h.start : h.end]
    assert doc.text == GUIDE  # the extracted text of a Markdown file is the file: spans cite it
    assert [h.text for h in heading_path(doc.headings, GUIDE.index("Lift them"))] == ["Hives", "Frames"]
    assert [h.text for h in heading_path(doc.headings, GUIDE.index("Honey is"))] == ["Honey"]


def test_chunks_follow_sections_and_spans_round_trip(tmp_path):
    (tmp_path / "guide.md").write_text(GUIDE)
    (doc,) = read_documents(tmp_path / "guide.md").documents
    passages = words_chunker(40).passages(doc)
    got = [(p.metadata["headings"], p.title) for p in passages]
    assert got == [
        ([], "Beekeeping handbook"),
        (["Hives"], "Beekeeping handbook > Hives"),
        (["Hives", "Frames"], "Beekeeping handbook > Hives > Frames"),
        (["Hives", "Setext heading"], "Beekeeping handbook > Hives > Setext heading"),
        (["Honey"], "Beekeeping handbook > Honey"),
    ]
    for i, p in enumerate(passages):
        s, e = p.metadata["span"]
        assert doc.text[s:e] == p.text  # span -> the chunk's text in the document
        assert p.content == f"{p.title}\n{p.text}" and p.metadata["chunk"] == i
        assert p.metadata["document_id"] == "guide.md" and p.metadata["source"].endswith("guide.md")
        assert "title:" not in p.text  # the front matter is not content
    assert "# a comment in code" in passages[2].text  # a code block stays whole and is no heading


def test_long_section_splits_at_sentences_within_the_size():
    sentences = [f"Sentence number {i} talks about bees and honey and wax." for i in range(30)]
    text = "# Long\n\n" + " ".join(sentences) + "\n"
    doc = Document("long.md", "long.md", "Long", text, "markdown", (Heading(1, "Long", 0, 6),), markdown=True)
    chunker = words_chunker(40)
    passages = chunker.passages(doc)
    assert len(passages) > 3
    for p in passages:
        assert WORDS.count(p.content) <= 40
        assert p.text.endswith(".") and p.text.startswith("Sentence")  # whole sentences
        s, e = p.metadata["span"]
        assert text[s:e] == p.text
    spans = [p.metadata["span"] for p in passages]
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # no overlap by default, in order
    overlapped = words_chunker(40, overlap=12).passages(doc)
    ov = [p.metadata["span"] for p in overlapped]
    assert any(b[0] < a[1] for a, b in zip(ov, ov[1:]))  # overlap repeats the end of the previous chunk


def test_real_tokenizer_bounds_every_passage():
    tok = embedder_tokenizer(load_config().embed)
    assert tok.hf is not None
    text = "## Section\n\n" + " ".join(f"Het Koninklijk Instituut nummer {i} publiceerde onderzoek." for i in range(200))
    doc = Document("d.md", "d.md", "Doc", text, "markdown", (Heading(2, "Section", 0, 10),), markdown=True)
    passages = Chunker(tok, 64).passages(doc)
    assert len(passages) > 5 and all(tok.count(p.content) <= 64 for p in passages)


def test_html_main_content_as_markdown(tmp_path):
    html = """<html><head><title>Garden guide</title></head><body>
    <nav><a href="/">Home</a> | <a href="/about">About us</a></nav>
    <article><h1>Growing tomatoes</h1><p>Tomatoes need full sun and warm soil. Plant them after the last frost.</p>
    <h2>Watering</h2><p>Water deeply twice a week rather than a little every day. Mulch keeps the soil moist.</p>
    <h2>Pests</h2><p>Aphids and hornworms are the usual pests. Pick hornworms off by hand.</p></article>
    <footer>Copyright 2024 Garden Inc. All rights reserved.</footer></body></html>"""
    (tmp_path / "page.html").write_text(html)
    (doc,) = read_documents(tmp_path / "page.html").documents
    assert doc.kind == "html" and doc.title == "Growing tomatoes"
    assert "Copyright" not in doc.text and "About us" not in doc.text  # boilerplate dropped
    assert [(h.level, h.text) for h in doc.headings] == [(1, "Growing tomatoes"), (2, "Watering"), (2, "Pests")]
    passages = words_chunker(60).passages(doc)
    water = next(p for p in passages if "Mulch" in p.text)
    assert water.metadata["headings"] == ["Growing tomatoes", "Watering"]
    s, e = water.metadata["span"]
    assert doc.text[s:e] == water.text


def test_pdf_pages_outline_and_spans(tmp_path):
    data = make_pdf([
        ["Chapter 1 Bees", "Honey bees live in colonies of thousands.", "The queen lays all the eggs of the hive."],
        ["Chapter 2 Wasps", "Wasps build paper nests from chewed wood."],
    ])
    (tmp_path / "manual.pdf").write_bytes(data)
    (doc,) = read_documents(tmp_path / "manual.pdf").documents
    assert doc.kind == "pdf" and doc.title == "Field manual" and len(doc.pages) == 2
    assert [(h.text, doc.text[h.start : h.end]) for h in doc.headings] == [
        ("Chapter 1 Bees", "Chapter 1 Bees"), ("Chapter 2 Wasps", "Chapter 2 Wasps")]
    passages = words_chunker(40).passages(doc)
    assert [(p.metadata["headings"], p.metadata["page"]) for p in passages] == [(["Chapter 1 Bees"], 1), (["Chapter 2 Wasps"], 2)]
    for p in passages:
        s, e = p.metadata["span"]
        assert doc.text[s:e] == p.text
    assert "paper nests" in passages[1].text


def test_json_documents(tmp_path):
    records = [{"id": "kb-1", "title": "Bees", "text": "Bees make honey.", "metadata": {"lang": "en"}},
               {"text": "Wasps make paper."}, {"title": "no text"}, "a string"]
    (tmp_path / "docs.json").write_text(json.dumps(records))
    (tmp_path / "more.jsonl").write_text('{"text": "Ants farm aphids."}\n{broken\n')
    got = read_documents(tmp_path)
    assert [(d.id, d.source) for d in got.documents] == [
        ("kb-1", "kb-1"), ("docs.json#1", f"{tmp_path}/docs.json#1"), ("more.jsonl#0", f"{tmp_path}/more.jsonl#0")]
    p = words_chunker().passages(got.documents[0])[0]
    assert p.metadata["lang"] == "en" and p.content == "Bees\nBees make honey."
    assert sorted(s.source.rsplit("/", 1)[-1] for s in got.skipped) == ["docs.json (item 2)", "docs.json (item 3)", "more.jsonl (line 2)"]


# --------------------------------------------------------------------------- bad input


def test_bad_files_are_skipped_with_one_clear_reason_each(tmp_path):
    from reportlab.pdfgen import canvas
    from pypdf import PdfReader, PdfWriter

    good = make_pdf([["Title", "Some text here."]])
    w = PdfWriter(clone_from=PdfReader(io.BytesIO(good)))
    w.encrypt("secret", algorithm="RC4-128")
    enc = io.BytesIO()
    w.write(enc)
    (tmp_path / "encrypted.pdf").write_bytes(enc.getvalue())
    img = io.BytesIO()
    c = canvas.Canvas(img)
    c.rect(50, 50, 200, 200, fill=1)  # a page with a picture and no text layer
    c.showPage()
    c.save()
    (tmp_path / "scan.pdf").write_bytes(img.getvalue())
    (tmp_path / "broken.pdf").write_bytes(good[: len(good) // 3])
    (tmp_path / "fake.pdf").write_bytes(b"this is not a PDF at all")
    (tmp_path / "app.html").write_text("<html><head><script>render()</script></head><body><div id=app></div></body></html>")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (tmp_path / "empty.md").write_text("")
    (tmp_path / "blank.txt").write_text("  \n\n ")
    (tmp_path / "big.txt").write_text("word " * 10_000)
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("x")
    (tmp_path / "ok.md").write_text("# Fine\n\nThis one is indexed.")
    files, skipped = scan(tmp_path, max_file_mb=20_000 / 1048576)  # 20,000 bytes: big.txt is over
    assert [s.source[len(str(tmp_path)) + 1 :] for s in skipped] == [".git/", "big.txt", "image.png"]
    assert len(files) == 9
    got = read_documents(tmp_path, max_file_mb=20_000 / 1048576)
    assert [d.id for d in got.documents] == ["ok.md"]
    reasons = {s.source.rsplit("/", 1)[-1] if not s.source.endswith("/") else ".git/": s.reason for s in got.skipped}
    assert reasons[".git/"].startswith("hidden folder")
    assert reasons["big.txt"].startswith("49 KB is over") and "ingest.max_file_mb" in reasons["big.txt"]
    assert reasons["image.png"].startswith("unsupported file type .png")
    assert reasons["encrypted.pdf"].startswith("encrypted PDF") and "qpdf" in reasons["encrypted.pdf"]
    assert reasons["scan.pdf"].startswith("PDF with no text layer") and "OCR" in reasons["scan.pdf"]
    assert reasons["broken.pdf"].startswith("broken or unreadable PDF")
    assert reasons["fake.pdf"].startswith("broken or unreadable PDF")
    assert reasons["app.html"].startswith("HTML with no main text")
    assert reasons["latin1.txt"].startswith("not UTF-8 text (byte 0xe9 at offset 3)") and "iconv" in reasons["latin1.txt"]
    assert reasons["empty.md"] == reasons["blank.txt"] == "empty file (no text)"
    assert all("\n" not in r for r in reasons.values())  # one line each


def test_single_named_file_errors(tmp_path):
    (tmp_path / "notes.docx").write_bytes(b"PK")
    with pytest.raises(CorpusError, match=r"notes.docx: cannot index .docx; supported: .htm, .html"):
        read_documents(tmp_path / "notes.docx")
    (tmp_path / "empty.md").write_text("")
    with pytest.raises(CorpusError, match="empty.md: empty file"):
        read_documents(tmp_path / "empty.md")


def test_missing_extra_is_named(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "trafilatura", None)  # as if hippo[documents] were not installed
    monkeypatch.setitem(sys.modules, "pypdf", None)
    (tmp_path / "a.html").write_text("<html><body><p>Text</p></body></html>")
    (tmp_path / "b.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "c.md").write_text("base install still reads Markdown")
    got = read_documents(tmp_path)
    assert [d.id for d in got.documents] == ["c.md"]
    assert {s.source.rsplit("/", 1)[-1]: s.reason for s in got.skipped} == {
        "a.html": "reading .html needs trafilatura: pip install 'hippo[documents]'",
        "b.pdf": "reading .pdf needs pypdf: pip install 'hippo[documents]'",
    }


# --------------------------------------------------------------------------- planning


def test_files_to_read_compares_hashes():
    assert files_to_read({"a": "1", "b": "2"}, {"a": "1", "b": "3", "c": "4"}) == ["b", "c"]


def test_plan_documents_every_fate():
    registered = {
        "same.md": DocState("same.md", "h1"),        # file unchanged: not read
        "edit.md": DocState("edit.md", "h2"),        # file changed, text changed
        "touch.md": DocState("touch.md", "h3"),      # file changed (bytes), document the same
        "gone.md": DocState("gone.md", "h4"),        # file removed
        "col.jsonl#0": DocState("col.jsonl", "h5"),  # record kept
        "col.jsonl#1": DocState("col.jsonl", "h6"),  # record removed from a re-read file
        "bad.pdf": DocState("bad.pdf", "h7"),        # file now unreadable
    }
    found = ["same.md", "edit.md", "touch.md", "col.jsonl", "bad.pdf", "new.md"]
    read = {"edit.md": DocState("edit.md", "h2x"), "touch.md": DocState("touch.md", "h3"),
            "col.jsonl#0": DocState("col.jsonl", "h5"), "new.md": DocState("new.md", "h8")}
    reread = ["edit.md", "touch.md", "col.jsonl", "new.md"]
    plan = plan_documents(registered, found, reread, read, failed_files=["bad.pdf"])
    assert plan.new == ["new.md"] and plan.changed == ["edit.md"]
    assert plan.unchanged == ["col.jsonl#0", "same.md", "touch.md"]
    assert plan.gone == ["col.jsonl#1", "gone.md"] and plan.deleted == [] and plan.failed == ["bad.pdf"]
    synced = plan_documents(registered, found, reread, read, failed_files=["bad.pdf"], sync=True)
    assert synced.deleted == ["col.jsonl#1", "gone.md"]
    assert plan_documents({}, [], [], {}).to_dict() == dict.fromkeys(("new", "changed", "unchanged", "gone", "deleted", "failed"), 0)


def test_pdf_reflow_joins_wrapped_lines_only():
    from hippo.ingest.pdf import reflow

    page = ("DESCRIPTION\n"
            "The APT preferences file can be used to control which versions of packages\n"
            "will be selected for installation when several versions are avail-\n"
            "able from different releases of the distribution at once.\n"
            "A short last line.\n"
            "\n"
            "Next paragraph after a blank line that is long enough to be full width.")
    assert reflow(page).split("\n") == [
        "DESCRIPTION",
        "The APT preferences file can be used to control which versions of packages will be selected for installation "
        "when several versions are avail-able from different releases of the distribution at once. A short last line.",  # hyphen kept
        "",
        "Next paragraph after a blank line that is long enough to be full width.",
    ]
