"""The extraction and embedding stages of a large write, resumable.

:class:`Stages` extracts and embeds in checkpoints, taking from what is :class:`Known` first,
then from the resume cache of an interrupted write (:class:`hippo.store.workcache.WorkCache`),
and computing only the rest, checkpointing it into that cache as it goes: a write killed at
any point loses at most one checkpoint of work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hippo.config import Config
from hippo.errors import HippoError
from hippo.protocols import Embedder, Extractor, FloatArray
from hippo.store.workcache import WorkCache, content_sha, settings_key
from hippo.types import Extraction, Passage

Progress = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)``; stages: extract, embed, synonymy, graph, write, commit."""


class StageRunner(Protocol):
    """Where the extract and embed stages compute their missing work (the hook for
    :mod:`hippo.distributed`). Results may come back in any order; each is checkpointed
    into the resume cache as it arrives."""

    def extract(self, extractor: Extractor, parts: Sequence[Sequence[Passage]]) -> Iterator[tuple[Sequence[Passage], list[Extraction]]]:
        """``(part, its extractions)`` for every part, as each finishes."""
        ...

    def embed(self, embedder: Embedder, parts: Sequence[Sequence[str]]) -> Iterator[tuple[Sequence[str], FloatArray]]:
        """``(part, embedder.encode_documents(part))`` for every part, as each finishes."""
        ...


class LocalRunner:
    """This process, part after part: what ``hippo index`` does without ``--ray``."""

    def extract(self, extractor: Extractor, parts: Sequence[Sequence[Passage]]) -> Iterator[tuple[Sequence[Passage], list[Extraction]]]:
        """Extract each part in turn."""
        for part in parts:
            yield part, extractor.extract(part)

    def embed(self, embedder: Embedder, parts: Sequence[Sequence[str]]) -> Iterator[tuple[Sequence[str], FloatArray]]:
        """Embed each part in turn (one ``encode_documents`` call per part)."""
        for part in parts:
            yield part, np.asarray(embedder.encode_documents(part), dtype=np.float32)


@dataclass
class Known:
    """Work an earlier index already did, for a rebuild to reuse: extractions by passage id
    (with the content they were made from) and vectors by string."""

    extractions: dict[str, tuple[str, Extraction]] = field(default_factory=dict)
    vectors: dict[str, FloatArray] = field(default_factory=dict)


class Stages:
    """One write's extract and embed stages with their reuse bookkeeping; ``runner`` says where
    the missing work is computed (this process, or a Ray cluster: :mod:`hippo.distributed`)."""

    def __init__(
        self, root: Path, config: Config, prior: Known | None, progress: Progress | None,
        runner: StageRunner | None = None,
    ) -> None:
        self.root = root
        self.runner: StageRunner = runner or LocalRunner()
        self.config = config
        self.prior = prior
        self.progress = progress
        self.timings: dict[str, float] = {}
        self.stats: dict[str, Any] = {"extracted": 0, "embedded": 0, "reused": {"extractions": 0, "vectors": 0}}
        self.notes: dict[str, Any] = {}
        self.extractor: Extractor | None = None
        """The extractor, once a passage needed extracting."""

    def extract(self, final: Sequence[Passage], make: Callable[[], Extractor] | None) -> list[Extraction]:
        """One extraction per passage of ``final``; only passages new to the index and the
        cache are extracted (``make`` builds the extractor on first need)."""
        t = time.perf_counter()
        known = self.prior.extractions if self.prior else {}
        out: dict[str, Extraction] = {}
        todo: list[Passage] = []
        for p in final:
            hit = known.get(p.id)
            if hit is not None and hit[0] == p.content:
                out[p.id] = hit[1]
            else:
                todo.append(p)
        if todo:
            if make is None:
                raise HippoError("internal error: passages to extract but no extractor")  # pragma: no cover
            extractor = make()
            cache = WorkCache(self.root, extractor_key=settings_key([extractor.name, extractor.settings()]))
            cached = cache.extractions()
            rest = []
            for p in todo:
                found = cached.get((p.id, content_sha(p.content)))
                if found is not None:
                    out[p.id] = found
                else:
                    rest.append(p)
            self.stats["reused"]["extractions"] = len(todo) - len(rest)
            step = self.config.runtime.checkpoint_passages
            done = 0
            for part, extractions in self.runner.extract(extractor, [rest[s : s + step] for s in range(0, len(rest), step)]):
                cache.add_extractions(part, extractions)
                out.update((e.passage_id, e) for e in extractions)
                done += len(part)
                if self.progress:
                    self.progress("extract", done, len(rest))
            self.stats["extracted"] = len(rest)
            self.extractor = extractor
        self.timings["extract"] = time.perf_counter() - t
        return [out[p.id] for p in final]

    def embed(self, texts: Sequence[str], make: Callable[[], Embedder] | None, key: str) -> FloatArray:
        """Vectors (len(texts), d), embedding only strings neither the index nor the cache has."""
        t = time.perf_counter()
        known: dict[str, FloatArray] = dict(self.prior.vectors) if self.prior else {}
        missing = list(dict.fromkeys(s for s in texts if s not in known))
        cache = WorkCache(self.root, embedder_key=key)
        if missing:
            dim = len(next(iter(known.values()))) if known else None
            cached = cache.vectors(dim)
            hits = [s for s in missing if s in cached]
            known.update((s, cached[s]) for s in hits)
            self.stats["reused"]["vectors"] = len(hits)
            missing = [s for s in missing if s not in cached]
        if missing:
            if make is None:
                raise HippoError("internal error: strings to embed but no embedder")  # pragma: no cover
            embedder = make()
            # Length-sorted (little padding), in fixed checkpoints: a resumed run embeds exactly
            # the checkpoints the killed one had not saved, in the same batches, so its vectors
            # are bit-identical to an uninterrupted run's.
            missing.sort(key=lambda s: (len(s), s))
            step = self.config.runtime.checkpoint_strings
            done = 0
            for part, vecs in self.runner.embed(embedder, [missing[s : s + step] for s in range(0, len(missing), step)]):
                cache.add_vectors(part, vecs)
                known.update(zip(part, vecs))
                done += len(part)
                if self.progress:
                    self.progress("embed", done, len(missing))
            self.stats["embedded"] = len(missing)
        dim = len(next(iter(known.values()))) if known else 0
        out = np.zeros((len(texts), dim), dtype=np.float32)
        for row, s in enumerate(texts):
            out[row] = known[s]
        self.timings["embed"] = time.perf_counter() - t
        return out
