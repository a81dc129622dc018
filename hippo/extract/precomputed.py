"""Import HippoRAG OpenIE result files.

Two shapes are accepted, both ``{"docs": [...], ...}`` (or a bare list of docs):

* v1: ``{title, text, passage, extracted_entities, extracted_triples}``
* v2: ``{idx, passage, extracted_entities, extracted_triples}`` (``idx`` = ``chunk-<md5>``)

Docs are matched to corpus passages by exact passage text, then by HippoRAG's chunk id,
then by whitespace-normalised text. Triples that are not three strings are dropped and
counted, as HippoRAG 2's ``filter_invalid_triples`` does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hippo.errors import ExtractionError
from hippo.protocols import Extractor
from hippo.types import Extraction, Passage, Triple


def _squash(text: str) -> str:
    return " ".join(text.split())


def _doc_passage(doc: dict[str, Any]) -> str | None:
    passage = doc.get("passage")
    if isinstance(passage, str):
        return passage
    title, text = doc.get("title"), doc.get("text")
    if isinstance(text, str):
        return f"{title}\n{text}" if isinstance(title, str) and title else text
    return None


def _triples(raw: Any) -> tuple[tuple[Triple, ...], int]:
    out: list[Triple] = []
    seen: set[Triple] = set()
    invalid = 0
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, (list, tuple)) or len(item) != 3 or any(isinstance(x, (list, dict)) or x is None for x in item):
            invalid += 1
            continue
        triple = (str(item[0]), str(item[1]), str(item[2]))
        if triple not in seen:
            seen.add(triple)
            out.append(triple)
    return tuple(out), invalid


class PrecomputedExtractor:
    """Serves extractions from a HippoRAG OpenIE file; optionally delegates missing passages."""

    name = "hippo.extractor.precomputed.v1"

    def __init__(self, path: str | Path, fallback: Extractor | None = None) -> None:
        self.path = Path(path)
        self.fallback = fallback
        self.invalid_triples = 0
        self.delegated = 0
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ExtractionError(f"OpenIE file not found: {self.path}; check --openie") from None
        except json.JSONDecodeError as exc:
            raise ExtractionError(f"{self.path}: malformed JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
        docs = data.get("docs") if isinstance(data, dict) else data
        if not isinstance(docs, list):
            raise ExtractionError(
                f"{self.path}: not a HippoRAG OpenIE file (expected {{\"docs\": [...]}} with extracted_triples per doc)"
            )
        self._by_text: dict[str, dict[str, Any]] = {}
        self._by_idx: dict[str, dict[str, Any]] = {}
        self._by_squash: dict[str, dict[str, Any]] = {}
        for i, doc in enumerate(docs):
            if not isinstance(doc, dict) or "extracted_triples" not in doc:
                raise ExtractionError(f"{self.path}: doc {i} has no \"extracted_triples\"; not a HippoRAG OpenIE file")
            passage = _doc_passage(doc)
            if passage is not None:
                self._by_text.setdefault(passage, doc)
                self._by_squash.setdefault(_squash(passage), doc)
            if isinstance(doc.get("idx"), str):
                self._by_idx.setdefault(doc["idx"], doc)

    def settings(self) -> dict[str, Any]:
        """The file name and the fallback extractor, if any."""
        return {"file": self.path.name, "fallback": self.fallback.name if self.fallback else None}

    def _find(self, p: Passage) -> dict[str, Any] | None:
        doc = self._by_text.get(p.content)
        if doc is None:
            chunk = "chunk-" + hashlib.md5(p.content.encode("utf-8")).hexdigest()
            doc = self._by_idx.get(chunk) or self._by_idx.get(p.id) or self._by_squash.get(_squash(p.content))
        return doc

    def extract(
        self, passages: Sequence[Passage], progress: Callable[[int, int], None] | None = None
    ) -> list[Extraction]:
        """Extractions in passage order; missing passages go to the fallback or raise."""
        found: list[Extraction | None] = []
        missing: list[int] = []
        for i, p in enumerate(passages):
            doc = self._find(p)
            if doc is None:
                missing.append(i)
                found.append(None)
                continue
            triples, invalid = _triples(doc.get("extracted_triples"))
            self.invalid_triples += invalid
            ents = doc.get("extracted_entities")
            entities = tuple(str(e) for e in ents) if isinstance(ents, list) else ()
            found.append(Extraction(p.id, entities, triples))
        if missing:
            if self.fallback is None:
                shown = ", ".join(f"{passages[i].id} ({passages[i].title or passages[i].content[:30]!r})" for i in missing[:5])
                more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
                raise ExtractionError(
                    f"{len(missing)} of {len(passages)} passages are not in the OpenIE file {self.path.name}: {shown}{more}; "
                    f"extract them with spaCy via --set extract.missing=spacy, or use the OpenIE file of this corpus"
                )
            extra = self.fallback.extract([passages[i] for i in missing], progress)
            self.delegated += len(missing)
            for i, ex in zip(missing, extra):
                found[i] = ex
        return [ex for ex in found if ex is not None]
