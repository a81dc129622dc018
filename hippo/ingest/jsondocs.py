"""JSON and JSON Lines documents: records ``{id?, title?, text, metadata?}`` (a JSON list,
``{"documents": [...]}``, or one record per line). A record's id is its ``id``, else
``<file id>#<n>`` (n = its position, from 0); its source is its ``id``, else ``<file>#<n>``."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from hippo.ingest.document import Document, SkipFile
from hippo.ingest.text import decode_text


def json_lines(raw: str) -> Iterator[tuple[int, Any, str]]:
    """``(line number, record, "")`` for each non-blank line of JSON Lines text, or
    ``(line number, None, why)`` for a line that is not JSON."""
    for lineno, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line), ""
        except json.JSONDecodeError as exc:
            yield lineno, None, f"malformed JSON ({exc.msg} at column {exc.colno})"


def _record(record: Any, n: int, doc_id: str, source: str, where: str) -> Document | SkipFile:
    if not isinstance(record, Mapping):
        return SkipFile(f"expected an object {{id?, title?, text, metadata?}}, got {type(record).__name__}", where)
    text, title, meta = record.get("text"), record.get("title") or "", record.get("metadata") or {}
    if not isinstance(text, str) or not text.strip():
        return SkipFile("no text (a string field \"text\" is required)", where)
    if not isinstance(title, str):
        return SkipFile("\"title\" must be a string", where)
    if not isinstance(meta, Mapping):
        return SkipFile("\"metadata\" must be an object", where)
    raw = record.get("id")
    rid = "" if raw is None else str(raw)
    return Document(rid or f"{doc_id}#{n}", rid or f"{source}#{n}", title, text.replace("\r\n", "\n"), "json", metadata=dict(meta))


class JSONLoader:
    """``.json``/``.jsonl`` collections of documents, each chunked like a text file."""

    kind: str = "json"
    extensions: tuple[str, ...] = (".json", ".jsonl")
    extra: str = ""

    def load(self, data: bytes, source: str, doc_id: str, stem: str) -> list[Document | SkipFile]:
        """The file's documents and its bad records (each a :class:`SkipFile`); a file that
        is not JSON at all raises one."""
        raw = decode_text(data)
        if source.lower().endswith(".jsonl"):
            return [
                SkipFile(why, f"line {lineno}") if why else _record(record, n, doc_id, source, f"line {lineno}")
                for n, (lineno, record, why) in enumerate(json_lines(raw))
            ]
        try:
            data_ = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SkipFile(f"malformed JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
        if isinstance(data_, Mapping):
            data_ = data_.get("documents", data_.get("docs", [data_] if "text" in data_ else None))
        if not isinstance(data_, list):
            raise SkipFile("expected a JSON list of documents {id?, title?, text, metadata?}")
        return [_record(r, n, doc_id, source, f"item {n}") for n, r in enumerate(data_)]
