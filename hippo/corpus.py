"""Read a corpus into passages.

Accepted inputs:

* the HippoRAG 2 corpus format: a JSON list of ``{"title": ..., "text": ...}``
  (an ``idx`` or ``id`` key is kept as the passage id);
* JSON Lines, one ``{"id"?: ..., "title"?: ..., "text": ...}`` per line;
* documents: a folder (``.md .txt .html .htm .pdf .json .jsonl``, recursively) or one
  ``.md``/``.txt``/``.html``/``.pdf`` file, chunked by :mod:`hippo.ingest` with the default
  ``ingest.*`` settings (files that cannot be read are skipped with a logged warning).
  ``hippo index`` and :func:`hippo.ingest.pipeline.index_documents` also keep the documents
  for citations and re-runs.

A passage's content is ``title + "\\n" + text`` when it has a title. Its id is the
given ``id`` when present, else a content hash (``p-<16 hex>``). Passages with identical
content are kept once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hippo.errors import CorpusError

if TYPE_CHECKING:
    from hippo.config import Config
from hippo.ids import passage_id
from hippo.types import Passage

_FORMATS = "a JSON list of {title, text}, a .jsonl file of {id?, title?, text}, or a folder of documents"
_DOCUMENT_FILES = (".md", ".markdown", ".txt", ".html", ".htm", ".pdf")


def make_passage(text: str, title: str = "", id: str | None = None) -> Passage:
    """A passage from a title and body; the id defaults to a content hash."""
    content = f"{title}\n{text}" if title else text
    return Passage(id=id if id else passage_id(content), content=content, title=title)


def _from_record(record: Any, where: str) -> Passage:
    if isinstance(record, str):
        if not record.strip():
            raise CorpusError(f"{where}: empty passage text; remove it or give it text")
        return make_passage(record)
    if not isinstance(record, Mapping):
        raise CorpusError(f"{where}: expected an object with a \"text\" field, got {type(record).__name__}")
    text = record.get("text", record.get("paragraph_text"))
    if not isinstance(text, str):
        raise CorpusError(f"{where}: missing string field \"text\" (keys: {', '.join(map(str, record)) or 'none'})")
    title = record.get("title") or ""
    if not isinstance(title, str):
        raise CorpusError(f"{where}: field \"title\" must be a string")
    if not text.strip() and not title.strip():
        raise CorpusError(f"{where}: empty passage (no title, no text); remove it")
    raw_id = record.get("id", record.get("idx"))
    pid = None if raw_id is None or raw_id == "" else str(raw_id)
    return make_passage(text, title, pid)


def dedupe_passages(passages: Iterable[Passage], source: str | Path = "passages") -> list[Passage]:
    """Drop exact repeats; refuse one id on two texts and an empty corpus."""
    seen_ids: dict[str, Passage] = {}
    seen_content: set[str] = set()
    out = []
    for p in passages:
        if p.id in seen_ids:
            if seen_ids[p.id].content == p.content:
                continue
            raise CorpusError(f"{source}: id {p.id!r} is used by two passages with different text; ids must be unique")
        if p.content in seen_content:
            continue
        seen_ids[p.id] = p
        seen_content.add(p.content)
        out.append(p)
    if not out:
        raise CorpusError(f"{source}: the corpus is empty; give {_FORMATS}")
    return out


def _documents(src: Path, config: Config | None) -> list[Passage]:
    from hippo.config import load_config
    from hippo.ingest import Chunker, read_documents

    config = config or load_config()
    docs = read_documents(src, config.ingest.max_file_mb)
    chunker = Chunker.from_config(config.ingest, config.embed)
    return dedupe_passages([p for d in docs.documents for p in chunker.passages(d)], src)


def read_corpus(path: str | Path, config: Config | None = None) -> list[Passage]:
    """Read passages from ``path`` (file or folder), validating every record; documents are
    chunked with ``config``'s ``ingest.*`` settings and embedder tokenizer (default: the defaults)."""
    src = Path(path)
    if not src.exists():
        raise CorpusError(f"corpus not found: {src}; give {_FORMATS}")
    if src.is_dir() or src.suffix.lower() in _DOCUMENT_FILES:
        return _documents(src, config)
    try:
        raw = src.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CorpusError(f"{src}: not UTF-8 text") from None
    if src.suffix.lower() in (".jsonl", ".ndjson"):
        from hippo.ingest.jsondocs import json_lines

        passages = []
        for lineno, record, why in json_lines(raw):
            if why:
                raise CorpusError(f"{src}:{lineno}: {why}")
            passages.append(_from_record(record, f"{src}:{lineno}"))
        return dedupe_passages(passages, src)
    if src.suffix.lower() == ".json":
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{src}: malformed JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
        if isinstance(data, Mapping) and isinstance(data.get("docs", data.get("passages")), list):
            data = data.get("docs", data.get("passages"))
        if not isinstance(data, list):
            raise CorpusError(f"{src}: expected a JSON list of passages, got {type(data).__name__}; give {_FORMATS}")
        return dedupe_passages((_from_record(r, f"{src}: item {i}") for i, r in enumerate(data)), src)
    raise CorpusError(f"{src}: unknown corpus format {src.suffix or '(no extension)'!r}; give {_FORMATS}")
