"""Multi-step retrieval with a hypergraph working memory (HGMem on a HippoRAG 2 graph; pure).

Each step retrieves, reads the evidence into the memory, and plans the next step:

1. **retrieve**: step 1 is *global exploration* (the ``hippo`` ranking of the question; memory
   vertices, if any, are down-weighted so new regions are favoured). Later steps are *local
   investigation*: the ranking with the vertices the plan chose added as seeds, and, with
   ``hops``, the passages restricted to the k-hop neighbourhood of those vertices (a later step
   whose plan chose no vertex explores globally again). A step ranks the plan's *subqueries*
   (their own embeddings, one batched PageRank, scores averaged) or, without any, the question;
2. **evidence**: the facts of the step's top passages that touch the memory (or, on the first
   step, the question's seeds), best first by cosine to the question or the step's subqueries;
3. **evolve**: the reasoner turns evidence into memory operations (insert, update, merge);
4. **plan**: the reasoner says whether to stop and which vertices to investigate next, given
   *hints* (neighbouring entities of the memory not yet in it).

The final ranking fuses the steps: each step's passage scores divided by its best score, summed.
The trace records every step for ``--explain``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from hippo.config import RetrievalConfig
from hippo.protocols import FloatArray
from hippo.hgmem.memory import HypergraphMemory
from hippo.retrieval.hipporag import HippoRAG2Ranker
from hippo.retrieval.scorer import top_k_indices

IntArray = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Evidence:
    """What one step found: ranked passages and the facts read from them."""

    passages: tuple[int, ...]
    facts: tuple[int, ...]
    fact_scores: tuple[float, ...]
    seeds: tuple[int, ...] = ()
    """Entities that seeded this step's PageRank (already explored)."""
    queries: tuple[str, ...] = ()
    """What this step ranked: the question, or the plan's subqueries."""


@dataclass(frozen=True)
class Plan:
    """The reasoner's decision after a step."""

    stop: bool
    seeds: tuple[int, ...] = ()
    """Vertices (entity indices) to investigate in the next step."""
    subqueries: tuple[str, ...] = ()
    """What the next step ranks instead of the question (empty: the question)."""
    reason: str = ""
    concerns: tuple[str, ...] = ()
    """What the memory still lacks (an LLM reasoner's judgement; empty when it suffices)."""


@dataclass(frozen=True)
class StepTrace:
    """One step of the loop, for ``--explain``."""

    step: int
    mode: str
    queries: tuple[str, ...]
    seeds: tuple[int, ...]
    passages: tuple[int, ...]
    operations: tuple[str, ...]
    plan: Plan

    @property
    def subquery(self) -> str:
        """The step's first query (for callers written before a step could rank several)."""
        return self.queries[0] if self.queries else ""


@dataclass
class HGMemResult:
    """Fused ranking (passage indices and scores, best first), the memory and the trace."""

    passages: IntArray
    scores: F64
    memory: HypergraphMemory
    trace: list[StepTrace] = field(default_factory=list)


class Reasoner(Protocol):
    """Decides what the memory keeps and where to look next."""

    def evolve(self, question: str, memory: HypergraphMemory, evidence: Evidence, step: int) -> list[str]:
        """Apply memory operations for ``evidence``; return a description of each."""
        ...

    def plan(self, question: str, memory: HypergraphMemory, hints: Sequence[int], step: int) -> Plan:
        """Stop, or choose the vertices (and subquery) of the next step."""
        ...


