"""Synonymy candidates of many entities by blocked search over inverted lists (pure, no IO).

Exact all-pairs search costs E^2 products; from ``graph.ann_min_rows`` entities on, the
builder finds the pairs above the threshold with :func:`synonymy_candidates_ivf` instead: int8
products within the lists each entity probes, then exact cosines of what is kept, so only
recall is approximate (measured by ``benchmarks/scale.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from hippo.compiled import numba_kernel
from hippo.graph.build import pair_cosine
from hippo.retrieval.vectors import read_rows

IntArray = npt.NDArray[np.int64]

SQ_MARGIN = 0.01
"""The blocked search multiplies float32 copies of (possibly float16) vectors: it looks this far
below the threshold, and exact cosines decide."""


def synonymy_candidates_ivf(
    vectors: Any,
    threshold: float,
    new: npt.NDArray[np.bool_] | None = None,
    probes: int = 24,
    spread: float = 0.03,
    min_probes: int = 8,
    lists: int = 0,
    seed: int = 0,
    block: int = 16384,
) -> tuple[IntArray, IntArray, npt.NDArray[np.float32], int]:
    """:func:`hippo.graph.build.synonymy_candidates` by blocked search over inverted lists.

    Spherical k-means (:func:`spherical_kmeans`, on a sample) puts every entity in the list of
    its nearest centroid (its *home*). Each entity then probes its ``min_probes`` nearest lists
    and every other list whose centroid is within ``spread`` (cosine) of its nearest one, at
    most ``probes`` in all: entities near a border probe more of their neighbours. (The spread
    alone suits tightly clustered vectors; on the real MiniLM entity vectors of MuSiQue and
    2wiki it found 84% / 80% of the pairs, the floor of 8 nearest lists 99.9% / 99.2%.) A pair is found when
    either endpoint probes the other's home. Each list is searched as one matrix product of its
    probing entities against its members, in int8 (``torch._int_mm``, about 4x the float32
    rate here) on vectors scaled by one factor, keeping products above
    ``threshold - SQ_MARGIN`` (int8 rounding moves a cosine by about 0.001); the cosines of
    what is kept are then recomputed exactly (:func:`pair_cosine`), so only recall is
    approximate (measured against exact search by ``benchmarks/scale.py``). With ``new`` (an
    insert) new entities probe as above and old ones meet only the new members of the lists
    they probe: only pairs with a new endpoint are scored. ``lists`` defaults to
    ``sqrt(32 n)``.

    Memory: one int8 copy of the vectors (a quarter of float32), ordered by home list, and the
    probe table; the vectors themselves are read in chunks (a float16 memory map is never
    converted whole). Returns ``(i, j, cos, scored)`` with ``scored`` the number of pairs whose
    product was computed.
    """
    import torch

    n, d = vectors.shape
    is_new = np.ones(n, dtype=bool) if new is None else np.asarray(new, dtype=bool)
    empty = np.zeros(0, dtype=np.int64)
    if n < 2 or not is_new.any():
        return empty, empty, np.zeros(0, np.float32), 0
    chunk = 1 << 16
    top = 0.0
    for a in range(0, n, chunk):
        top = max(top, float(np.abs(read_rows(vectors, a, a + chunk)).max()))
    scale = 127.0 / max(top, 1e-12)
    x8 = np.empty((n, d), dtype=np.int8)
    for a in range(0, n, chunk):
        x8[a : a + chunk] = np.rint(read_rows(vectors, a, a + chunk) * scale)
    lists = int(lists) if lists > 0 else int(min(16384, max(8, round(np.sqrt(32 * n)))))
    lists = min(lists, n)
    probes = max(1, min(probes, lists))
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(n, 16 * lists), replace=False))
    cent = spherical_kmeans(read_rows_at(vectors, sample), lists, seed=seed)
    c_scale = 127.0 / max(float(np.abs(cent).max()), 1e-12)
    c8 = torch.from_numpy(np.rint(cent * c_scale).astype(np.int8)).T
    width = int(spread * scale * c_scale)
    home = np.zeros(n, dtype=np.int64)
    probe_rows, probe_lists = [], []
    step = 8192
    kernel = _near_kernel()
    with torch.inference_mode():  # nearest centroids by int8 products too: they only pick lists
        for a in range(0, n, step):
            prod = torch._int_mm(torch.from_numpy(x8[a : a + step]), c8)
            if kernel is not None:
                lists_of = np.empty((prod.shape[0], probes), dtype=np.int32)
                count = kernel(prod.numpy(), width, lists_of, home[a : a + step], min(min_probes, probes))
                r = np.repeat(np.arange(a, a + len(count), dtype=np.int32), count)
                c = lists_of[np.arange(probes)[None, :] < count[:, None]]
            else:
                best, arg = prod.max(dim=1)
                home[a : a + step] = arg.numpy()
                near = prod >= (best - width)[:, None]
                if min_probes > 1:
                    near[torch.arange(prod.shape[0])[:, None], torch.topk(prod, min(min_probes, probes), dim=1).indices] = True
                crowded = torch.nonzero(near.sum(dim=1) > probes).ravel()
                if len(crowded):  # more than `probes` lists within the spread: the nearest ones
                    near[crowded] = False
                    near[crowded[:, None], torch.topk(prod[crowded], probes, dim=1).indices] = True
                rt, ct = torch.nonzero(near, as_tuple=True)
                r, c = (rt + a).to(torch.int32).numpy(), ct.to(torch.int32).numpy()
            probe_rows.append(r)
            probe_lists.append(c)
    q_rows = np.concatenate(probe_rows)
    q_list = np.concatenate(probe_lists)
    del probe_rows, probe_lists
    # an old entity only probes lists with new members (none in a full build)
    has_new = np.bincount(home[is_new], minlength=lists) > 0
    sel = is_new[q_rows] | has_new[q_list]
    q_rows, q_list = q_rows[sel], q_list[sel]
    q_order = np.argsort(q_list, kind="stable")
    q_rows = q_rows[q_order].astype(np.int64)
    q_start = np.searchsorted(q_list[q_order], np.arange(lists + 1))
    del q_list, q_order, sel
    member_order = np.argsort(home, kind="stable")
    member_start = np.searchsorted(home[member_order], np.arange(lists + 1))
    position = np.empty(n, dtype=np.int64)
    position[member_order] = np.arange(n)
    x8 = x8[member_order]  # members of a list are now one contiguous slice
    pre = int(np.floor((threshold - SQ_MARGIN) * scale * scale))
    work = _ScanWork(d, block)
    scored = 0
    with torch.inference_mode():
        for ell in range(lists):
            lo, hi = int(member_start[ell]), int(member_start[ell + 1])
            queries = q_rows[q_start[ell] : q_start[ell + 1]]
            if hi == lo or not len(queries):
                continue
            members = member_order[lo:hi]
            block_m = torch.from_numpy(x8[lo:hi]).T
            if new is not None:  # an old query only meets the new members
                old_q = ~is_new[queries]
                fresh = np.flatnonzero(is_new[members])
                if old_q.any() and len(fresh):
                    scored += _scan(x8, position, queries[old_q], torch.from_numpy(x8[lo + fresh]).T, members[fresh], pre, work)
                queries = queries[~old_q]
            scored += _scan(x8, position, queries, block_m, members, pre, work)
    del x8, q_rows, position
    src, dst = work.hits()
    del work
    other = src != dst
    src, dst = src[other], dst[other]
    key = np.unique(np.minimum(src, dst) * n + np.maximum(src, dst))
    i, j = key // n, key % n
    cos = pair_cosine(vectors, i, j)  # from the stored values, in float64
    above = cos >= threshold
    return i[above], j[above], cos[above], scored


class _ScanWork:
    """The work arrays of :func:`_scan`, made once per search and reused by every block: the
    block's gathered int8 query rows, its int32 products, and the hits found so far (grown by
    doubling). Made per block instead, they fragmented the heap: the freed blocks, pinned by
    the small hit arrays kept between them, stayed resident (10^6-passage build, 4,990,033
    entities: the stage peaked at 17.2 GB of anonymous memory instead of 5.7 GB)."""

    def __init__(self, d: int, block: int) -> None:
        import torch

        self.rows = np.empty((block, d), dtype=np.int8)
        self.prod = torch.empty(1 << 20, dtype=torch.int32)
        self.hit_r = np.empty(1 << 16, dtype=np.int64)
        self.hit_c = np.empty(1 << 16, dtype=np.int64)
        self.k = 0

    def products(self, n_rows: int, n_cols: int) -> Any:
        """A (n_rows, n_cols) int32 tensor over the reused buffer (grown when too small)."""
        import torch

        if n_rows * n_cols > self.prod.numel():
            self.prod = torch.empty(max(n_rows * n_cols, 2 * self.prod.numel()), dtype=torch.int32)
        return self.prod[: n_rows * n_cols].view(n_rows, n_cols)

    def room(self, more: int) -> None:
        """Make room for ``more`` hits after the ``k`` kept ones."""
        if self.k + more > len(self.hit_r):
            size = max(self.k + more, 2 * len(self.hit_r))
            for name in ("hit_r", "hit_c"):
                grown = np.empty(size, dtype=np.int64)
                grown[: self.k] = getattr(self, name)[: self.k]
                setattr(self, name, grown)

    def hits(self) -> tuple[IntArray, IntArray]:
        """(rows, columns) of every hit, as entity indices (copies)."""
        return self.hit_r[: self.k].copy(), self.hit_c[: self.k].copy()


def _scan(
    x8: npt.NDArray[np.int8], position: IntArray, queries: IntArray, block_m: Any, members: IntArray, pre: int,
    work: _ScanWork,
) -> int:
    """Record in ``work`` the pairs (query, member) whose int8 product is at least ``pre``;
    return how many products were computed. ``block_m`` is the members' (d, m) int8 tensor.
    Queries go in blocks whose product matrix stays in cache (about 4 MB) for the threshold pass."""
    import torch

    if not len(queries) or not len(members):
        return 0
    kernel = _hits_kernel()
    step = int(min(len(work.rows), max(256, (1 << 20) // len(members))))
    scored = 0
    for b in range(0, len(queries), step):
        qs = queries[b : b + step]
        rows = work.rows[: len(qs)]
        np.take(x8, position[qs], axis=0, out=rows, mode="clip")  # valid rows; "clip" writes straight into out
        prod = work.products(len(qs), len(members))
        torch._int_mm(torch.from_numpy(rows), block_m, out=prod)
        scored += prod.numel()
        k0 = work.k
        if kernel is not None:
            found = kernel(prod.numpy(), pre, work.hit_r[k0:], work.hit_c[k0:])
            if found > len(work.hit_r) - k0:  # the buffer was too small: grow it and scan again
                work.room(found)
                kernel(prod.numpy(), pre, work.hit_r[k0:], work.hit_c[k0:])
        else:
            hit = torch.nonzero(prod >= pre).numpy()
            found = len(hit)
            work.room(found)
            work.hit_r[k0 : k0 + found], work.hit_c[k0 : k0 + found] = hit[:, 0], hit[:, 1]
        if found:
            work.hit_r[k0 : k0 + found] = qs[work.hit_r[k0 : k0 + found]]
            work.hit_c[k0 : k0 + found] = members[work.hit_c[k0 : k0 + found]]
            work.k = k0 + found
    return scored


def _hits_kernel() -> Any:
    """The numba threshold scan of :func:`_scan`: writes the (row, column) of every product at
    least ``pre`` into the given arrays while they have room, and returns how many there are
    (None without numba)."""
    return numba_kernel("hits", _make_hits)


def _make_hits(numba: Any) -> Any:
    @numba.njit(cache=True, nogil=True)
    def hits(prod, pre, out_r, out_c):  # type: ignore[no-untyped-def]
        rows, cols = prod.shape
        room = out_r.shape[0]
        k = 0
        for i in range(rows):
            for j in range(cols):
                if prod[i, j] >= pre:
                    if k < room:
                        out_r[k] = i
                        out_c[k] = j
                    k += 1
        return k

    return hits


def _near_kernel() -> Any:
    """A numba kernel for the lists each row probes (None without numba): per row of int32
    products, the best list (its home: the first of equal best ones) and every list within
    ``width`` of it or among the ``least`` best, at most ``out.shape[1]`` (the best ones);
    rows in parallel."""
    return numba_kernel("near", _make_near)


def _make_near(numba: Any) -> Any:
    @numba.njit(cache=True, nogil=True, parallel=True)
    def near(prod, width, out, home, least):  # type: ignore[no-untyped-def]
        rows, cols = prod.shape
        cap = out.shape[1]
        count = np.zeros(rows, dtype=np.int64)
        vals = np.empty((rows, cap), dtype=np.int64)
        for i in numba.prange(rows):
            # one pass: the maximum and the `least` largest products (a small sorted buffer whose
            # smallest entry is checked first, so most products cost one comparison)
            top = np.full(max(least, 1), -9223372036854775807, dtype=np.int64)
            m = top.shape[0]
            for j in range(cols):
                v = prod[i, j]
                if v > top[m - 1]:
                    t = m - 1
                    while t > 0 and top[t - 1] < v:
                        top[t] = top[t - 1]
                        t -= 1
                    top[t] = v
            best = top[0]
            floor = best - width
            if least > 1 and top[m - 1] < floor:  # the `least` best lists are probed whatever their distance
                floor = top[m - 1]
            k = 0
            first = True
            for j in range(cols):
                v = prod[i, j]
                if v < floor:
                    continue
                if first and v == best:
                    home[i] = j
                    first = False
                if k < cap:
                    out[i, k] = j
                    vals[i, k] = v
                    k += 1
                else:  # full: replace the weakest kept list if this one is better
                    low = 0
                    for t in range(1, cap):
                        if vals[i, t] < vals[i, low]:
                            low = t
                    if v > vals[i, low]:
                        out[i, low] = j
                        vals[i, low] = v
            count[i] = k
        return count

    return near


def spherical_kmeans(x: npt.NDArray[np.float32], k: int, iters: int = 8, seed: int = 0, block: int = 16384) -> npt.NDArray[np.float32]:
    """(k, d) unit centroids of the rows of ``x`` (m, d) by spherical k-means (torch matrix
    products; starts from ``k`` distinct random rows, an emptied list restarts at a random row)."""
    import torch

    m, d = x.shape
    k = min(k, m)
    rng = np.random.default_rng(seed)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    c = xt[torch.from_numpy(rng.choice(m, k, replace=False))].clone()
    assign = torch.empty(m, dtype=torch.int64)
    with torch.inference_mode():
        for _ in range(iters):
            for a in range(0, m, block):
                assign[a : a + block] = torch.argmax(xt[a : a + block] @ c.T, dim=1)
            sums = torch.zeros(k, d).index_add_(0, assign, xt)
            counts = torch.bincount(assign, minlength=k)
            emptied = torch.nonzero(counts == 0).ravel()
            if len(emptied):
                sums[emptied] = xt[torch.from_numpy(rng.choice(m, len(emptied), replace=False))]
            c = sums / torch.linalg.vector_norm(sums, dim=1, keepdim=True).clamp_min(1e-12)
    out: npt.NDArray[np.float32] = c.numpy()
    return out


def read_rows_at(vectors: Any, rows: IntArray) -> npt.NDArray[np.float32]:
    """Rows ``rows`` (sorted) of a possibly memory-mapped array, as float32, in chunks."""
    out = np.empty((len(rows), vectors.shape[1]), dtype=np.float32)
    for a in range(0, len(rows), 1 << 16):
        out[a : a + (1 << 16)] = vectors[rows[a : a + (1 << 16)]]
    return out
