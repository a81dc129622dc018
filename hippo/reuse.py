"""What a write reuses, and the stages that do only new work.

:class:`LiveIndex` is the live generation read into memory: its passages, extractions,
vectors (by string) and synonymy candidates. :class:`Stages` runs extraction, embedding and
synonymy for a write, taking from the live index first, then from the resume cache of an
interrupted write (:class:`hippo.store.workcache.WorkCache`), and computing only the rest,
checkpointing it into that cache as it goes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hippo.config import Config, from_dict
from hippo.errors import HippoError, IndexFormatError
from hippo.graph.build import accept_synonyms, synonymy_candidates
from hippo.ids import alnum_count
from hippo.kb import KnowledgeBase
from hippo.protocols import Embedder, Extractor, FloatArray
from hippo.store import IndexFiles, current_generation, read_index_files
from hippo.store.workcache import WorkCache, content_sha, settings_key
from hippo.types import Extraction, Fact, Passage

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
class LiveIndex:
    """What a write needs from the live generation, read into memory (its pin released)."""

    generation: str
    manifest: dict[str, Any]
    config: Config
    passages: list[Passage]
    extractions: dict[str, Extraction]
    entity_names: list[str]
    fact_ids: set[str]
    vectors: dict[str, FloatArray]
    synonyms: tuple[Any, Any, Any] | None
    history: list[dict[str, Any]]


def load_live(root: Path) -> LiveIndex | None:
    """The live generation of ``root`` in memory (None when there is none); its pin is released."""
    if current_generation(root) is None:
        return None
    files = read_index_files(root)
    try:
        return read_live(files)
    finally:
        files.close()


def read_live(files: IndexFiles) -> LiveIndex:
    """Read an opened generation into memory, refusing one whose files changed since written."""
    bad = files.verify()
    if bad:
        raise IndexFormatError(
            f"{files.generation}: files changed since they were written ({', '.join(bad)}); refusing to build on "
            f"them: rebuild the index into a new directory"
        )
    if not files.has("passages.jsonl"):
        raise IndexFormatError(
            f"{files.generation}: this index was written from prepared arrays (hippo.prepared, e.g. by "
            f"benchmarks/scale.py) and keeps no extractions, so it cannot be added to or deleted from; "
            f"write a new index from the whole input instead"
        )
    config = from_dict(files.manifest["config"], source=f"{files.generation}/manifest.json")
    passages = [Passage(p["id"], p["content"], p["title"]) for p in files.jsonl("passages.jsonl")]
    extractions = {
        e["passage_id"]: Extraction(
            e["passage_id"], tuple(e["entities"]), tuple((str(s), str(r), str(o)) for s, r, o in e["triples"])
        )
        for e in files.jsonl("extractions.jsonl")
    }
    names: list[str] = files.json("entities.json")["names"]
    fact_rows = files.jsonl("facts.jsonl")
    facts = [(f["s"], f["r"], f["o"]) for f in fact_rows]
    fmt = config.embed.fact_format
    vectors: dict[str, FloatArray] = {}
    fact_texts = [Fact("", s, r, o).as_text(fmt) for s, r, o in facts]
    for fname, texts in (
        ("passage_vectors.npy", [p.content for p in passages]),
        ("entity_vectors.npy", names),
        ("fact_vectors.npy", fact_texts),
    ):
        arr = np.array(files.array(fname, mmap=False), dtype=np.float32)
        vectors.update(zip(texts, arr))
    synonyms = None
    if (files.generation / "synonym_candidates.npy").exists():
        pairs = np.asarray(files.array("synonym_candidates.npy", mmap=False), dtype=np.int64).reshape(-1, 2)
        cos = np.asarray(files.array("synonym_candidate_cos.npy", mmap=False), dtype=np.float32)
        synonyms = (pairs[:, 0], pairs[:, 1], cos)
    return LiveIndex(
        files.generation.name, files.manifest, config, passages, extractions, names, {f["id"] for f in fact_rows},
        vectors, synonyms, files.history(),
    )


class Stages:
    """One write's extract/embed/synonymy/graph stages with their reuse bookkeeping."""

    def __init__(
        self, root: Path, config: Config, prior: LiveIndex | None, progress: Progress | None,
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
        prior_content = {p.id: p.content for p in self.prior.passages} if self.prior else {}
        out: dict[str, Extraction] = {}
        todo: list[Passage] = []
        for p in final:
            if p.id in known and prior_content.get(p.id) == p.content:
                out[p.id] = known[p.id]
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
                hit = cached.get((p.id, content_sha(p.content)))
                if hit is not None:
                    out[p.id] = hit
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

    def synonyms(self, kb: KnowledgeBase, entity_vecs: FloatArray) -> tuple[Any, Any, Any, Any]:
        """All candidate pairs (old ones remapped, new ones scored) and their acceptance."""
        t = time.perf_counter()
        g = self.config.graph
        names = kb.entity_names
        n = len(names)
        prior = self.prior
        if prior is None or prior.synonyms is None:
            new = np.ones(n, dtype=bool)
            old_i = old_j = np.zeros(0, dtype=np.int64)
            old_cos = np.zeros(0, dtype=np.float32)
            if prior is not None:
                self.notes["synonymy"] = "the live generation predates stored synonymy candidates: recomputed them all"
        else:
            where = {name: i for i, name in enumerate(names)}
            remap = np.array([where.get(name, -1) for name in prior.entity_names], dtype=np.int64)
            pi, pj, pcos = prior.synonyms
            a, b = remap[pi], remap[pj]
            keep = (a >= 0) & (b >= 0)
            old_i, old_j, old_cos = np.minimum(a, b)[keep], np.maximum(a, b)[keep], pcos[keep]
            known = set(prior.entity_names)
            new = np.array([name not in known for name in names], dtype=bool)
        if self.progress:
            self.progress("synonymy", 0, 1)
        if n >= g.ann_min_rows:
            from hippo.store.compact import synonymy_candidates_ivf

            ni, nj, ncos, scored = synonymy_candidates_ivf(entity_vecs, g.synonymy_threshold, new)
            self.stats["synonymy_search"] = "ivf"
        else:
            ni, nj, ncos, scored = synonymy_candidates(entity_vecs, g.synonymy_threshold, new)
        i = np.concatenate([old_i, ni])
        j = np.concatenate([old_j, nj])
        cos = np.concatenate([old_cos, ncos]).astype(np.float32)
        order = np.lexsort((j, i))
        i, j, cos = i[order], j[order], cos[order]
        eligible = np.array([alnum_count(x) >= g.synonymy_min_chars for x in names], dtype=bool)
        acc = accept_synonyms(i, j, cos, eligible, g.synonymy_max_neighbors)
        self.timings["synonymy"] = time.perf_counter() - t
        self.stats["synonymy"] = {
            "new_entities": int(new.sum()), "entities": n, "pairs_scored": int(scored),
            "candidates": len(i), "seconds": round(self.timings["synonymy"], 4),
        }
        if self.progress:
            self.progress("synonymy", 1, 1)
        return i, j, cos, acc
