"""The facade: open an index, retrieve with any registered retriever, write, answer with an LLM.
It composes the snapshot and its ranker (:mod:`hippo.live`), query encoding (:mod:`hippo.queries`),
the retrievers (:mod:`hippo.retrieval.retrievers`), the LLM filter and reader
(:mod:`hippo.llm.components`) and multi-step memory (:mod:`hippo.hgmem.runner`)."""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hippo.config import Config, from_dict, with_query_overrides
from hippo.conversation.prior import prior_on, turn_priors
from hippo.embed import make_embedder
from hippo.embed.st import check_embedder
from hippo.errors import HippoError
from hippo.hgmem import HypergraphMemory
from hippo.hgmem.runner import MemoryMixin
from hippo.live.ranking import Commit, RankerCache, describe, explained, result, warm
from hippo.live.snapshot import Snapshot
from hippo.live.memory import WritableMixin
from hippo.llm.components import FILTER_STAGE, QA_STAGE, LLMMixin
from hippo.protocols import Embedder, Extractor, FloatArray, LLMClient
from hippo.queries import QueryEncoder
from hippo.retrieval.hipporag import GraphRanking, HippoRAG2Ranker
from hippo.retrieval.prior import rank_with_prior
from hippo.retrieval.retrievers import (
    DEFAULT_RETRIEVER, MemoryOptions, QueryBatch, Retriever, get_retriever, retriever_names,
)
from hippo.types import QueryResult

__all__ = ["DEFAULT_RETRIEVER", "FILTER_STAGE", "QA_STAGE", "RETRIEVERS", "Engine", "QueryBatch", "describe", "open_index"]

RETRIEVERS = retriever_names()
"""``hippo`` (HippoRAG 2 plus query-entity seeds and dense fusion; the default), ``hipporag2``
(the reference), ``dense`` (cosine only), ``hgmem`` (multi-step with a hypergraph memory)."""


