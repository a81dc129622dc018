"""Nearest-neighbour search over one set of L2-normalised vectors (passages, facts, entities).

Two implementations with one interface:

* :class:`ExactSearch`: every cosine, as one matrix product (torch, or numpy when torch is
  absent). What small and mid-sized indexes use; results equal a full sort.
* :class:`IVFSearch`: a faiss inverted-file index with product-quantised codes proposes
  ``candidates`` rows per query (``nprobe`` lists scanned), whose cosines are then recomputed
  exactly from the stored vectors (a memory map, float16 or float32), so every returned score
  is exact and only the candidate set is approximate. Its recall against exact search is
  measured by ``benchmarks/scale.py``.

Both give ``search(q, k)`` (best first, ties by row index), ``cosines(q, rows)`` (exact) and
``floor(q)``: the smallest cosine of each query over the rows, which HippoRAG 2's min-max
normalisation needs. Exact search computes it; the IVF index estimates it on a fixed
sample of rows (stored with the index), a documented approximation that only rescales the
normalised scores.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from hippo.errors import HippoError
from hippo.threads import SERIAL_UP_TO, torch_threads_for

F64 = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

FLOOR_SAMPLE = 8192
"""Rows an :class:`IVFSearch` samples to estimate each query's lowest cosine."""


class VectorSearch(Protocol):
    n: int

    def search(self, q: npt.NDArray[np.float32], k: int, nprobe: int | None = None, candidates: int | None = None) -> tuple[IntArray, F64]:
        """(B, k') row indices and exact cosines, best first; k' = min(k, n). ``nprobe`` and
        ``candidates`` tune approximate search (ignored by exact search)."""
        ...

    def cosines(self, q: npt.NDArray[np.float32], rows: IntArray) -> F64:
        """Exact cosines of one query (d,) to ``rows``."""
        ...

    def floor(self, q: npt.NDArray[np.float32]) -> F64:
        """(B,) lowest cosine of each query over all rows (exact or estimated)."""
        ...


def _stable_top(idx: IntArray, scores: F64, k: int) -> tuple[IntArray, F64]:
    order = np.lexsort((idx, -scores))[:k]
    return idx[order], scores[order]


def exact_cosines(vectors: Any, q: npt.NDArray[np.float32], rows: IntArray) -> F64:
    """Cosines of ``q`` (d,) to ``vectors[rows]`` in float64 (rows gathered from a memory map,
    read ahead: :class:`RowCosines` without its memory)."""
    return RowCosines(vectors).cosines(q, rows)


COLD_ROW_S = 5e-6
"""A gather slower than this per row has read from disk (from the page cache it takes about
0.6 us per 384-float16 row, gathered and converted; a read from disk tens of microseconds)."""


FAST_STREAK = 64
"""Gathers from the cache in a row after which :class:`RowCosines` stops reading ahead."""

MIN_TIMED_ROWS = 32
"""Gathers of fewer rows do not change :class:`RowCosines`' read-ahead."""


class RowCosines:
    """Exact cosines to rows of a matrix, usually a memory map, that read the rows ahead
    (:func:`ahead`) only while gathers miss the page cache.

    Read-ahead costs one ``madvise`` call per run of pages, about 0.7 us per row here even
    when every page is cached: more than the gather itself (10^6 passages, 400 rows: 0.28 ms
    against 0.24 ms). A gather from disk without it costs far more (one read after another,
    up to 0.1 s for 400 rows), so it is on at first, off only after :data:`FAST_STREAK`
    gathers in a row came from the cache, and on again after any gather that did not. Gathers
    of fewer than :data:`MIN_TIMED_ROWS` rows are too short to judge and change nothing."""

    def __init__(self, vectors: Any) -> None:
        self.vectors = vectors
        self.read_ahead = True
        self.cold_row_s = COLD_ROW_S
        self.fast_streak = 0

    def cosines(self, q: npt.NDArray[np.float32], rows: IntArray) -> F64:
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return np.zeros(0)
        order = np.argsort(rows, kind="stable")  # ascending reads are kinder to a memory map
        ordered = rows[order]
        if self.read_ahead:
            ahead(self.vectors, ordered)
        t = time.perf_counter()
        block = np.asarray(self.vectors[ordered], dtype=np.float64)
        if len(rows) >= MIN_TIMED_ROWS:
            if time.perf_counter() - t > self.cold_row_s * len(rows):
                self.read_ahead, self.fast_streak = True, 0
            else:
                self.fast_streak += 1
                self.read_ahead = self.read_ahead and self.fast_streak < FAST_STREAK
        out = np.empty(len(rows))
        out[order] = block @ np.asarray(q, dtype=np.float64)
        return out


