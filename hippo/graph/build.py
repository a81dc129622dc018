"""Build the HippoRAG 2 graph as typed edge arrays.

Node numbering: passages are ``0 .. P-1`` (corpus order), entities ``P .. P+E-1``.
Edges are undirected, one row per unordered pair and type, stored ``src < dst``:

* relation (type 0): subject -- object of every fact, weight = number of passages
  stating the fact (x2 in ``reference`` mode: HippoRAG 2 adds both orientations, and a
  direction that also carries a synonym keeps only the synonym, as in HippoRAG 2);
* context (type 1): passage -- each entity of its facts, weight 1;
* synonym (type 2): entity -- entity with cosine >= threshold, weight = cosine (x the
  number of endpoints that accepted the pair in ``reference`` mode).

The same pair can carry edges of several types; PageRank sums their weights, exactly
as igraph sums HippoRAG 2's parallel edges.

Synonymy comes in two steps so that an index can grow: :func:`synonymy_candidates` finds
every pair above the threshold (for an insert, only pairs with a new entity), and
:func:`accept_synonyms` applies the per-entity cap to all candidates, old and new.
:func:`assemble_graph` turns counts and accepted pairs into edges; :func:`build_graph` is
the two together from scratch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from hippo.protocols import FloatArray

EDGE_TYPES = ("relation", "context", "synonym")
RELATION, CONTEXT, SYNONYM = 0, 1, 2

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Graph:
    """Typed undirected edge list over passages and entities.

    ``src``/``dst`` (int32, shape (m,)) are node indices with src < dst; ``weight``
    (float32, (m,)); ``kind`` (uint8, (m,)) indexes :data:`EDGE_TYPES`.
    """

    n_passages: int
    n_entities: int
    src: npt.NDArray[np.int32]
    dst: npt.NDArray[np.int32]
    weight: npt.NDArray[np.float32]
    kind: npt.NDArray[np.uint8]

    @property
    def n_nodes(self) -> int:
        """Passages plus entities."""
        return self.n_passages + self.n_entities

    def edge_counts(self) -> dict[str, int]:
        """Number of edges of each type."""
        counts = np.bincount(self.kind, minlength=len(EDGE_TYPES))
        return {name: int(counts[i]) for i, name in enumerate(EDGE_TYPES)}

    def adjacency(self) -> sp.csr_matrix:
        """Symmetric weighted adjacency (n_nodes x n_nodes, float64 CSR); parallel edges summed."""
        n = self.n_nodes
        rows = np.concatenate([self.src, self.dst])
        cols = np.concatenate([self.dst, self.src])
        data = np.concatenate([self.weight, self.weight]).astype(np.float64)
        adj = sp.csr_matrix((data, (rows, cols)), shape=(n, n))
        adj.sum_duplicates()
        adj.sort_indices()
        return adj


SYNONYMY_MARGIN = 1e-4
"""Matrix-product cosines within this of the threshold are re-checked exactly (float32
products are order-dependent in the last bits; the exact check is not)."""


def pair_cosine(vectors: FloatArray, i: IntArray, j: IntArray) -> FloatArray:
    """(k,) cosine of each pair ``(i[t], j[t])`` of L2-normalised rows, in float64 then
    rounded to float32: the same value whatever batch or block the pair was found in."""
    cos: FloatArray = np.zeros(len(i), dtype=np.float32)
    for s in range(0, len(i), 1 << 16):  # in chunks: 10^6 pairs gathered at once would be 6 GB
        a = np.asarray(vectors[i[s : s + (1 << 16)]], dtype=np.float64)
        b = np.asarray(vectors[j[s : s + (1 << 16)]], dtype=np.float64)
        cos[s : s + (1 << 16)] = np.einsum("kd,kd->k", a, b)
    return cos


def synonymy_candidates(
    vectors: FloatArray,
    threshold: float,
    new: npt.NDArray[np.bool_] | None = None,
    block: int = 512,
) -> tuple[IntArray, IntArray, FloatArray, int]:
    """Entity pairs whose cosine is >= ``threshold``, before any per-entity cap.

    ``vectors``: (E, d) L2-normalised. With ``new`` (E,) only pairs with at least one new
    endpoint are scored: new x old plus the upper triangle of new x new, so the cost is
    proportional to the number of new entities (an insert). ``new=None`` means all are new.
    Returns ``(i, j, cos, scored)``: i < j sorted by (i, j), and the number of pairs scored.
    Cosines come from :func:`pair_cosine`, so they do not depend on how the pairs were found.
    """
    n = vectors.shape[0]
    new_idx = np.arange(n) if new is None else np.flatnonzero(new)
    old_idx = np.zeros(0, dtype=np.int64) if new is None else np.flatnonzero(~new)
    empty = np.zeros(0, dtype=np.int64)
    vecs = np.ascontiguousarray(vectors, dtype=np.float32)
    old = vecs[old_idx]
    pre = threshold - SYNONYMY_MARGIN
    rows_l, cols_l = [empty], [empty]
    for start in range(0, len(new_idx), block):
        rows = new_idx[start : start + block]
        b = len(rows)
        part = vecs[rows]
        if len(old_idx):
            r, c = np.nonzero(part @ old.T >= pre)
            rows_l.append(rows[r])
            cols_l.append(old_idx[c])
        sims = part @ vecs[new_idx[start:]].T  # this block against itself and later new rows
        sims[:, :b][np.tril_indices(b)] = -np.inf  # keep pairs strictly above the diagonal
        hit = sims >= pre
        some = np.flatnonzero(hit.any(axis=1))  # few rows have any synonym: scan only those
        r, c = np.nonzero(hit[some])
        rows_l.append(rows[some[r]])
        cols_l.append(new_idx[start:][c])
    a = np.concatenate(rows_l).astype(np.int64)
    c = np.concatenate(cols_l).astype(np.int64)
    i, j = np.minimum(a, c), np.maximum(a, c)
    cos = pair_cosine(vecs, i, j)
    keep = cos >= threshold
    i, j, cos = i[keep], j[keep], cos[keep]
    order = np.lexsort((j, i))
    m_new, m_old = len(new_idx), len(old_idx)
    return i[order], j[order], cos[order], m_new * m_old + m_new * (m_new - 1) // 2


def accept_synonyms(
    i: IntArray, j: IntArray, cos: FloatArray, eligible: npt.NDArray[np.bool_], max_neighbors: int
) -> npt.NDArray[np.int8]:
    """(k,) how many endpoints (0, 1 or 2) accept each candidate pair ``(i, j, cos)``.

    An endpoint accepts the pair if it is eligible and the pair is among its
    ``max_neighbors`` most similar candidates (ties broken by the neighbour's index).
    """
    src = np.concatenate([i, j])
    nbr = np.concatenate([j, i])
    score = np.concatenate([cos, cos])
    order = np.lexsort((nbr, -score, src))
    src_sorted = src[order]
    starts = np.searchsorted(src_sorted, src_sorted, side="left")
    rank = np.arange(len(src_sorted)) - starts
    ok_sorted = (rank < max_neighbors) & eligible[src_sorted]
    ok = np.empty_like(ok_sorted)
    ok[order] = ok_sorted
    m = len(i)
    accepted: npt.NDArray[np.int8] = ok[:m].astype(np.int8) + ok[m:].astype(np.int8)
    return accepted


def synonymy_pairs(
    vectors: FloatArray,
    eligible: npt.NDArray[np.bool_],
    threshold: float,
    max_neighbors: int,
    block: int = 512,
) -> tuple[IntArray, IntArray, FloatArray, npt.NDArray[np.int8]]:
    """Entity pairs whose cosine is >= ``threshold`` and that some endpoint accepts.

    ``vectors``: (E, d) L2-normalised. ``eligible[i]`` says whether entity i looks for
    synonyms (HippoRAG 2 skips phrases of <= 2 characters); each eligible entity accepts its
    ``max_neighbors`` most similar candidates. Returns ``(i, j, cos, accepted)`` with i < j,
    sorted by (i, j); ``accepted`` (1 or 2) counts the endpoints that accepted the pair.
    Exact: one blocked matrix product over the upper triangle only.
    """
    i, j, cos, _ = synonymy_candidates(vectors, threshold, None, block)
    acc = accept_synonyms(i, j, cos, eligible, max_neighbors)
    keep = acc > 0
    return i[keep], j[keep], cos[keep], acc[keep]


def build_graph(
    n_passages: int,
    n_entities: int,
    fact_subject: IntArray,
    fact_object: IntArray,
    fact_passage_count: IntArray,
    passage_entity_rows: IntArray,
    passage_entity_cols: IntArray,
    entity_vectors: FloatArray,
    synonym_eligible: npt.NDArray[np.bool_],
    synonymy_threshold: float = 0.8,
    synonymy_max_neighbors: int = 100,
    edge_weights: str = "reference",
) -> Graph:
    """Assemble the typed edge list, computing every synonymy pair from scratch.

    ``fact_subject``/``fact_object`` (F,) are entity indices of each distinct fact;
    ``fact_passage_count`` (F,) how many passages state it. ``passage_entity_rows``/``cols``
    list distinct (passage, entity) containment pairs. ``entity_vectors`` (E, d) feed the
    synonymy kNN. Entity indices are 0-based here and shifted by ``n_passages`` in the graph.
    """
    _check_edge_weights(edge_weights)
    si, sj, scos, acc = synonymy_pairs(entity_vectors, synonym_eligible, synonymy_threshold, synonymy_max_neighbors)
    return assemble_graph(
        n_passages, n_entities, fact_subject, fact_object, fact_passage_count,
        passage_entity_rows, passage_entity_cols, (si, sj, scos, acc), edge_weights,
    )


def _check_edge_weights(edge_weights: str) -> None:
    if edge_weights not in ("reference", "single"):
        raise ValueError(f"edge_weights must be 'reference' or 'single', not {edge_weights!r}")


def assemble_graph(
    n_passages: int,
    n_entities: int,
    fact_subject: IntArray,
    fact_object: IntArray,
    fact_passage_count: IntArray,
    passage_entity_rows: IntArray,
    passage_entity_cols: IntArray,
    synonyms: tuple[IntArray, IntArray, FloatArray, npt.NDArray[np.int8]],
    edge_weights: str = "reference",
) -> Graph:
    """The typed edge list from the knowledge base and given synonymy pairs.

    ``synonyms`` is ``(i, j, cos, accepted)`` as :func:`synonymy_pairs` returns it (pairs
    with ``accepted == 0`` are ignored). Everything else is as in :func:`build_graph`; the
    graph is a pure function of these counts, so an index updated in place and one built
    from scratch get the same edges.
    """
    _check_edge_weights(edge_weights)
    both = edge_weights == "reference"
    p = n_passages
    # Relation edges: sum counts over facts sharing an unordered entity pair; no self-loops.
    s = np.asarray(fact_subject, dtype=np.int64)
    o = np.asarray(fact_object, dtype=np.int64)
    cnt = np.asarray(fact_passage_count, dtype=np.float64)
    keep = s != o
    lo, hi, cnt = np.minimum(s, o)[keep], np.maximum(s, o)[keep], cnt[keep]
    width = max(n_entities, 1)  # pair (a, b) of entity indices is keyed a * width + b
    key = lo * width + hi
    ukey, inv = np.unique(key, return_inverse=True)
    rel_w = np.bincount(inv, weights=cnt, minlength=len(ukey)) * (2.0 if both else 1.0)
    rel_src = ukey // width + p
    rel_dst = ukey % width + p
    # Context edges: passage -- entity, weight 1.
    ctx = np.unique(np.asarray(passage_entity_rows, np.int64) * width + np.asarray(passage_entity_cols, np.int64))
    ctx_src = ctx // width
    ctx_dst = ctx % width + p
    # Synonymy edges.
    si, sj, scos, acc = synonyms
    accepted = acc > 0
    si, sj, scos, acc = si[accepted], sj[accepted], scos[accepted], acc[accepted]
    syn_w = scos.astype(np.float64) * (acc if both else 1)
    if both and len(ukey) and len(si):
        # HippoRAG 2 keeps one weight per ordered pair: a synonym score overwrites the fact
        # count in each direction that accepted the synonym.
        skey = si * width + sj
        pos = np.searchsorted(ukey, skey)
        hit = pos < len(ukey)
        hit[hit] = ukey[pos[hit]] == skey[hit]
        rel_w[pos[hit]] *= (2 - acc[hit]) / 2.0
        keep_rel = rel_w > 0
        rel_src, rel_dst, rel_w = rel_src[keep_rel], rel_dst[keep_rel], rel_w[keep_rel]
    src = np.concatenate([rel_src, ctx_src, si + p]).astype(np.int32)
    dst = np.concatenate([rel_dst, ctx_dst, sj + p]).astype(np.int32)
    weight = np.concatenate([rel_w, np.ones(len(ctx_src)), syn_w]).astype(np.float32)
    kind = np.concatenate(
        [np.full(len(rel_src), RELATION), np.full(len(ctx_src), CONTEXT), np.full(len(si), SYNONYM)]
    ).astype(np.uint8)
    return Graph(p, n_entities, src, dst, weight, kind)