class Engine(MemoryMixin, LLMMixin, WritableMixin):
    """An opened index: ``retrieve``/``retrieve_many`` over its live commit, and ``add``/
    ``delete``/``compact`` when opened writable. Build one with :func:`open_index`."""

    _commit: Commit

    def __init__(self, snapshot: Snapshot, config: Config, embedder: Embedder, llm: LLMClient | None = None,
                 writer: Any = None) -> None:
        self.config, self.embedder, self._llm, self._writer = config, embedder, llm, writer
        self.queries = QueryEncoder(config, embedder)
        self._cache = RankerCache()
        self._checked = time.monotonic()
        self._install(snapshot)

    def _install(self, snap: Snapshot) -> None:
        """Answer from ``snap`` from now on (one assignment; what ranks is made on first use)."""
        self._commit = Commit(snap, self._cache, self.config.retrieval)

    # ------------------------------------------------------------ the commit answered from
    snapshot = property(lambda self: self._commit.snapshot, doc="The snapshot of the commit answered from.")
    facts = property(lambda self: self._commit.snapshot.facts, doc="Every fact row.")
    passage_ids = property(lambda self: self.snapshot.passage_ids, doc="Id of every passage row (tombstoned ones too).")
    passage_titles = property(lambda self: self.snapshot.passage_titles, doc="Title of every passage row.")
    passage_contents = property(lambda self: self.snapshot.passage_contents, doc="Content of every passage row.")
    entity_names = property(lambda self: self.snapshot.entity_names, doc="Normalised name of every entity row.")
    entity_ids = property(lambda self: self.snapshot.entity_ids, doc="Id of every entity row.")
    path = property(lambda self: self.snapshot.root, doc="The index directory.")
    writable = property(lambda self: self._writer is not None, doc="Whether this engine holds the writer lock.")

    @property
    def ranker(self) -> HippoRAG2Ranker:
        """The ranker over the commit answered from (made on first use)."""
        return self._commit.ranker

    @property
    def solver(self) -> Any:
        """PageRank over the commit's graph."""
        return self.ranker.solver

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest of the commit answered from (a writable engine's own last commit)."""
        if self._writer is not None:
            self._follow()
        manifest: dict[str, Any] = self.snapshot.manifest
        return manifest

    def with_overrides(self, overrides: dict[str, Any]) -> Engine:
        """The same index with other query-time settings, sharing every array and model (never writes)."""
        self.ranker  # noqa: B018 - made now, so that the twin shares it
        twin = copy.copy(self)
        twin.config, twin._writer = with_query_overrides(self.config, overrides), None
        twin.queries = QueryEncoder(twin.config, self.embedder)
        twin.queries._recognizer = self.queries._recognizer
        if twin.config.llm != self.config.llm:
            twin._llm = None
        return twin

    def refresh(self) -> bool:
        """Move to the index's newest commit if there is one (opening only its new segments)."""
        newer = self.snapshot.refresh()
        self._checked = time.monotonic()
        if newer is None:
            return False
        if newer.manifest.get("embedder"):
            check_embedder(newer.manifest["embedder"]["id"], int(newer.manifest["embedder"]["dim"]), self.embedder)
        self._install(newer)
        return True

    reload = refresh

    def _follow(self) -> None:
        """Before answering: a writer's own last commit, or a reader's newest (``runtime.refresh_seconds``)."""
        if self._writer is not None:
            if self._writer.snapshot is not self.snapshot:
                self._install(self._writer.snapshot)
        elif time.monotonic() - self._checked >= self.config.runtime.refresh_seconds:
            self.refresh()

    def info(self) -> dict[str, Any]:
        """Counts, embedder, extractor, config, versions and segments of the index."""
        return describe(self.snapshot)

    def warm(self, retriever: str = DEFAULT_RETRIEVER) -> dict[str, float]:
        """Pay now what the first query would (push arrays read in order, spaCy, the embedder,
        the compiled kernels, vector copies); seconds per part. No LLM call, no result changes."""
        return warm(self, retriever)

    # ------------------------------------------------------------ queries
    def encode_queries(self, queries: Sequence[str]) -> tuple[FloatArray, FloatArray]:
        """Query vectors for fact linking and for passages, each (B, d)."""
        return self.queries.encode(queries)

    def prepare(self, queries: Sequence[str], retriever: str = DEFAULT_RETRIEVER, commit: Commit | None = None) -> QueryBatch:
        """Embed the queries and find the entities they name: everything but the graph."""
        c, r, cfg = commit or self._commit, get_retriever(retriever), self.config
        named = r.names_entities and cfg.retrieval.query_entity_weight > 0 and len(c.snapshot.entity_ids) > 0
        ahead = r.filters_facts and not cfg.llm.filter  # it links the question's facts: find them meanwhile
        return self.queries.prepare(queries, named, c.names, c.nearest,
                                    (lambda qf: c.ranker.link_facts(qf, cfg.retrieval.linking_top_k, cfg.retrieval)) if ahead else None)

    def name_index(self) -> Mapping[str, int]:
        """Normalised entity name -> entity row, live entities only."""
        return self._commit.names()

    def _nearest_entities(self, vectors: FloatArray) -> tuple[Any, Any]:
        return self._commit.nearest(vectors)

    def retrieve(self, query: str, k: int | None = None, retriever: str = DEFAULT_RETRIEVER,
                 memory: HypergraphMemory | None = None, steps: int | None = None, reasoner: str | None = None) -> QueryResult:
        """Top-``k`` passages for ``query``, with the facts and seeds used; a ``memory``, ``steps``
        or ``reasoner`` makes it multi-step (``hgmem``)."""
        if memory is not None or steps is not None or reasoner is not None:
            retriever = "hgmem"
        return self.retrieve_many([query], k, retriever, [memory] if memory is not None else None, steps, reasoner)[0]

    def retrieve_many(self, queries: Sequence[str], k: int | None = None, retriever: str = DEFAULT_RETRIEVER,
                      memories: Sequence[HypergraphMemory] | None = None, steps: int | None = None,
                      reasoner: str | None = None) -> list[QueryResult]:
        """Retrieve for many queries at once: one embedding batch, one batched PageRank
        (``timings_ms`` hold the batch's per-query average)."""
        if isinstance(queries, str):
            raise TypeError("retrieve_many takes a list of queries; use retrieve() for one")
        if memories is not None and len(memories) != len(queries):
            raise HippoError(f"{len(memories)} memories for {len(queries)} queries")
        r = get_retriever(retriever)
        self._follow()
        c = self._commit  # one commit for the whole call, whatever other threads do meanwhile
        k = self.config.retrieval.top_k if k is None else k
        if k < 1:
            raise HippoError(f"k must be >= 1, got {k}")
        if not queries:
            return []
        t0 = time.perf_counter()
        batch = self.prepare(queries, retriever, c)
        t1 = time.perf_counter()
        timings = {"embed": 1000 * (t1 - t0) / len(queries)}
        linked, filtered = None, [None] * len(queries)  # type: list[Any] | None, list[Any]
        if self.config.llm.filter and r.filters_facts:
            linked, dropped, status = self.recognize(batch.queries, c.ranker.link_facts(batch.fact_vectors, self.config.retrieval.linking_top_k))
            filtered = [(d, st) for d, st in zip(dropped, status)]
            timings["filter"] = 1000 * (time.perf_counter() - t1) / len(queries)
            t1 = time.perf_counter()
        reasoner = self.memory_reasoner if reasoner is None else reasoner
        rankings, priors = self._rank(c, r, batch, k, linked, MemoryOptions(memories, steps, reasoner))
        timings["rank"] = 1000 * (time.perf_counter() - t1) / len(queries)
        out = [result(c.snapshot, q, r.name, g, dict(timings), p) for q, g, p in zip(queries, rankings, priors)]
        return [explained(c.snapshot, res, g, reasoner, f) for res, g, f in zip(out, rankings, filtered)]

    def rank_prepared(self, batch: QueryBatch, k: int, retriever: str = DEFAULT_RETRIEVER,
                      linked: Sequence[tuple[Any, Any]] | None = None) -> list[GraphRanking]:
        """Rank a :class:`QueryBatch` from :meth:`prepare`; ``linked`` replaces each query's linked facts."""
        return self._rank(self._commit, get_retriever(retriever), batch, k, linked,
                          MemoryOptions(reasoner=self.memory_reasoner))[0]

    def _rank(self, c: Commit, r: Retriever, batch: QueryBatch, k: int, linked: Sequence[tuple[Any, Any]] | None,
              options: MemoryOptions) -> tuple[list[GraphRanking], list[str]]:
        """Rank with ``r``, and each query's explained conversation prior when one is on
        (``retrieval.time_boost``/``speaker_boost``; :mod:`hippo.retrieval.prior`; not multi-step)."""
        cfg = self.config.retrieval
        def rank(n: int) -> list[GraphRanking]:
            return r.rank(self.context(c), batch, n, cfg, linked, options)
        if r.multi_step or not prior_on(cfg.time_boost, cfg.speaker_boost):
            return rank(k), [""] * len(batch)
        priors = turn_priors(batch.queries, c.column("speaker"), c.column("time"), cfg.time_boost, cfg.speaker_boost)
        out = rank_with_prior(rank, [p.weights for p in priors], k, c.snapshot.n_passages, cfg.prior_candidates, cfg.dense_fusion)
        return out, [p.explain() for p in priors]

def open_index(path: str | Path, overrides: dict[str, Any] | None = None, embedder: Embedder | None = None,
               llm: LLMClient | None = None, *, writable: bool = False, create: bool = False,
               config: Config | None = None, wait: float = 0.0, extractor: Extractor | None = None) -> Engine:
    """Open the index at ``path``; its saved config is the base, ``overrides`` change query-time
    settings only; the embedder is rebuilt from the manifest unless given, and must match.

    ``writable=True`` takes the writer lock (waiting up to ``wait`` s, then failing with the
    holder's PID) until :meth:`Engine.close`; ``create=True`` starts an empty index (``config``,
    or the defaults); ``extractor`` replaces the config's. A reader follows others' writes itself.
    """
    from hippo.live.memory import MemoryWriter

    writer = None
    if writable:
        writer = MemoryWriter.open(Path(path), create=create, config=config, embedder=embedder, wait=wait,
                                   extractor=extractor, overrides=overrides)
        snap = writer.snapshot
    elif create:
        raise HippoError("create=True needs writable=True")
    else:
        snap = Snapshot.open(path)
    try:
        cfg = from_dict(snap.manifest["config"], source=f"{snap.root}/CURRENT")
        cfg = with_query_overrides(cfg, overrides) if overrides else cfg
        embedder = embedder or (writer.embedder_or(None) if writer else make_embedder(cfg.embed, cfg.llm))
        built = snap.manifest.get("embedder")
        if built:
            check_embedder(built["id"], int(built["dim"]), embedder)
        return Engine(snap, cfg, embedder, llm, writer)
    except BaseException:
        if writer is not None:
            writer.close()
        raise