def ahead(vectors: Any, rows: IntArray) -> None:
    """Ask the kernel to read the pages of ``rows`` (sorted) of a memory-mapped array now,
    all at once (``madvise(MADV_WILLNEED)`` per page run), so that a gather that follows waits
    for one round of parallel reads instead of one read per row in turn. A no-op for arrays
    in memory and where ``madvise`` is missing. Pages already cached cost nothing."""
    mm: Any = getattr(vectors, "_mmap", None)
    advise = getattr(mm, "madvise", None)
    if mm is None or advise is None or len(rows) == 0 or not vectors.flags.c_contiguous:
        return
    import mmap

    row_bytes = int(vectors.strides[0])
    base = int(vectors.ctypes.data) - int(np.frombuffer(mm, dtype=np.uint8).ctypes.data)  # row 0 in the mapping
    page = mmap.PAGESIZE
    first = (base + rows * row_bytes) // page
    last = np.minimum((base + (rows + 1) * row_bytes - 1) // page, (len(mm) - 1) // page)
    new_run = np.ones(len(rows), dtype=bool)
    new_run[1:] = first[1:] > last[:-1] + 1  # rows on the same or adjacent pages share one call
    starts = first[new_run]
    ends = np.maximum.reduceat(last, np.flatnonzero(new_run))
    try:
        for a, b in zip(starts.tolist(), ends.tolist()):
            advise(mmap.MADV_WILLNEED, a * page, (b - a + 1) * page)
    except (OSError, ValueError):  # advice only: a refusal changes nothing but speed
        return


def drop_pages(vectors: Any) -> None:
    """Take the pages of a read-only memory-mapped array out of this process's resident set
    (``madvise(MADV_DONTNEED)`` over its whole mapping) once they have been read: they stay in
    the page cache, and a later read maps them again. A pass that gathers a large set in
    chunks calls it after each chunk, so its resident memory stays one chunk, not the file. A
    no-op for arrays in memory, writable mappings (whose changes it could discard) and where
    ``madvise`` is missing."""
    mm: Any = getattr(vectors, "_mmap", None)
    advise = getattr(mm, "madvise", None)
    if mm is None or advise is None or vectors.flags.writeable:
        return
    import mmap

    try:
        advise(mmap.MADV_DONTNEED)
    except (OSError, ValueError):  # advice only
        return


class ExactSearch:
    """Every cosine by one matrix product; float32 copies in RAM when torch is available."""

    def __init__(self, vectors: Any) -> None:
        self.vectors = vectors
        self.n = int(vectors.shape[0])
        self._rows = RowCosines(vectors)
        try:
            import torch
        except ImportError:
            self._t: Any = None
            return
        self._torch = torch
        self._t = torch.from_numpy(np.array(vectors, dtype=np.float32))  # torch cannot wrap read-only maps

    def scores(self, q: npt.NDArray[np.float32]) -> F64:
        """(n, B) cosines for queries (B, d)."""
        q = np.atleast_2d(np.asarray(q, dtype=np.float32))
        if self._t is None:
            return np.asarray(np.asarray(self.vectors, dtype=np.float32) @ q.T, dtype=np.float64)
        with torch_threads_for(q.shape[0]), self._torch.inference_mode():
            out: F64 = (self._t @ self._torch.from_numpy(np.ascontiguousarray(q.T))).double().numpy()
            return out

    def search(self, q: npt.NDArray[np.float32], k: int, nprobe: int | None = None, candidates: int | None = None) -> tuple[IntArray, F64]:
        s = self.scores(q)
        k = min(k, self.n)
        idx = np.zeros((s.shape[1], k), dtype=np.int64)
        val = np.zeros((s.shape[1], k))
        for b in range(s.shape[1]):
            col = s[:, b]
            part = np.argpartition(-col, k - 1)[:k] if k < self.n else np.arange(self.n)
            kth = col[part].min()
            part = np.flatnonzero(col >= kth)  # ties with the k-th row break by index
            idx[b], val[b] = _stable_top(part, col[part], k)
        return idx, val

    def cosines(self, q: npt.NDArray[np.float32], rows: IntArray) -> F64:
        return self._rows.cosines(q, rows)

    def floor(self, q: npt.NDArray[np.float32]) -> F64:
        return np.asarray(self.scores(q).min(axis=0))


SERIAL_BELOW = 32
"""Batches of fewer queries are searched by faiss on one thread: after a parallel search its
OpenMP workers keep spinning for a while, and on 2 cores that made the next query's embedding
(torch) about 2x slower (retrieve p50 72 -> 34 ms at 10^6 passages)."""


class IVFSearch:
    """faiss IVF-PQ candidates re-scored exactly from ``vectors`` (see the module docstring)."""

    def __init__(self, index_path: str | Path, vectors: Any, floor_vectors: Any, nprobe: int = 32, candidates: int = 100) -> None:
        """``floor_vectors`` (s, d): the vectors of the :func:`floor_sample` rows (stored with
        the index by :func:`hippo.live.base.base_members`; gathered from ``vectors`` for older
        indexes). The inverted lists are memory-mapped when the installed faiss has
        ``IO_FLAG_MMAP_IFC`` (1.15 here), so opening reads only the coarse centroids and a
        query pages in the lists it scans."""
        faiss = self._faiss = load_faiss()
        self.index = faiss.read_index(str(index_path), getattr(faiss, "IO_FLAG_MMAP_IFC", 0))
        self.vectors = vectors
        self.n = int(vectors.shape[0])
        self._rows = RowCosines(vectors)
        if self.index.ntotal != self.n:
            raise HippoError(f"{index_path} holds {self.index.ntotal} vectors, the index has {self.n}; rebuild the index")
        self._ivf = faiss.extract_index_ivf(self.index)
        self.nprobe = int(nprobe)
        self.candidates = int(candidates)
        self._sample = np.asarray(floor_vectors, dtype=np.float32)
        self._sample_t: Any = None
        self._lock = threading.Lock()

    def search(self, q: npt.NDArray[np.float32], k: int, nprobe: int | None = None, candidates: int | None = None) -> tuple[IntArray, F64]:
        q = np.ascontiguousarray(np.atleast_2d(q), dtype=np.float32)
        want = max(k, self.candidates if candidates is None else candidates)
        faiss = self._faiss
        with self._lock:  # faiss parallelises one batch itself
            self._ivf.nprobe = self.nprobe if nprobe is None else int(nprobe)
            threads = faiss.omp_get_max_threads()
            if q.shape[0] < SERIAL_BELOW:
                faiss.omp_set_num_threads(1)
            try:
                _, cand = self.index.search(q, min(want, self.n))
            finally:
                faiss.omp_set_num_threads(threads)
        k = min(k, self.n)
        idx = np.zeros((q.shape[0], k), dtype=np.int64)
        val = np.full((q.shape[0], k), -np.inf)
        for b in range(q.shape[0]):
            rows = np.unique(cand[b][cand[b] >= 0])
            top, cos = _stable_top(rows, self._rows.cosines(q[b], rows), k)
            idx[b, : len(top)], val[b, : len(top)] = top, cos
        return idx, val

    def cosines(self, q: npt.NDArray[np.float32], rows: IntArray) -> F64:
        return self._rows.cosines(q, rows)

    def floor(self, q: npt.NDArray[np.float32]) -> F64:
        q = np.atleast_2d(np.asarray(q, dtype=np.float32))
        if q.shape[0] <= SERIAL_UP_TO:
            # A few queries on torch's one calling thread: through numpy the product ran on
            # OpenBLAS's threads, whose spinning beside the query encoder and torch made this
            # ~4 ms a query at 10^6 passages (profile) against ~0.1 ms alone.
            try:
                import torch
            except ImportError:
                pass
            else:
                if self._sample_t is None:
                    self._sample_t = torch.from_numpy(np.ascontiguousarray(self._sample.T))
                with torch_threads_for(q.shape[0]), torch.inference_mode():
                    low = (torch.from_numpy(q) @ self._sample_t).min(dim=1).values
                return np.asarray(low.numpy(), dtype=np.float64)
        return np.asarray((self._sample @ q.T).min(axis=0), dtype=np.float64)


class SegmentedSearch:
    """A base search (usually :class:`IVFSearch`) plus the later rows of a living index,
    searched exactly, with dead rows (tombstoned passages, facts no live passage states) never
    returned. Row numbers are global: the base's, then the later ones'."""

    def __init__(self, base: VectorSearch, later: Any, alive: npt.NDArray[np.bool_] | None = None) -> None:
        self.base = base
        self.later = None if later is None or not len(later) else np.asarray(later, dtype=np.float32)
        self.n_base = int(base.n)
        self.n = self.n_base + (0 if self.later is None else len(self.later))
        self.alive = alive

    def search(self, q: npt.NDArray[np.float32], k: int, nprobe: int | None = None, candidates: int | None = None) -> tuple[IntArray, F64]:
        q = np.ascontiguousarray(np.atleast_2d(q), dtype=np.float32)
        dead_base = 0 if self.alive is None else int((~self.alive[: self.n_base]).sum())
        bi, bv = self.base.search(q, k + min(dead_base, 4 * k), nprobe, candidates)
        k = min(k, self.n)
        idx = np.full((q.shape[0], k), -1, dtype=np.int64)
        val = np.full((q.shape[0], k), -np.inf)
        later = None if self.later is None else np.asarray(self.later @ q.T, dtype=np.float64)
        for b in range(q.shape[0]):
            rows, cos = bi[b], bv[b]
            if later is not None:
                rows = np.concatenate([rows, np.arange(self.n_base, self.n)])
                cos = np.concatenate([cos, later[:, b]])
            ok = np.isfinite(cos) & (rows >= 0)
            if self.alive is not None:
                ok &= self.alive[np.maximum(rows, 0)]
            top, c = _stable_top(rows[ok], cos[ok], k)
            idx[b, : len(top)], val[b, : len(top)] = top, c
        return idx, val

    def cosines(self, q: npt.NDArray[np.float32], rows: IntArray) -> F64:
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros(len(rows))
        in_base = rows < self.n_base
        if in_base.any():
            out[in_base] = self.base.cosines(q, rows[in_base])
        if (~in_base).any() and self.later is not None:
            out[~in_base] = self.later[rows[~in_base] - self.n_base] @ np.asarray(q, dtype=np.float32).ravel()
        return out

    def floor(self, q: npt.NDArray[np.float32]) -> F64:
        lo = self.base.floor(q)
        if self.later is not None:
            lo = np.minimum(lo, (self.later @ np.atleast_2d(np.asarray(q, dtype=np.float32)).T).min(axis=0))
        return np.asarray(lo, dtype=np.float64)


def load_faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise HippoError("this index uses approximate vector search, which needs faiss: pip install 'hippo[scale]'") from exc
    return faiss


def ivf_lists(n: int) -> int:
    """Inverted lists for ``n`` rows: about sqrt(n), a power of two, between 16 and 1024.

    Few lists keep the assignment of every row (one matrix product with the centroids, BLAS
    speed) cheap at 10^7 rows; a query then scans ``nprobe / lists`` of the rows as PQ codes
    (8 of 1,024 lists: 0.8%, about 1 ms for 9 million facts)."""
    return int(min(1024, max(16, 2 ** round(np.log2(np.sqrt(max(n, 1)))))))


def read_rows(vectors: Any, start: int, stop: int) -> npt.NDArray[np.float32]:
    """Rows ``start:stop`` as float32. From a ``.npy`` memory map they are read with a plain file
    read, so the pages never enter this process's mapping: a build that streams 10^7 vectors
    keeps its resident memory to one chunk."""
    fname, offset = getattr(vectors, "filename", None), getattr(vectors, "offset", None)
    if fname is None or offset is None or not vectors.flags.c_contiguous:
        return np.ascontiguousarray(vectors[start:stop], dtype=np.float32)
    stop = min(stop, vectors.shape[0])
    width = int(np.prod(vectors.shape[1:]))
    rows = np.fromfile(fname, dtype=vectors.dtype, count=max(0, stop - start) * width,
                       offset=int(offset) + start * width * vectors.dtype.itemsize)
    return np.ascontiguousarray(rows.reshape(-1, *vectors.shape[1:]), dtype=np.float32)


def ivf_index(d: int, n: int, codes: str) -> Any:
    """An untrained faiss inverted-file index (inner product) for ``n`` rows of dimension ``d``
    storing ``codes`` (``PQ48``, ``Flat``, ``SQfp16``...)."""
    faiss = load_faiss()
    index = faiss.index_factory(d, f"IVF{ivf_lists(n)},{codes}", faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.extract_index_ivf(index)
    ivf.cp.min_points_per_centroid = 1  # small sets: fewer points per list is fine
    ivf.cp.niter = 8
    return index


def train_rows(n: int, nlist: int, seed: int, per_list: int = 48, most: int = 65_536) -> IntArray:
    """Seeded sample of rows to train ``nlist`` lists on (sorted)."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(n, max(per_list * nlist, 1024), most), replace=False)).astype(np.int64)


def pq_subvectors(d: int) -> int:
    """Sub-quantisers for dimension ``d``: one per 8 dimensions (48 bytes a vector at 384), at
    least 1, dividing ``d``."""
    m = max(1, d // 8)
    while d % m:
        m -= 1
    return m


def build_ivf(vectors: Any, path: str | Path, pq_m: int | None = None, seed: int = 0, chunk: int = 262144) -> dict[str, Any]:
    """Train and fill an IVF-PQ index (inner product) over ``vectors`` (n, d), written to ``path``.

    Trained on a seeded sample of rows; rows are added in chunks so a float16 memory map is
    never converted whole. Returns what was built (lists, code size, training rows)."""
    faiss = load_faiss()
    n, d = vectors.shape
    pq_m = pq_subvectors(d) if pq_m is None else pq_m
    if d % pq_m:
        raise ValueError(f"pq_m={pq_m} must divide the dimension {d}")
    index = ivf_index(d, n, f"PQ{pq_m}")
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    ivf.pq.cp.min_points_per_centroid = 1
    ivf.pq.cp.niter = 10
    train = train_rows(n, ivf.nlist, seed)
    index.train(np.ascontiguousarray(vectors[train], dtype=np.float32))
    for start in range(0, n, chunk):
        index.add(read_rows(vectors, start, start + chunk))
    faiss.write_index(index, str(path))
    return {"rows": int(n), "lists": int(ivf.nlist), "pq_m": pq_m, "train_rows": len(train)}


def floor_rows(vectors: Any) -> Any:
    """The vectors of the :func:`floor_sample` rows of ``vectors``, in its dtype (s, d)."""
    return np.asarray(vectors[floor_sample(vectors.shape[0])])


def floor_sample(n: int, seed: int = 0) -> IntArray:
    """The rows an :class:`IVFSearch` estimates the lowest cosine on (fixed per index, sorted).
    Their vectors are stored next to the IVF index (``name.floor.npy``): gathered from a cold
    10^6-row memory map at open time, these 8,192 scattered reads took 1.4 s a set."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(n, FLOOR_SAMPLE), replace=False)).astype(np.int64)