@dataclass(frozen=True)
class GraphView:
    """The parts of an index the loop reads (all borrowed, never copied)."""

    ranker: HippoRAG2Ranker
    config: RetrievalConfig
    passage_fact_indptr: IntArray
    passage_fact_indices: IntArray
    entity_names: Sequence[str]
    fact_text: Callable[[int], str]
    adjacency: Any
    """scipy CSR adjacency over all nodes (passages first), for neighbourhoods and hints."""

    @property
    def n_passages(self) -> int:
        return int(self.ranker.n_passages)

    def facts_of(self, passage: int) -> IntArray:
        return self.passage_fact_indices[self.passage_fact_indptr[passage] : self.passage_fact_indptr[passage + 1]]

    def neighbours(self, nodes: Sequence[int]) -> IntArray:
        """Nodes adjacent to any of ``nodes`` (graph node numbering)."""
        if not len(nodes):
            return np.zeros(0, np.int64)
        rows = self.adjacency[np.asarray(nodes, dtype=np.int64)]
        return np.unique(rows.indices).astype(np.int64)

    def k_hop(self, entities: Sequence[int], hops: int) -> IntArray:
        """Graph nodes within ``hops`` edges of the entities (passages count as nodes)."""
        frontier = np.asarray(entities, dtype=np.int64) + self.n_passages
        seen = set(frontier.tolist())
        for _ in range(hops):
            nxt = [n for n in self.neighbours(sorted(frontier.tolist())).tolist() if n not in seen]
            seen.update(nxt)
            frontier = np.asarray(nxt, dtype=np.int64)
        return np.asarray(sorted(seen), dtype=np.int64)


def hints(view: GraphView, memory: HypergraphMemory, fact_scores: F64, limit: int = 5) -> list[int]:
    """Entities next to the memory (one entity hop: via a relation/synonym edge or a shared
    passage) and not in it, best first by the best question cosine of a fact naming them."""
    inside = sorted(v for v in memory.vertices() if v >= 0)
    if not inside:
        return []
    near = view.neighbours([v + view.n_passages for v in inside])
    passages = near[near < view.n_passages]
    cands = set((near[near >= view.n_passages] - view.n_passages).tolist())
    cands |= set((view.neighbours(passages.tolist()) - view.n_passages).tolist()) if len(passages) else set()
    cands -= set(inside)
    cands = {c for c in cands if c >= 0}
    subj, obj = view.ranker.fact_subject, view.ranker.fact_object
    best: dict[int, float] = {}
    for f in np.flatnonzero(np.isin(subj, list(cands)) | np.isin(obj, list(cands))).tolist():
        for e in (int(subj[f]), int(obj[f])):
            if e in cands:
                best[e] = max(best.get(e, -1.0), float(fact_scores[f]))
    return sorted(best, key=lambda e: (-best[e], e))[:limit]


