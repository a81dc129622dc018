"""Multi-step retrieval for an engine: one hypergraph-memory run per query, and its report."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hippo.config import RetrievalConfig
from hippo.errors import ConfigError, HippoError
from hippo.hgmem.llm_reasoner import LLMReasoner
from hippo.hgmem.loop import GraphView, HGMemResult, OfflineReasoner, Reasoner
from hippo.hgmem.loop import run as run_loop
from hippo.hgmem.memory import HypergraphMemory
from hippo.retrieval.hipporag import GraphRanking
from hippo.retrieval.retrievers import MemoryOptions, QueryBatch

REASONERS = ("offline", "llm")
"""``offline``: rules, no LLM; ``llm``: :class:`~hippo.hgmem.LLMReasoner` on the ``llm.*`` endpoint."""


class MemoryRunner:
    """Runs :func:`hippo.hgmem.loop.run` per query over a :class:`GraphView` (made on first
    use). ``make_llm`` builds the LLM reasoner of a query (view, its entities, the offline
    fallback); ``encode`` embeds subqueries."""

    def __init__(
        self,
        view: Callable[[], GraphView],
        config: RetrievalConfig,
        encode: Callable[[Sequence[str]], tuple[Any, Any]],
        make_llm: Callable[[GraphView, tuple[int, ...], OfflineReasoner], LLMReasoner],
    ) -> None:
        self._view = view
        self.config = config
        self.encode = encode
        self.make_llm = make_llm

    def run(self, batch: QueryBatch, k: int, options: MemoryOptions) -> list[GraphRanking]:
        """Multi-step rankings, one per query; ``GraphRanking.memory`` holds each run."""
        cfg = self.config
        steps = cfg.memory_steps if options.steps is None else options.steps
        if steps < 1:
            raise HippoError(f"steps must be >= 1, got {steps}")
        if options.reasoner not in REASONERS:
            raise ConfigError(f"unknown reasoner {options.reasoner!r}; valid: {', '.join(REASONERS)}")
        view = dataclasses.replace(self._view(), config=cfg)
        out = []
        for b in range(len(batch)):
            ents = batch.entities[b]
            offline = OfflineReasoner(view, ents, bridges_per_step=cfg.memory_bridges)
            chosen: Reasoner = self.make_llm(view, ents, offline) if options.reasoner == "llm" else offline
            res = run_loop(
                view, batch.queries[b], batch.fact_vectors[b], batch.passage_vectors[b], ents, chosen,
                steps=steps, memory=options.memories[b] if options.memories is not None else None, k=k,
                bridge_weight=cfg.memory_bridge_weight, hops=cfg.memory_hops or None, encode=self.encode,
            )
            empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0)
            out.append(GraphRanking(res.passages, res.scores, empty_i, empty_f, empty_i, empty_f, "hgmem", memory=res))
        return out


def memory_report(res: HGMemResult, reasoner: str, entity_names: Sequence[str], passage_ids: Sequence[str],
                  passage_titles: Sequence[str]) -> dict[str, Any]:
    """The memory and the steps of a run, with names and ids instead of indices."""

    def name(v: int) -> str:
        if v >= 0:
            return entity_names[v]
        return next((n for n, i in res.memory.provisional.items() if i == v), str(v))

    return {
        "reasoner": reasoner,
        "points": [
            {"vertices": sorted(name(v) for v in p.vertices), "description": p.description,
             "passages": sorted(passage_ids[i] for i in p.passages), "step": p.step}
            for p in res.memory.points
        ],
        "steps": [
            {"step": t.step, "mode": t.mode, "queries": list(t.queries), "seeds": [name(v) for v in t.seeds],
             "passages": [passage_ids[i] for i in t.passages[:5]],
             "titles": [passage_titles[i] for i in t.passages[:5]], "operations": list(t.operations),
             "stop": t.plan.stop, "next": [name(v) for v in t.plan.seeds], "reason": t.plan.reason,
             "concerns": list(t.plan.concerns), "subqueries": list(t.plan.subqueries)}
            for t in res.trace
        ],
    }


def new_memory(n_entities: int) -> HypergraphMemory:
    """An empty hypergraph working memory over ``n_entities`` entities."""
    return HypergraphMemory(n_entities)


class MemoryMixin:
    """Multi-step retrieval for :class:`hippo.engine.Engine` (it provides the attributes annotated)."""

    memory_reasoner: str = "offline"
    """The reasoner of ``hgmem`` retrieval when a call names none (``offline`` or ``llm``)."""
    config: Any
    _commit: Any
    llm: Any
    entity_ids: Sequence[str]
    encode_queries: Callable[[Sequence[str]], tuple[Any, Any]]

    def memory(self) -> HypergraphMemory:
        """An empty hypergraph working memory over this index's entities."""
        return HypergraphMemory(len(self.entity_ids))

    def context(self, commit: Any) -> _Bound:
        """The :class:`~hippo.retrieval.retrievers.RankContext` of one commit: its ranker, and
        multi-step runs over it."""
        return _Bound(self, commit)

    def run_memory(self, batch: QueryBatch, k: int, options: MemoryOptions, commit: Any = None) -> list[GraphRanking]:
        """Multi-step retrieval with a hypergraph memory, per query (:mod:`hippo.hgmem`)."""
        c = commit or self._commit
        runner = MemoryRunner(lambda: self._memory_view(c), self.config.retrieval, self.encode_queries,
                              lambda view, ents, offline: self._llm_reasoner(c, view, ents, offline))
        return runner.run(batch, k, options)

    def _llm_reasoner(self, c: Any, view: GraphView, ents: tuple[int, ...], offline: OfflineReasoner) -> LLMReasoner:
        snap = c.snapshot
        return LLMReasoner(self.llm, view, ents, lambda p: snap.passage_contents[p], lambda f: snap.facts[f].triple,
                           fallback=offline, entity_index=c.names())

    def _memory_view(self, commit: Any = None) -> GraphView:
        c = commit or self._commit
        if c.view is None:
            snap = c.snapshot
            indptr, indices = snap.passage_facts
            c.view = GraphView(c.ranker, self.config.retrieval, indptr, indices, snap.entity_names,
                               lambda f: snap.facts[f].as_text(), c.ranker.solver.adj)
        view: GraphView = c.view
        return view


class _Bound:
    """One engine's rank context over one commit."""

    def __init__(self, engine: MemoryMixin, commit: Any) -> None:
        self._engine = engine
        self._commit = commit

    @property
    def ranker(self) -> Any:
        return self._commit.ranker

    def run_memory(self, batch: QueryBatch, k: int, options: MemoryOptions) -> list[GraphRanking]:
        return self._engine.run_memory(batch, k, options, self._commit)
