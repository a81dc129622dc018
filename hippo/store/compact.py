"""The files that let a large index open in milliseconds and answer without a full scan.

Every generation written since format 1.1 holds, next to the JSON files:

* packed string tables (:mod:`hippo.store.strings`): ``passage_ids``, ``passage_titles``,
  ``passage_contents``, ``entity_names``, ``fact_relations``; plus ``entity_name_hash.npy`` /
  ``entity_name_rows.npy`` for exact name lookup;
* the PageRank graph as CSR arrays (``adj_indptr.npy``, ``adj_indices.npy`` int32,
  ``adj_data.npy`` float64, ``node_degree.npy``), so opening builds nothing;
* for vector sets of at least ``graph.ann_min_rows`` rows, a faiss IVF-PQ index
  (``passage_vectors.ivf``, ``fact_vectors.ivf``, ``entity_vectors.ivf``).

An engine reads these when present and falls back to the JSON files and edge lists of
older generations.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hippo.graph.build import Graph, pair_cosine
from hippo.retrieval.vectors import build_ivf, load_faiss, read_rows
from hippo.store.strings import hash_table, pack_strings

IntArray = npt.NDArray[np.int64]

STRING_TABLES = ("passage_ids", "passage_titles", "passage_contents", "entity_names", "fact_relations")
VECTOR_SETS = ("passage_vectors", "fact_vectors", "entity_vectors")
SQ_MARGIN = 0.01
"""The blocked search multiplies float32 copies of (possibly float16) vectors: it looks this far
below the threshold, and exact cosines decide."""


def string_files(tables: dict[str, Sequence[str]]) -> dict[str, Any]:
    """``stem.bin`` (raw bytes) and ``stem.off.npy`` for each table, plus the name hash of entities."""
    from hippo.ids import normalize

    out: dict[str, Any] = {}
    for stem, strings in tables.items():
        data, off = pack_strings(strings)
        out[f"{stem}.bin"] = data.tobytes()
        out[f"{stem}.off.npy"] = off
    if "entity_names" in tables:
        hashes, rows = hash_table(normalize(n) for n in tables["entity_names"])
        out["entity_name_hash.npy"] = hashes
        out["entity_name_rows.npy"] = rows
    return out


def graph_files(graph: Graph) -> dict[str, Any]:
    """The symmetric weighted adjacency as CSR arrays and the weighted degree of every node."""
    adj = graph.adjacency()
    if adj.nnz >= 2**31:
        raise ValueError("graphs with 2^31 or more adjacency entries are not supported")
    return {
        "adj_indptr.npy": adj.indptr.astype(np.int64),
        "adj_indices.npy": adj.indices.astype(np.int32),
        "adj_data.npy": adj.data.astype(np.float64),
        "node_degree.npy": np.asarray(adj.sum(axis=1)).ravel(),
    }


def ann_files(vectors: dict[str, Any], min_rows: int, stage: Path, seed: int = 0) -> tuple[dict[str, Path], dict[str, Any]]:
    """An IVF-PQ index, staged in ``stage``, for every vector set with at least ``min_rows`` rows.

    Returns the staged files (``name.ivf`` -> path, for :func:`hippo.store.write_generation`)
    and what was built, with timings."""
    staged: dict[str, Path] = {}
    report: dict[str, Any] = {}
    for name, vecs in vectors.items():
        if vecs.shape[0] < min_rows:
            continue
        stage.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        path = stage / f"{name}.ivf"
        info = build_ivf(vecs, path, seed=seed)
        staged[f"{name}.ivf"] = path
        report[name] = {**info, "seconds": round(time.perf_counter() - t, 2)}
    return staged, report


def synonymy_candidates_ivf(
    vectors: Any,
    threshold: float,
    new: npt.NDArray[np.bool_] | None = None,
    probes: int = 4,
    seed: int = 0,
    block: int = 8192,
) -> tuple[IntArray, IntArray, npt.NDArray[np.float32], int]:
    """:func:`hippo.graph.build.synonymy_candidates` by blocked search over inverted lists.

    k-means puts every entity in the list of its nearest centroid (its *home*); each new entity
    (all of them for a full build) is compared with the members of its ``probes`` nearest
    lists, one list at a time as a dense matrix product (BLAS speed, where scanning codes query
    by query is an order of magnitude slower). A pair is found when either endpoint's probes
    reach the other's home. With ``L ~ sqrt(probes * n)`` lists the cost is about
    ``4 n sqrt(probes n) d`` flops instead of ``n^2 d``. Cosines are then recomputed exactly
    (:func:`pair_cosine`), so only recall is approximate (measured against exact search by
    ``benchmarks/scale.py``). Returns ``(i, j, cos, scored)`` with ``scored`` the number of
    pairs whose cosine was computed, as the exact function does.
    """
    faiss = load_faiss()
    n, d = vectors.shape
    new_idx = np.arange(n) if new is None else np.flatnonzero(new)
    empty = np.zeros(0, dtype=np.int64)
    if n < 2 or not len(new_idx):
        return empty, empty, np.zeros(0, np.float32), 0
    x = np.empty((n, d), dtype=np.float32)  # one copy in RAM: gathers below are plain copies
    for a in range(0, n, 1 << 18):
        x[a : a + (1 << 18)] = read_rows(vectors, a, a + (1 << 18))
    lists = int(min(16384, max(8, round(np.sqrt(probes * n)))))
    probes = min(probes, lists)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(n, 32 * lists), replace=False))
    km = faiss.Kmeans(d, lists, niter=10, seed=seed, spherical=True, min_points_per_centroid=1, max_points_per_centroid=32)
    km.train(np.ascontiguousarray(x[sample]))
    centroids = faiss.IndexFlatIP(d)
    centroids.add(km.centroids)
    near = np.zeros((n, probes), dtype=np.int32)
    for a in range(0, n, 1 << 16):
        _, near[a : a + (1 << 16)] = centroids.search(x[a : a + (1 << 16)], probes)
    home = near[:, 0].astype(np.int64)
    member_order = np.argsort(home, kind="stable")
    member_start = np.searchsorted(home[member_order], np.arange(lists + 1))
    q_rows = np.repeat(new_idx, probes)
    q_list = near[new_idx].ravel().astype(np.int64)
    q_order = np.argsort(q_list, kind="stable")
    q_rows = q_rows[q_order]
    q_start = np.searchsorted(q_list[q_order], np.arange(lists + 1))
    pre = np.float32(threshold - SQ_MARGIN)
    rows_l, cols_l = [empty], [empty]
    scored = 0
    for ell in range(lists):
        members = member_order[member_start[ell] : member_start[ell + 1]]
        queries = q_rows[q_start[ell] : q_start[ell + 1]]
        if not len(members) or not len(queries):
            continue
        m = x[members]
        for b in range(0, len(queries), block):
            qs = queries[b : b + block]
            sims = x[qs] @ m.T
            scored += sims.size
            hit_r, hit_c = np.nonzero(sims >= pre)
            rows_l.append(qs[hit_r])
            cols_l.append(members[hit_c])
    src = np.concatenate(rows_l)
    dst = np.concatenate(cols_l)
    other = src != dst
    src, dst = src[other], dst[other]
    key = np.unique(np.minimum(src, dst) * n + np.maximum(src, dst))
    i, j = key // n, key % n
    cos = pair_cosine(x, i, j)  # the float32 copy holds the stored values exactly
    above = cos >= threshold
    return i[above], j[above], cos[above], scored