class OfflineReasoner:
    """Deterministic rules, no LLM (the default).

    - **evolve**: evidence facts sharing an entity form one group; a group becomes a new point
      (description: its facts), or updates the point it overlaps; then points that share a
      *bridge* vertex (one the question does not name) are merged.
    - **plan**: the next seeds are the best-scored bridge vertices of this step's points not
      investigated yet (at most ``bridges_per_step``); stop when there is none.
    """

    def __init__(
        self, view: GraphView, question_entities: Sequence[int], bridges_per_step: int = 2, facts_per_step: int = 8
    ):
        self.view = view
        self.named = set(int(e) for e in question_entities)
        self.bridges_per_step = bridges_per_step
        self.facts_per_step = facts_per_step
        self.visited: set[int] = set(self.named)
        self._fact_score: dict[int, float] = {}
        self._subjects = view.ranker.fact_subject
        self._objects = view.ranker.fact_object

    def _ents(self, f: int) -> tuple[int, int]:
        return int(self._subjects[f]), int(self._objects[f])

    def observe(self, evidence: Evidence) -> None:
        """Record what a step explored and its fact scores (``evolve`` does; another reasoner
        that falls back on this one calls it for the steps it evolved itself)."""
        self.visited |= set(evidence.seeds)
        for f, s in zip(evidence.facts, evidence.fact_scores):
            self._fact_score[f] = max(self._fact_score.get(f, -1.0), s)

    def evolve(self, question: str, memory: HypergraphMemory, evidence: Evidence, step: int) -> list[str]:
        ops: list[str] = []
        self.observe(evidence)
        facts = list(evidence.facts[: self.facts_per_step])
        # group facts that share an entity (union-find over the evidence)
        parent = {f: f for f in facts}

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        owner: dict[int, int] = {}
        for f in facts:
            for e in self._ents(f):
                if e in owner:
                    parent[find(f)] = find(owner[e])
                else:
                    owner[e] = f
        groups: dict[int, list[int]] = {}
        for f in facts:
            groups.setdefault(find(f), []).append(f)
        names = self.view.entity_names
        for group in groups.values():
            hit = next((i for i, p in enumerate(memory.points) if p.vertices & {e for f in group for e in self._ents(f)}), None)
            if hit is not None:
                group = [f for f in group if f not in memory.points[hit].facts]
                if not group:
                    continue  # nothing new about this point
            verts = {e for f in group for e in self._ents(f)}
            desc = "; ".join(self.view.fact_text(f) for f in group)
            passages = set(evidence.passages)
            if hit is None:
                i = memory.insert(verts, desc, passages, group, step)
                ops.append(f"insert #{i} {{{', '.join(sorted(names[v] for v in verts))}}}")
            else:
                old = memory.points[hit]
                memory.update(hit, old.vertices | verts, old.description + "; " + desc, passages, group, step)
                added = sorted(names[v] for v in verts - old.vertices)
                ops.append(f"update #{hit}: {len(group)} new facts" + (f", + {{{', '.join(added)}}}" if added else ""))
        # merge points that share a bridge vertex
        by_bridge: dict[int, list[int]] = {}
        for i, p in enumerate(memory.points):
            for v in p.vertices - self.named:
                by_bridge.setdefault(v, []).append(i)
        taken: set[int] = set()
        merge_groups = []
        for v in sorted(by_bridge):
            g = [i for i in by_bridge[v] if i not in taken]
            if len(g) >= 2:
                merge_groups.append(g)
                taken |= set(g)
        if merge_groups:
            new = memory.merge(merge_groups, step=step)
            ops += [f"merge {g} -> #{n}" for g, n in zip(merge_groups, new)]
        return ops

    def plan(self, question: str, memory: HypergraphMemory, hints: Sequence[int], step: int) -> Plan:
        score: dict[int, float] = {}
        for p in memory.points:
            if p.step != step:
                continue
            for f in p.facts:
                for e in self._ents(f):
                    if e not in self.visited:
                        score[e] = max(score.get(e, -1.0), self._fact_score.get(f, 0.0))
        chosen = sorted(score, key=lambda e: (-score[e], e))[: self.bridges_per_step]
        if not chosen:
            return Plan(True, reason="no new bridge entity in this step's evidence")
        self.visited |= set(chosen)
        return Plan(False, tuple(chosen), reason=f"{len(score)} new bridge entities; investigate the best {len(chosen)}")


Encode = Callable[[Sequence[str]], tuple[FloatArray, FloatArray]]
"""Queries -> (fact vectors, passage vectors), each (B, d): how the loop embeds subqueries."""


