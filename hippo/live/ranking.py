"""What an engine ranks with, made from a snapshot: the ranker and its vector searches, the live
entity lookup, the nearest-entity search, and the results' hits with their citations."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from hippo.config import RetrievalConfig
from hippo.graph.ppr import PPRSolver
from hippo.live.snapshot import Snapshot
from hippo.protocols import FloatArray
from hippo.retrieval.hipporag import GraphRanking, HippoRAG2Ranker, ppr_plan
from hippo.retrieval.retrievers import get_retriever
from hippo.retrieval.vectors import IVFSearch, SegmentedSearch, floor_rows
from hippo.types import Hit, LinkedFact, QueryResult, Seed


class RankerCache:
    """Makes rankers over snapshots of one index, keeping what depends only on the base
    (float32 copies of the base vectors, the IVF indexes) from one commit to the next."""

    def __init__(self) -> None:
        self.base = ""
        self.scorer: dict[int, tuple[Any, Any]] = {}
        self.ivf: dict[str, IVFSearch] = {}

    def make(self, snap: Snapshot, config: RetrievalConfig) -> tuple[HippoRAG2Ranker, dict[str, Any]]:
        """The ranker over ``snap`` and its vector searches by set (``passage``, ``fact``,
        ``entity``; only sets with an IVF index)."""
        if snap.base.name != self.base:
            self.base, self.scorer, self.ivf = snap.base.name, {}, {}
        search: dict[str, Any] = {}
        for which, alive in (("passage", snap.passage_alive), ("fact", snap.fact_alive), ("entity", snap.entity_alive)):
            path = snap.ann_path(f"{which}_vectors")
            if path is None:
                continue
            if which not in self.ivf:
                vecs = snap.base.vectors(which)
                b = snap.base.files
                floor = b.array(f"{which}_vectors.floor.npy") if b.has(f"{which}_vectors.floor.npy") else floor_rows(vecs)
                self.ivf[which] = IVFSearch(path, vecs, floor, config.ann_nprobe, config.ann_candidates)
            later = snap.vectors(which)[1]
            search[which] = self.ivf[which] if later is None and alive is None else SegmentedSearch(self.ivf[which], later, alive)
        p_base, p_later = snap.vectors("passage")
        f_base, f_later = snap.vectors("fact")
        ranker = HippoRAG2Ranker(
            [x for x in (p_base, p_later) if x is not None], [x for x in (f_base, f_later) if x is not None],
            snap.fact_subject, snap.fact_object, snap.entity_passage_count,
            PPRSolver(snap.graph), search.get("passage"), search.get("fact"),
            passage_alive=snap.passage_alive, fact_alive=snap.fact_alive, scorer_cache=self.scorer,
        )
        return ranker, search


class Commit:
    """What an engine answers from: one snapshot, and what is made from it on first use (the
    ranker and its searches, the live name lookup, the nearest-entity search, the memory view).
    An engine replaces its commit in one assignment, so a query that took it at its start
    answers from one consistent commit even if another thread moves the engine on meanwhile."""

    def __init__(self, snapshot: Snapshot, cache: RankerCache, config: RetrievalConfig) -> None:
        self.snapshot = snapshot
        self._cache = cache
        self._config = config
        self._lock = threading.Lock()
        self._ranked: tuple[HippoRAG2Ranker, dict[str, Any]] | None = None
        self._names: Mapping[str, int] | None = None
        self._nearest: NearestEntity | None = None
        self._columns: dict[str, list[str]] = {}
        self.view: Any = None
        """The hypergraph-memory view over this commit (made by the engine on first use)."""

    @property
    def ranker(self) -> HippoRAG2Ranker:
        """The ranker over this commit (made once, on first use)."""
        return self._ranking()[0]

    def _ranking(self) -> tuple[HippoRAG2Ranker, dict[str, Any]]:
        with self._lock:
            if self._ranked is None:
                self._ranked = self._cache.make(self.snapshot, self._config)
            return self._ranked

    def column(self, key: str) -> list[str]:
        """The passages' metadata ``key`` as strings, one per row (made once per commit)."""
        got = self._columns.get(key)
        if got is None:
            got = self._columns[key] = self.snapshot.meta_column(key)
        return got

    def names(self) -> Mapping[str, int]:
        """Normalised entity name -> entity row, live entities only."""
        if self._names is None:
            self._names = live_names(self.snapshot)
        return self._names

    def nearest(self, vectors: FloatArray) -> tuple[Any, Any]:
        """The live entity nearest to each vector, and its cosine."""
        if self._nearest is None:
            self._nearest = NearestEntity(self.snapshot, self._ranking()[1].get("entity"))
        return self._nearest(vectors)


class LiveNames(Mapping[str, int]):
    """A name lookup that does not find dead entities (no live passage names them)."""

    def __init__(self, names: Mapping[str, int], alive: Any) -> None:
        self.names = names
        self.alive = alive

    def get(self, name: str, default: Any = None) -> Any:
        row = self.names.get(name)
        return row if row is not None and bool(self.alive[row]) else default

    def __getitem__(self, name: str) -> int:
        row = self.get(name)
        if row is None:
            raise KeyError(name)
        return int(row)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __len__(self) -> int:
        return int(self.alive.sum())

    def __iter__(self) -> Any:
        return (n for n in self.names if n in self)


def live_names(snap: Snapshot) -> Mapping[str, int]:
    """Normalised entity name -> entity row, live entities only."""
    alive = snap.entity_alive
    return snap.names if alive is None else LiveNames(snap.names, alive)


