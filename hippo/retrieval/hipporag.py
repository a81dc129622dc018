"""HippoRAG 2 retrieval without the LLM recognition filter, plus hippo's two additions (pure, no IO).

For a query with fact-side vector ``qf`` and passage-side vector ``qp``:

1. fact scores ``s = minmax(F @ qf)`` over all facts; keep the ``linking_top_k`` best;
2. entity seeds: ``w(e) = mean_{f in top facts naming e} s(f) / |C(e)|`` with ``C(e)`` the
   passages containing ``e``; keep the ``seed_top_k`` largest;
3. query-entity seeds (hippo): ``query_entity_weight / |C(e)|`` added for each entity the
   question names (found by :mod:`hippo.retrieval.query_entities`);
4. passage seeds: ``passage_node_weight * minmax(P @ qp)`` on every passage;
5. Personalized PageRank (damping 0.5) from the seeds; passage ``p`` with mass ``pi(p)`` scores
   ``pi(p) * exp(dense_fusion * cos(qp, p))`` (hippo; ``dense_fusion = 0`` ranks by ``pi`` alone,
   as HippoRAG 2 does).

With ``query_entity_weight = 0`` and ``dense_fusion = 0`` this is HippoRAG 2 exactly.
When no fact exists (an index with no triples) and no query entity links, the ranking is
dense retrieval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hippo.config import RetrievalConfig
from hippo.graph.ppr import PPRSolver
from hippo.protocols import FloatArray
from hippo.retrieval.query_entities import query_entity_weights
from hippo.retrieval.vectors import VectorSearch
from hippo.retrieval.scorer import CosineScorer
from hippo.retrieval.scorer import top_k_indices as top_k_indices  # re-exported: long imported from here

PUSH_PASSAGE_SEEDS = 200
"""Passages seeded (the most similar ones) when PageRank runs by forward push and
``retrieval.passage_seed_top_k`` is -1 (auto)."""


def ppr_plan(config: RetrievalConfig, n_nodes: int, approximate: bool = False) -> tuple[str, int]:
    """The PageRank solver and the number of passages seeded (0 = every passage) for a graph
    of ``n_nodes`` under ``config``: ``auto`` picks forward push from ``ppr_push_min_nodes``
    nodes on; a push, or an index whose passages are searched approximately
    (``approximate``), seeds the :data:`PUSH_PASSAGE_SEEDS` best passages."""
    method = config.ppr_method
    if method == "auto":
        method = "push" if n_nodes >= config.ppr_push_min_nodes else "cg"
    k = config.passage_seed_top_k
    if k < 0:
        k = PUSH_PASSAGE_SEEDS if method == "push" or approximate else 0
    return method, k

F64 = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def minmax(x: npt.NDArray[np.floating], axis: int = 0) -> F64:
    """``(x - min) / (max - min)`` along ``axis``; all ones where the range is 0 (as HippoRAG 2)."""
    x = np.asarray(x, dtype=np.float64)
    lo = x.min(axis=axis, keepdims=True)
    span = x.max(axis=axis, keepdims=True) - lo
    safe = np.where(span > 0, span, 1.0)
    return np.where(span > 0, (x - lo) / safe, 1.0)


def entity_seed_weights(
    fact_idx: IntArray,
    fact_scores: F64,
    fact_subject: IntArray,
    fact_object: IntArray,
    entity_passage_count: IntArray,
    seed_top_k: int,
) -> tuple[IntArray, F64]:
    """Seed entities (indices, weights; best first) from the linked facts.

    ``w(e)`` is the mean score of the linked facts naming ``e`` divided by ``|C(e)|``
    (at least 1); the ``seed_top_k`` largest positive ones are kept, ties broken by index.
    """
    ents = np.concatenate([fact_subject[fact_idx], fact_object[fact_idx]])
    scores = np.concatenate([fact_scores, fact_scores])
    uniq, inv = np.unique(ents, return_inverse=True)
    sums = np.bincount(inv, weights=scores, minlength=len(uniq))
    counts = np.bincount(inv, minlength=len(uniq))
    weights = sums / counts / np.maximum(entity_passage_count[uniq], 1)
    order = np.lexsort((uniq, -weights))[:seed_top_k]
    order = order[weights[order] > 0]  # a zero weight seeds nothing; do not list it
    return uniq[order].astype(np.int64), weights[order]


@dataclass(frozen=True)
class GraphRanking:
    """One query's ranking: top passages plus the evidence that produced them."""

    passages: IntArray
    scores: F64
    facts: IntArray
    fact_scores: F64
    seed_entities: IntArray
    seed_weights: F64
    mode: str
    seed_sources: tuple[str, ...] = ()
    """Per seed: ``fact``, ``query`` or ``fact+query`` (what put it in the reset vector)."""
    memory: Any = None
    """Multi-step retrieval: the :class:`hippo.hgmem.HGMemResult` of the run (else None)."""