def run(
    view: GraphView,
    question: str,
    qf: FloatArray,
    qp: FloatArray,
    question_entities: Sequence[int],
    reasoner: Reasoner,
    steps: int = 3,
    memory: HypergraphMemory | None = None,
    k: int = 20,
    evidence_passages: int = 3,
    bridge_weight: float = 1.5,
    memory_downweight: float = 0.1,
    hops: int | None = None,
    encode: Encode | None = None,
) -> HGMemResult:
    """Run up to ``steps`` steps for one question (``qf``/``qp``: its (d,) vectors).

    ``encode`` embeds the subqueries a plan asks for; a plan with subqueries and no ``encode``
    is an error (the offline reasoner asks for none)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    mem = memory if memory is not None else HypergraphMemory(len(view.entity_names))
    ranker, cfg, n_p = view.ranker, view.config, view.n_passages
    counts = ranker.entity_passage_count
    qf = np.asarray(qf, dtype=np.float32)
    qp = np.asarray(qp, dtype=np.float32)
    question_scores = ranker.fact_cosines(qf[None, :])[:, 0]
    depth = max(k, 50)
    fused: dict[int, float] = {}
    trace: list[StepTrace] = []
    seeds: tuple[int, ...] = ()
    queries: tuple[str, ...] = (question,)
    qfs, qps, fact_scores = qf[None, :], qp[None, :], question_scores
    for step in range(1, steps + 1):
        mode = "local" if seeds else "global"
        before = sorted(v for v in mem.vertices() if v >= 0)

        def hook(_: int, reset: F64) -> None:
            if mode == "global" and before:
                reset[n_p + np.asarray(before)] *= memory_downweight
            for e in seeds:
                reset[n_p + e] += bridge_weight / max(int(counts[e]), 1)

        rankings = ranker.rank_many(qfs, qps, depth, cfg, [list(question_entities)] * len(queries), reset_hook=hook)
        per_query: list[tuple[IntArray, F64]] = []
        for r in rankings:
            passages, scores = r.passages, r.scores
            if mode == "local" and hops is not None:
                keep = np.isin(passages, view.k_hop(seeds, hops))
                passages, scores = passages[keep], scores[keep]
            per_query.append((passages, scores))
        step_scores: dict[int, float] = {}
        for passages, scores in per_query:  # each query's scores over its best, averaged
            if len(scores) and scores[0] > 0:
                for p, s in zip(passages.tolist(), (scores / scores[0]).tolist()):
                    step_scores[p] = step_scores.get(p, 0.0) + s / len(per_query)
        ranked = sorted(step_scores, key=lambda p: (-step_scores[p], p))
        if ranked:
            best = step_scores[ranked[0]]
            for p in ranked:
                fused[p] = fused.get(p, 0.0) + step_scores[p] / best
        read_from = list(dict.fromkeys(p for passages, _ in per_query for p in passages[:evidence_passages].tolist()))
        seeded = set().union(*(set(r.seed_entities.tolist()) for r in rankings)) | set(seeds)
        frontier = set(mem.vertices()) | set(question_entities) | seeded
        read = []
        for p in read_from:
            for f in view.facts_of(p).tolist():
                s_, o_ = int(ranker.fact_subject[f]), int(ranker.fact_object[f])
                if s_ in frontier or o_ in frontier:
                    read.append((float(fact_scores[f]), f))
        read = sorted(set(read), key=lambda t: (-t[0], t[1]))
        evidence = Evidence(
            tuple(read_from), tuple(f for _, f in read), tuple(s for s, _ in read), tuple(sorted(seeded)), queries,
        )
        ops = reasoner.evolve(question, mem, evidence, step)
        plan = reasoner.plan(question, mem, hints(view, mem, question_scores), step) if step < steps else Plan(True, reason="step budget spent")
        trace.append(StepTrace(step, mode, queries, seeds, tuple(ranked[:k]), tuple(ops), plan))
        if plan.stop:
            break
        seeds = plan.seeds
        if plan.subqueries:
            if encode is None:
                raise ValueError("the plan asks for subqueries: pass encode= to embed them")
            queries = tuple(plan.subqueries)
            qfs, qps = (np.atleast_2d(np.asarray(a, dtype=np.float32)) for a in encode(queries))
            fact_scores = np.maximum(question_scores, ranker.fact_cosines(qfs).max(axis=1))
        else:
            queries, qfs, qps, fact_scores = (question,), qf[None, :], qp[None, :], question_scores
    order = sorted(fused, key=lambda p: (-fused[p], p))[:k]
    return HGMemResult(np.asarray(order, dtype=np.int64), np.asarray([fused[p] for p in order]), mem, trace)
