"""PROVISIONAL write adapter: ``add``/``delete`` over today's whole-index rewrites.

The living index (issue 17) brings ``hippo.open_index(path, writable=True, create=True)`` with
``add``/``delete`` that cost O(new). Until its ``living index:`` commit is on main, this module
gives the service the same two calls over :func:`hippo.indexer.build_index` and
:func:`hippo.indexer.delete_passages`, which are correct and durable when they return but
rewrite the whole index (O(index) per write). Delete this module when the real API lands.

Differences from the real API, on purpose and temporary:

* an index cannot be empty today: the first ``add`` creates the namespace's index, and a
  ``delete`` of its last passages removes the index folder (atomically, by a rename);
* passage ``metadata`` is accepted but not stored (the current format has no place for it).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hippo.config import Config
from hippo.corpus import make_passage
from hippo.errors import CorpusError
from hippo.extract import make_extractor
from hippo.indexer import build_index, delete_passages, saved_config
from hippo.protocols import Embedder, Extractor
from hippo.serve.problems import Problem
from hippo.store import current_generation, read_index_files, writer_lock
from hippo.types import Passage

TRASH = ".hippo-serve"
"""Folder under the root where removed namespaces wait to be deleted (never a namespace name)."""


def to_passage(item: Mapping[str, Any] | Passage) -> Passage:
    """A :class:`Passage` from ``{"text", "title"?, "id"?, "metadata"?}`` (or a Passage)."""
    if isinstance(item, Passage):
        return item
    text, title = item.get("text"), item.get("title") or ""
    if not isinstance(text, str) or not isinstance(title, str) or not (text.strip() or title.strip()):
        raise CorpusError('a passage needs a non-empty string "text"')
    p = make_passage(text, title, item.get("id") or None)
    meta = item.get("metadata") or {}
    return Passage(p.id, p.content, p.title, dict(meta)) if meta else p


def _shown(ids: Sequence[str]) -> str:
    return ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")


class ExtractorCache:
    """One extractor per distinct extractor config, made once and shared by every namespace
    (spaCy's pipeline, an OpenIE file, ...)."""

    def __init__(self) -> None:
        self._made: dict[str, Extractor] = {}
        self._lock = threading.Lock()

    def get(self, config: Config) -> Extractor:
        """The extractor ``config.extract`` names."""
        key = json.dumps(config.to_dict()["extract"], sort_keys=True)
        with self._lock:
            if key not in self._made:
                self._made[key] = make_extractor(config.extract, config.llm)
            return self._made[key]


class ProvisionalMemory:
    """``add``/``delete`` of one namespace's index directory (see the module docstring).

    Calls must not overlap for one directory (the service runs one writer per namespace);
    another process writing the same directory makes a call fail with ``IndexLockedError``.
    """

    def __init__(self, path: Path, config: Config, embedder: Embedder, extractors: ExtractorCache,
                 trash: Path) -> None:
        self.path = path
        self.config = config
        self.embedder = embedder
        self.extractors = extractors
        self.trash = trash

    def _write_config(self) -> Config:
        """The index's own config for an existing index (passages missing from a recorded
        OpenIE file are extracted with spaCy), else the server's."""
        prior = saved_config(self.path)
        if prior is None:
            return self.config
        if prior.extract.extractor == "precomputed" and prior.extract.missing != "spacy":
            prior = prior.replace({"extract.missing": "spacy"})
        return prior

    def _live(self) -> tuple[list[str], list[str]] | None:
        """Ids and contents of the live generation (None when there is no index)."""
        if not self.path.is_dir() or current_generation(self.path) is None:
            return None
        files = read_index_files(self.path)
        try:
            if files.has("passage_ids.off.npy"):
                return list(files.strings("passage_ids")), list(files.strings("passage_contents"))
            rows = files.jsonl("passages.jsonl")
            return [r["id"] for r in rows], [r["content"] for r in rows]
        finally:
            files.close()

    def add(self, items: Sequence[Mapping[str, Any] | Passage], update: bool = False) -> list[str]:
        """Add passages (``update``: replace those whose id exists); returns the id each one
        has in the index, in order, once the write is durable. A text the namespace already
        holds is not stored twice: its id is that of the passage holding it."""
        passages = [to_passage(x) for x in items]
        seen: dict[str, str] = {}
        for p in passages:
            if seen.setdefault(p.id, p.content) != p.content:
                raise Problem(422, "Invalid Passages", f"id {p.id!r} is given twice with different text")
        live = self._live()
        if live is not None and not update:
            content_of = dict(zip(*live))
            clash = [p.id for p in passages if p.id in content_of and content_of[p.id] != p.content]
            if clash:
                raise Problem(409, "Conflict", f"{len(clash)} passage id(s) already hold other text: {_shown(clash)}; "
                              f"send them with PUT (update) to replace them, or give new ids; nothing was written",
                              ids=clash)
        config = self._write_config()
        build_index(passages, self.path, config, extractor=self.extractors.get(config), embedder=self.embedder,
                    update=update)
        after = self._live()
        assert after is not None
        present = set(after[0])
        by_content: dict[str, str] | None = None
        out = []
        for p in passages:
            if p.id in present:
                out.append(p.id)
                continue
            if by_content is None:
                by_content = {c: i for i, c in zip(*after)}
            out.append(by_content[p.content])
        return out

    def delete(self, ids: Sequence[str]) -> list[str]:
        """Delete passages by id; unknown ids are refused (404) before anything is written.
        Deleting every passage removes the namespace's index."""
        wanted = list(dict.fromkeys(ids))
        live = self._live()
        present = set(live[0]) if live else set()
        unknown = [i for i in wanted if i not in present]
        if unknown:
            raise Problem(404, "Unknown Ids", f"{len(unknown)} of {len(wanted)} id(s) are not in this namespace: "
                          f"{_shown(unknown)}; nothing was deleted", ids=unknown)
        if live is not None and present <= set(wanted):
            self._remove_index()
            return wanted
        delete_passages(self.path, wanted)
        return wanted

    def _remove_index(self) -> None:
        """Take the whole index away in one rename (readers keep what they opened)."""
        self.trash.mkdir(parents=True, exist_ok=True)
        target = self.trash / f"{self.path.name}-{uuid.uuid4().hex[:12]}"
        with writer_lock(self.path):
            os.rename(self.path, target)
        for folder in (self.path.parent, self.trash):
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        shutil.rmtree(target, ignore_errors=True)


def empty_trash(trash: Path) -> None:
    """Finish removing namespaces whose deletion a crash interrupted."""
    if trash.is_dir():
        for p in trash.iterdir():
            shutil.rmtree(p, ignore_errors=True)
