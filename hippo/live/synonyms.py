"""Synonymy candidates of a write's new entities against every entity of the index.

A write scores only pairs with a new entity: new x every older entity, plus new x new, so its
cost grows with what it adds. Below ``graph.ann_min_rows`` base entities the search is exact
(one matrix product against a float32 copy of the base vectors, made once per writer); from
there on the base is searched through its IVF-PQ index (the nearest ``IVF_NEIGHBOURS``
candidates, re-scored exactly), the later segments exactly. Cosines of the pairs kept are
recomputed in float64 (:func:`hippo.graph.build.pair_cosine`), so they do not depend on how a
pair was found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hippo.graph.build import SYNONYMY_MARGIN

IntArray = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]

IVF_NEIGHBOURS = 256
"""Base entities an approximate search proposes per new entity (then checked exactly)."""

BF16_MARGIN = 0.01
"""Products of bfloat16 copies screen the pairs: a bfloat16 rounding moves each coordinate by at
most 2^-8 of itself, so the product of two unit vectors moves by at most about 2 * 2^-8 *
sum |q_i x_i| <= 0.008. Pairs within this of the threshold are kept, and exact cosines decide:
the screen loses no pair (about 5x faster than float32 on this CPU, which has AVX512-BF16)."""


class EntitySearch:
    """Every entity vector of an index (base, then later segments), searchable by new ones."""

    def __init__(self, base_vectors: Any, later: F32 | None, ann_path: Path | None, nprobe: int = 16) -> None:
        self.base = base_vectors
        self.n_base = int(base_vectors.shape[0])
        self.dim = int(base_vectors.shape[1]) if base_vectors.ndim == 2 and base_vectors.shape[1] else 0
        self.later: list[F32] = [] if later is None or not len(later) else [np.asarray(later, dtype=np.float32)]
        self.ann_path = ann_path
        self.nprobe = nprobe
        self._base32: Any = None
        self._later_screen: Any = None
        self._ivf: Any = None
        self.last_scored = 0
        """Pairs the last :meth:`candidates` scored (new x older, plus new x new)."""

    @property
    def n(self) -> int:
        """Entities searchable (base and later)."""
        return self.n_base + sum(len(x) for x in self.later)

    def absorb(self, vectors: F32) -> None:
        """Make a committed write's new entity vectors searchable (kept as one matrix)."""
        if len(vectors):
            new = np.asarray(vectors, dtype=np.float32)
            self.later = [np.concatenate([*self.later, new])] if self.later else [new]
            self._later_screen = None
            if not self.dim:
                self.dim = int(vectors.shape[1])

    def rows(self, rows: IntArray) -> npt.NDArray[np.float64]:
        """Vectors of entity ``rows`` (global), float64."""
        out = np.zeros((len(rows), max(self.dim, 1)))
        rows = np.asarray(rows, dtype=np.int64)
        in_base = rows < self.n_base
        if in_base.any():
            order = np.argsort(rows[in_base])
            picked = np.asarray(self.base[rows[in_base][order]], dtype=np.float64)
            sel = np.flatnonzero(in_base)[order]
            out[sel] = picked
        if (~in_base).any():
            later = np.concatenate(self.later) if len(self.later) > 1 else self.later[0]
            out[~in_base] = later[rows[~in_base] - self.n_base]
        return out

    def _base_candidates(self, q: F32, pre: float) -> tuple[IntArray, IntArray]:
        """(query position, base row) of base entities possibly at or above ``pre``."""
        if not self.n_base:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        if self.ann_path is not None:
            if self._ivf is None:
                from hippo.retrieval.vectors import IVFSearch

                self._ivf = IVFSearch(self.ann_path, self.base, np.zeros((1, self.dim), np.float32), self.nprobe, IVF_NEIGHBOURS)
            idx, cos = self._ivf.search(q, min(IVF_NEIGHBOURS, self.n_base))  # exact cosines of the candidates
            r = np.repeat(np.arange(len(q)), idx.shape[1])
            ok = cos.ravel() >= pre
            return r[ok], idx.ravel()[ok].astype(np.int64)
        return _above(self._base_matrix(), q, pre)

    def _base_matrix(self) -> Any:
        """The base vectors as a bfloat16 torch matrix in RAM (float32 numpy without torch),
        made once."""
        if self._base32 is None:
            self._base32 = _screen_matrix(self.base)
        return self._base32

    def candidates(self, new_vectors: F32, first_row: int, threshold: float) -> tuple[IntArray, IntArray, F32]:
        """Every pair ``(i, j, cos)`` (i < j, sorted) with cosine at or above ``threshold`` between
        the new entities (rows ``first_row`` onwards, in order) and any entity, new ones
        included. The new entities are not yet searchable themselves."""
        q = np.ascontiguousarray(new_vectors, dtype=np.float32)
        m = len(q)
        empty = np.zeros(0, np.int64)
        self.last_scored = m * (first_row if self.ann_path is None else first_row - self.n_base + IVF_NEIGHBOURS) \
            + m * (m - 1) // 2
        if not m:
            return empty, empty, np.zeros(0, np.float32)
        pre = threshold - BF16_MARGIN - SYNONYMY_MARGIN
        qr, cr = self._base_candidates(q, pre)
        rows_l, cols_l = [qr], [cr]
        if self.later:
            if self._later_screen is None:
                self._later_screen = _screen_matrix(self.later[0])
            r, c = _above(self._later_screen, q, pre)
            rows_l.append(r)
            cols_l.append(c + self.n_base)
        sims = q @ q.T
        sims[np.tril_indices(m)] = -np.inf
        r, c = np.nonzero(sims >= pre)
        rows_l.append(r.astype(np.int64))
        cols_l.append(c.astype(np.int64) + first_row)
        a = np.concatenate(rows_l) + first_row
        b = np.concatenate(cols_l)
        if not len(a):
            return empty, empty, np.zeros(0, np.float32)
        i, j = np.minimum(a, b), np.maximum(a, b)
        key = np.unique(i * (1 << 32) + j)
        i, j = key >> 32, key & ((1 << 32) - 1)
        vi = self._vectors_with_new(i, q, first_row)
        vj = self._vectors_with_new(j, q, first_row)
        cos = np.einsum("kd,kd->k", vi, vj).astype(np.float32)
        keep = cos >= threshold
        return i[keep], j[keep], cos[keep]

    def _vectors_with_new(self, rows: IntArray, q: F32, first_row: int) -> npt.NDArray[np.float64]:
        out = np.zeros((len(rows), q.shape[1]))
        new = rows >= first_row
        if new.any():
            out[new] = q[rows[new] - first_row]
        if (~new).any():
            out[~new] = self.rows(rows[~new])
        return out


def _screen_matrix(vectors: Any) -> Any:
    """A matrix to screen candidates with: bfloat16 in torch, else float32 numpy."""
    arr = np.array(vectors, dtype=np.float32)  # a copy: torch needs writable memory
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return arr
    return torch.from_numpy(arr).to(torch.bfloat16)


def _above(matrix: Any, q: F32, pre: float) -> tuple[IntArray, IntArray]:
    """(query, row) of every screening product ``q @ matrix.T`` at or above ``pre``."""
    if isinstance(matrix, np.ndarray):
        r, c = np.nonzero(q @ matrix.T >= pre)
        return r.astype(np.int64), c.astype(np.int64)
    import torch

    from hippo.threads import torch_threads_for

    with torch_threads_for(len(q)), torch.inference_mode():
        hit = torch.nonzero((torch.from_numpy(q).to(matrix.dtype) @ matrix.T) >= pre)
    return hit[:, 0].numpy().astype(np.int64), hit[:, 1].numpy().astype(np.int64)