def _found_minmax(idx: IntArray, cos: F64, lo: float, below_all: bool = False) -> tuple[IntArray, F64]:
    """The rows an approximate search found (the probed lists may hold fewer than k: the rest
    are -inf) and their cosines min-max normalised between ``lo`` (with ``below_all``, at most
    their own lowest) and the best one."""
    ok = np.isfinite(cos)
    rows, c = idx[ok], cos[ok]
    if not len(rows):
        return rows, c
    if below_all:
        lo = min(lo, float(c.min()))
    span = float(c[0]) - lo
    return rows, ((c - lo) / span if span > 0 else np.ones(len(rows)))


def _ann_settings(config: RetrievalConfig | None) -> tuple[int | None, int | None]:
    return (None, None) if config is None else (config.ann_nprobe, config.ann_candidates)


def fuse_top(
    rows: IntArray, mass: F64, cosines: Callable[[IntArray], F64], k: int, beta: float, first: int = 256
) -> tuple[IntArray, F64]:
    """Rows and fused scores ``mass * exp(beta * (cos - 1))`` of every row that can be in the
    top ``k``, computing cosines for as few rows as possible.

    A fused score never exceeds the mass (cos <= 1), so rows are scored in decreasing mass and
    scoring stops once the next mass is below the ``k``-th fused score found: the top ``k`` is
    that of scoring every row."""
    order = np.lexsort((rows, -mass))
    rows, mass = rows[order], mass[order]
    done = 0
    fused = np.zeros(0)
    while done < len(rows):
        take = max(first, done)  # double the scored prefix each round
        part = slice(done, min(len(rows), done + take))
        fused = np.concatenate([fused, mass[part] * np.exp(beta * (cosines(rows[part]) - 1.0))])
        done = part.stop
        if done >= len(rows) or len(fused) < k:
            continue
        kth = np.partition(fused, len(fused) - k)[len(fused) - k]
        if mass[done] < kth:
            break
    return rows[:done], fused


@dataclass(frozen=True)
class LocalReset:
    """One query's sparse reset vector (graph nodes, passages first, and their mass) and what made it."""

    nodes: IntArray
    mass: F64
    facts: IntArray
    fact_scores: F64
    seeds: IntArray
    weights: F64
    query_entities: IntArray
    query_weights: F64
    dense: F64 | None
    """Every passage's cosine when computed exactly, else None."""
    fallback: bool
    """The recognition filter kept no fact and the query names no entity: rank densely."""