class NearestEntity:
    """The live entity nearest to each vector: the IVF search when the index has one, else one
    product against the entity vectors (a float32 copy made on first use)."""

    def __init__(self, snap: Snapshot, search: Any) -> None:
        self.snap = snap
        self.search = search
        self._vectors: Any = None

    def __call__(self, vectors: FloatArray) -> tuple[Any, Any]:
        if self.search is not None:
            idx, cos = self.search.search(np.asarray(vectors, dtype=np.float32), 1)
            return idx[:, 0], cos[:, 0]
        if self._vectors is None:
            base, later = self.snap.vectors("entity")
            parts = [np.asarray(base, dtype=np.float32)] + ([later] if later is not None else [])
            parts = [x for x in parts if len(x)] or parts[:1]  # an empty base (create=True) has no columns
            self._vectors = np.concatenate(parts) if len(parts) > 1 else parts[0]
        sims = np.einsum("ed,md->me", self._vectors, np.asarray(vectors, dtype=np.float32))
        alive = self.snap.entity_alive
        if alive is not None:
            sims[:, ~alive] = -np.inf
        best = sims.argmax(axis=1)
        return best, sims[np.arange(len(best)), best]


def hit(rank: int, pid: str, score: float, title: str, content: str, meta: Mapping[str, Any]) -> Hit:
    """A hit with its citation: the document and span from the passage metadata, else the
    passage itself (a passage corpus: the document is the passage, the span all of it)."""
    span = meta.get("span")
    return Hit(
        rank, pid, score, title, content,
        document_id=str(meta.get("document_id", pid)),
        source=str(meta.get("source", "")),
        headings=tuple(str(h) for h in meta.get("headings", ())),
        span=(int(span[0]), int(span[1])) if span else (0, len(content)),
        metadata=dict(meta),
    )


def result(snap: Snapshot, query: str, retriever: str, r: GraphRanking, timings: dict[str, float],
           prior: str = "") -> QueryResult:
    """A :class:`QueryResult` from a ranking over ``snap``: hits, linked facts and seeds by name."""
    hits = tuple(
        hit(rank, snap.passage_ids[i], float(s), snap.passage_titles[i], snap.passage_contents[i], snap.metadata(i))
        for rank, (i, s) in enumerate(zip(r.passages.tolist(), r.scores.tolist()))
    )
    facts = tuple(LinkedFact(snap.facts[f], float(s)) for f, s in zip(r.facts.tolist(), r.fact_scores.tolist()))
    sources = r.seed_sources or ("fact",) * len(r.seed_entities)
    seeds = tuple(
        Seed(snap.entity_ids[e], snap.entity_names[e], float(w), src)
        for e, w, src in zip(r.seed_entities.tolist(), r.seed_weights.tolist(), sources)
    )
    return QueryResult(query, retriever, r.mode, hits, facts, seeds, timings, prior=prior)


def explained(snap: Snapshot, res: QueryResult, r: GraphRanking, reasoner: str,
              filtered: tuple[tuple[Any, Any], str] | None) -> QueryResult:
    """``res`` with what explains it: the memory report of a multi-step run, and the facts the
    recognition filter dropped with its status (``filtered``: the dropped facts and the status)."""
    from hippo.hgmem.runner import memory_report

    if r.memory is not None:
        rep = memory_report(r.memory, reasoner, snap.entity_names, snap.passage_ids, snap.passage_titles)
        res = dataclasses.replace(res, memory=rep)
    if filtered is not None:
        (idx, scores), status = filtered
        gone = tuple(LinkedFact(snap.facts[f], float(s)) for f, s in zip(idx.tolist(), scores.tolist()))
        res = dataclasses.replace(res, filter=status, rejected_facts=gone)
    return res


def describe(snap: Snapshot) -> dict[str, Any]:
    """What ``hippo info --json`` prints: counts, embedder, extractor, config, versions, segments."""
    m = snap.manifest
    return {
        "path": str(snap.root), "generation": m["generation"], "format_version": m["format_version"],
        "counts": m["counts"], "embedder": m.get("embedder"), "extractor": m.get("extractor"), "config": m["config"],
        "versions": m.get("versions", {}),
        "segments": [{k: e[k] for k in ("name", "kind", "rows", "bytes")} for e in m["segments"]],
        "bytes": sum(int(e["bytes"]) for e in m["segments"]),
    }


PUSH_FILES = ("adj_indptr.npy", "adj_indices.npy", "adj_colnorm.npy", "node_degree.npy")
"""The arrays forward push reads at random (:meth:`Engine.warm` reads them in order first)."""
WARM_QUERY = "Where was the founder of the Halvorsen Mill Company born?"
"""What :meth:`Engine.warm` ranks: it names an organisation unlikely to be an entity, so the
mention is embedded and matched to its nearest entity too."""


def warm(engine: Any, retriever: str) -> dict[str, float]:
    """:meth:`Engine.warm`: pay now what the first query would (push arrays read in order, spaCy,
    the embedder, the compiled kernels, vector copies); seconds per part. No LLM call."""
    r = get_retriever(retriever)
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    if ppr_plan(engine.config.retrieval, engine.solver.n)[0] == "push":
        engine.snapshot.base.files.prefetch(PUSH_FILES)
        out["prefetch"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    batch = engine.prepare([WARM_QUERY], retriever)
    t2 = time.perf_counter()
    engine.rank_prepared(batch, 10, "hippo" if r.multi_step else retriever)
    out.update(prepare=t2 - t1, rank=time.perf_counter() - t2)
    if r.multi_step:
        engine._memory_view()
        out["memory"] = time.perf_counter() - t2 - out["rank"]
    return out