class HippoRAG2Ranker:
    """Ranks passages of one index. Arrays are borrowed, never copied.

    ``passage_vectors`` (P, d) and ``fact_vectors`` (F, d) are L2-normalised;
    ``fact_subject``/``fact_object`` (F,) entity indices; ``entity_passage_count`` (E,);
    ``solver`` runs PageRank over the P + E nodes (passages first).
    """

    def __init__(
        self,
        passage_vectors: FloatArray | Sequence[FloatArray],
        fact_vectors: FloatArray | Sequence[FloatArray],
        fact_subject: Any,
        fact_object: Any,
        entity_passage_count: Any,
        solver: PPRSolver,
        passage_search: VectorSearch | None = None,
        fact_search: VectorSearch | None = None,
        *,
        passage_alive: npt.NDArray[np.bool_] | None = None,
        fact_alive: npt.NDArray[np.bool_] | None = None,
        scorer_cache: dict[int, tuple[Any, Any]] | None = None,
    ) -> None:
        self.passage_search = passage_search
        """Approximate passage search (large indexes); None = exact cosines of every passage."""
        self.fact_search = fact_search
        """Approximate fact search (large indexes); None = exact cosines of every fact."""
        p_parts: list[Any] = list(passage_vectors) if isinstance(passage_vectors, (list, tuple)) else [passage_vectors]
        f_parts: list[Any] = list(fact_vectors) if isinstance(fact_vectors, (list, tuple)) else [fact_vectors]
        self.fact_subject = fact_subject
        self.fact_object = fact_object
        self.entity_passage_count = entity_passage_count
        self.solver = solver
        self.n_passages = sum(int(x.shape[0]) for x in p_parts if x is not None)
        self.n_facts = sum(int(x.shape[0]) for x in f_parts if x is not None)
        self.passage_alive = passage_alive
        """(P,) live passages, or None when none is tombstoned (a living index)."""
        self.fact_alive = fact_alive
        """(F,) facts some live passage states, or None when all are."""
        self._scorer = CosineScorer(p_parts, f_parts, scorer_cache, fact_alive)

    @property
    def empty(self) -> bool:
        """Whether no live passage is left (every ranking is then empty)."""
        return self.n_passages == 0 or (self.passage_alive is not None and not self.passage_alive.any())

    def _empty(self, n_queries: int, mode: str = "dense") -> list[GraphRanking]:
        e_i, e_f = np.zeros(0, np.int64), np.zeros(0)
        return [GraphRanking(e_i, e_f, e_i, e_f, e_i, e_f, mode) for _ in range(n_queries)]

    def _live(self, scores: F64) -> F64:
        """``scores`` over passages with tombstoned passages at -inf (never ranked)."""
        if self.passage_alive is None:
            return scores
        return np.where(self.passage_alive if scores.ndim == 1 else self.passage_alive[:, None], scores, -np.inf)

    def _dense_minmax(self, dense: F64) -> F64:
        """Min-max normalised cosines over the live passages (tombstoned ones 0)."""
        if self.passage_alive is None:
            return minmax(dense, axis=0)
        alive = self.passage_alive if dense.ndim == 1 else self.passage_alive[:, None]
        lo = np.where(alive, dense, np.inf).min(axis=0, keepdims=dense.ndim > 1)
        hi = np.where(alive, dense, -np.inf).max(axis=0, keepdims=dense.ndim > 1)
        span = hi - lo
        out = np.where(span > 0, (dense - lo) / np.where(span > 0, span, 1.0), 1.0)
        return np.where(alive, out, 0.0)

    def fact_cosines(self, qf: FloatArray) -> F64:
        """Cosine of each fact to the queries: (F, B) for ``qf`` of shape (B, d) (facts no live
        passage states any more score -1)."""
        out = self._scorer.facts(qf)
        if self.fact_alive is not None:
            out[~self.fact_alive] = -1.0
        return out

    def dense_scores(self, qp: FloatArray) -> F64:
        """Cosine of each passage to the queries: (P, B) for ``qp`` of shape (B, d) or (d,)."""
        return self._scorer.passages(qp)

    def rank_dense_many(self, qp: FloatArray, k: int) -> list[GraphRanking]:
        """Plain dense retrieval for B queries (``qp`` of shape (B, d)): one matrix product."""
        if self.empty:
            return self._empty(np.atleast_2d(qp).shape[0])
        if self.passage_search is not None:
            qp = np.atleast_2d(np.asarray(qp, dtype=np.float32))
            return [self._dense_one(qp[b : b + 1], k, None) for b in range(qp.shape[0])]
        dense = self.dense_scores(qp)
        return [self._dense_result(dense[:, b], k) for b in range(dense.shape[1])]

    def link_facts(self, qf: FloatArray, k: int, config: RetrievalConfig | None = None) -> list[tuple[IntArray, F64]]:
        """Per query (``qf`` is (B, d)): the ``k`` best facts and their min-max normalised scores,
        searched with ``config``'s ANN settings when given. With ``config.linking_top_k`` and
        ``config``, the facts :meth:`rank_many` links a query to when given none: what a caller
        may compute ahead (e.g. while the question's entities are still being found) and pass
        as ``found``."""
        qf = np.atleast_2d(np.asarray(qf, dtype=np.float32))
        if self.n_facts == 0:
            return [(np.zeros(0, np.int64), np.zeros(0))] * qf.shape[0]
        return self._link_many(qf, k, config)

    def rank_many(
        self,
        qf: FloatArray,
        qp: FloatArray,
        k: int,
        config: RetrievalConfig,
        query_entities: Sequence[Sequence[int]] | None = None,
        linked: Sequence[tuple[IntArray, F64]] | None = None,
        reset_hook: Callable[[int, F64], None] | None = None,
        found: Sequence[tuple[IntArray, F64]] | None = None,
    ) -> list[GraphRanking]:
        """Rank for B queries at once: ``qf``/``qp`` are (B, d). One batched PageRank.

        ``query_entities[b]`` lists entity indices the ``b``-th question names; they are
        seeded with ``config.query_entity_weight / |C(e)|``. ``reset_hook(b, column)`` may change
        the ``b``-th reset vector (all nodes, passages first) in place before PageRank.

        ``linked[b]`` (fact indices, scores), when given, replaces the facts linked by
        :meth:`link_facts`: the facts the recognition filter kept. A query whose filter kept
        no fact and that names no entity falls back to dense retrieval, as HippoRAG 2 does.
        ``found``, when given and ``linked`` is not, is ``link_facts(qf, config.linking_top_k,
        config)`` computed ahead (same result, no search here).
        """
        qf = np.atleast_2d(np.asarray(qf, dtype=np.float32))
        qp = np.atleast_2d(np.asarray(qp, dtype=np.float32))
        n_queries = qf.shape[0]
        named = [list(q) for q in query_entities] if query_entities is not None else [[] for _ in range(n_queries)]
        if len(named) != n_queries:
            raise ValueError(f"query_entities has {len(named)} entries for {n_queries} queries")
        if config.query_entity_weight <= 0:
            named = [[] for _ in range(n_queries)]
        if self.empty:
            return self._empty(n_queries)
        if self.n_facts == 0 and not any(named):
            return self.rank_dense_many(qp, k)
        if found is not None and len(found) != n_queries:
            raise ValueError(f"found has {len(found)} entries for {n_queries} queries")
        method, passage_k = ppr_plan(config, self.solver.n, self.passage_search is not None)
        if method == "push" or passage_k > 0 or self.passage_search is not None or self.fact_search is not None:
            return self._rank_local(qf, qp, k, config, named, linked, reset_hook, method, passage_k, found)
        dense = self.dense_scores(qp)
        fallback = [False] * n_queries
        if linked is None:
            linked = found if found is not None else self.link_facts(qf, config.linking_top_k, config)
        else:
            if len(linked) != n_queries:
                raise ValueError(f"linked has {len(linked)} entries for {n_queries} queries")
            fallback = [len(linked[b][0]) == 0 and not named[b] for b in range(n_queries)]
        reset = np.zeros((self.solver.n, n_queries))
        reset[: self.n_passages] = config.passage_node_weight * self._dense_minmax(dense)
        evidence = []
        for b, (top_facts, top_scores) in enumerate(linked):
            seeds, weights = entity_seed_weights(
                top_facts, top_scores, self.fact_subject, self.fact_object,
                self.entity_passage_count, config.seed_top_k,
            )
            q_ents, q_weights = query_entity_weights(named[b], self.entity_passage_count, config.query_entity_weight)
            reset[self.n_passages + seeds, b] += weights
            np.add.at(reset[:, b], self.n_passages + q_ents, q_weights)
            evidence.append((top_facts, top_scores, *_merge_seeds(seeds, weights, q_ents, q_weights)))
            if reset_hook is not None:
                reset_hook(b, reset[:, b])  # e.g. the hypergraph memory's extra seeds
        pi = self.solver.run(reset, config.damping, config.ppr_tol, config.ppr_max_iter, method)
        mass = pi[: self.n_passages]
        if config.dense_fusion:
            mass = mass * np.exp(config.dense_fusion * (dense - 1.0))  # cos - 1 <= 0: no overflow
        results = []
        for b, (facts, fscores, seeds, weights, sources) in enumerate(evidence):
            if fallback[b]:
                results.append(self._dense_result(dense[:, b], k))
                continue
            pscores = self._live(mass[:, b])
            top = top_k_indices(pscores, k)
            top = top[np.isfinite(pscores[top])]  # fewer live passages than k: no tombstone fills in
            results.append(GraphRanking(top, pscores[top], facts, fscores, seeds, weights, "ppr", sources))
        return results

    def _link_many(self, qf: FloatArray, k: int, config: RetrievalConfig | None = None) -> list[tuple[IntArray, F64]]:
        """Per query (``qf`` (B, d)): the ``k`` best facts with min-max normalised scores,
        through the approximate fact search (one batched call, floor estimated) or exactly."""
        if self.fact_search is None:
            return self._scorer.top_facts(qf, k)
        idx, cos = self.fact_search.search(qf, k, *_ann_settings(config))
        lo = self.fact_search.floor(qf)
        return [_found_minmax(idx[b], cos[b], float(lo[b])) for b in range(idx.shape[0])]

    def _passage_seeds_many(
        self, qp: FloatArray, k: int, config: RetrievalConfig | None = None
    ) -> list[tuple[IntArray, F64, F64 | None]]:
        """Per query (``qp`` (B, d)): its passage reset (rows, min-max normalised cosines) and
        every passage's cosine when computed exactly (else None). ``k`` = 0 seeds every passage
        (exact search only); otherwise the ``k`` most similar."""
        if self.passage_search is None:
            dense_all = self.dense_scores(qp)
            out: list[tuple[IntArray, F64, F64 | None]] = []
            for b in range(dense_all.shape[1]):
                dense = dense_all[:, b]
                norm = self._dense_minmax(dense)
                if k <= 0 or k >= self.n_passages:
                    out.append((np.arange(self.n_passages), norm, dense))
                else:
                    top = top_k_indices(self._live(dense), k)
                    out.append((top, norm[top], dense))
            return out
        if k <= 0:
            raise ValueError("an index with approximate passage search seeds its k best passages: set retrieval.passage_seed_top_k >= 1 (or -1)")
        idx, cos = self.passage_search.search(qp, k, *_ann_settings(config))
        floor = self.passage_search.floor(qp)
        return [(*_found_minmax(idx[b], cos[b], float(floor[b]), below_all=True), None) for b in range(idx.shape[0])]

    def _rank_local(
        self,
        qf: FloatArray,
        qp: FloatArray,
        k: int,
        config: RetrievalConfig,
        named: list[list[int]],
        linked: Sequence[tuple[IntArray, F64]] | None,
        reset_hook: Callable[[int, F64], None] | None,
        method: str,
        passage_k: int,
        ahead: Sequence[tuple[IntArray, F64]] | None = None,
    ) -> list[GraphRanking]:
        """:meth:`rank_many` one query at a time with a sparse reset vector: the ``passage_k``
        most similar passages (0 = all) and the entity seeds, solved by forward push (``method``
        ``push``) or by the exact solvers. The path of large indexes."""
        n_p = self.n_passages
        results = []
        found_facts = linked if linked is not None else ahead if ahead is not None else self.link_facts(qf, config.linking_top_k, config)
        passage_seeds = self._passage_seeds_many(qp, passage_k, config)
        for b in range(qf.shape[0]):
            q_f, q_p = qf[b : b + 1], qp[b : b + 1]
            reset = self.local_reset(q_f, q_p, config, named[b], None if linked is None else linked[b], passage_k,
                                     found=(found_facts[b], passage_seeds[b]))
            if reset.fallback:
                results.append(self._dense_one(q_p, k, reset.dense))
                continue
            nodes, mass, dense = reset.nodes, reset.mass, reset.dense
            seeds, weights, q_ents, q_weights = reset.seeds, reset.weights, reset.query_entities, reset.query_weights
            facts, fscores = reset.facts, reset.fact_scores
            if reset_hook is not None:
                column = np.zeros(self.solver.n)
                np.add.at(column, nodes, mass)
                reset_hook(b, column)
                nodes = np.flatnonzero(column > 0)
                mass = column[nodes]
            if method == "push":
                found, x = self.solver.push.run(nodes, mass, config.damping, config.ppr_push_eps, refine_below=n_p,
                                                certify=k if config.ppr_push_certify else 0, eps_start=config.ppr_push_eps_start)
                on_p = found < n_p
                prow_hit, pmass = found[on_p], x[on_p] / x.sum()
            else:
                column = np.zeros(self.solver.n)
                np.add.at(column, nodes, mass)
                pi = self.solver.run(column, config.damping, config.ppr_tol, config.ppr_max_iter, method)
                prow_hit = np.flatnonzero(pi[:n_p] > 0)
                pmass = pi[prow_hit]
            if config.dense_fusion and len(prow_hit):
                if dense is not None:
                    pmass = pmass * np.exp(config.dense_fusion * (dense[prow_hit] - 1.0))
                else:  # cosines read from disk: only for passages that can still reach the top k
                    search = self.passage_search
                    assert search is not None
                    prow_hit, pmass = fuse_top(prow_hit, pmass, lambda rows: search.cosines(q_p[0], rows), k, config.dense_fusion)
            top = top_k_indices(pmass, k)
            merged = _merge_seeds(seeds, weights, np.asarray(q_ents, dtype=np.int64), q_weights)
            results.append(GraphRanking(prow_hit[top], pmass[top], facts, fscores, *merged[:2], "ppr", merged[2]))
        return results

    def local_reset(
        self,
        qf: FloatArray,
        qp: FloatArray,
        config: RetrievalConfig,
        named: Sequence[int] = (),
        linked: tuple[IntArray, F64] | None = None,
        passage_k: int | None = None,
        found: tuple[tuple[IntArray, F64], tuple[IntArray, F64, F64 | None]] | None = None,
    ) -> LocalReset:
        """The sparse reset vector of one query (``qf``/``qp`` of shape (1, d)): its linked facts
        (or ``linked``), entity seeds, the entities it names (``named``) and its ``passage_k``
        most similar passages (default: as :func:`ppr_plan` decides; 0 = all). ``found`` passes
        the linked facts and passage seeds already searched for (a batch searches once)."""
        if passage_k is None:
            passage_k = ppr_plan(config, self.solver.n, self.passage_search is not None)[1]
        if config.query_entity_weight <= 0:
            named = ()
        if linked is not None:
            facts, fscores = linked
            fallback = len(facts) == 0 and not named
        elif found is not None:
            (facts, fscores), fallback = found[0], False
        else:
            facts, fscores = self.link_facts(qf, config.linking_top_k, config)[0]
            fallback = False
        prow, pweight, dense = found[1] if found is not None else self._passage_seeds_many(qp, passage_k, config)[0]
        seeds, weights = entity_seed_weights(
            facts, fscores, self.fact_subject, self.fact_object, self.entity_passage_count, config.seed_top_k,
        )
        q_ents, q_weights = query_entity_weights(list(named), self.entity_passage_count, config.query_entity_weight)
        q_ents = np.asarray(q_ents, dtype=np.int64)
        nodes = np.concatenate([prow, self.n_passages + seeds, self.n_passages + q_ents])
        mass = np.concatenate([config.passage_node_weight * pweight, weights, q_weights])
        return LocalReset(nodes, mass, facts, fscores, seeds, weights, q_ents, np.asarray(q_weights, dtype=np.float64), dense, fallback)

    def _dense_one(self, qp: FloatArray, k: int, dense: F64 | None) -> GraphRanking:
        if dense is not None or self.passage_search is None:
            return self._dense_result(self.dense_scores(qp)[:, 0] if dense is None else dense, k)
        idx, cos = self.passage_search.search(qp, k)
        ok = np.isfinite(cos[0])
        empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0)
        return GraphRanking(idx[0][ok], cos[0][ok], empty_i, empty_f, empty_i, empty_f, "dense")

    def _dense_result(self, scores: F64, k: int) -> GraphRanking:
        scores = self._live(scores)
        top = top_k_indices(scores, min(k, int(np.isfinite(scores).sum())))
        empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0)
        return GraphRanking(top, scores[top], empty_i, empty_f, empty_i, empty_f, "dense")


def _merge_seeds(
    fact_seeds: IntArray, fact_weights: F64, query_seeds: IntArray, query_weights: F64
) -> tuple[IntArray, F64, tuple[str, ...]]:
    """All seeds with their total reset weight, largest first, and where each came from."""
    total: dict[int, float] = {}
    source: dict[int, str] = {}
    for e, w in zip(fact_seeds.tolist(), fact_weights.tolist()):
        total[e] = total.get(e, 0.0) + w
        source[e] = "fact"
    for e, w in zip(query_seeds.tolist(), query_weights.tolist()):
        total[e] = total.get(e, 0.0) + w
        source[e] = "fact+query" if source.get(e, "query") != "query" else "query"
    order = sorted(total, key=lambda e: (-total[e], e))
    return (
        np.asarray(order, dtype=np.int64),
        np.asarray([total[e] for e in order], dtype=np.float64),
        tuple(source[e] for e in order),
    )
