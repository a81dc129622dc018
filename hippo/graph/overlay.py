"""A graph given as a base CSR plus a small symmetric correction (pure, no IO).

A living index keeps its base segment's adjacency as CSR arrays over the base's nodes
``[P0 passages | E0 entities]`` and lists, per later segment, the new weight of the entries it
changed. A reader numbers nodes ``[P passages | E entities]`` over the whole index (passages
first, as every ranking expects), so a base entity node ``P0 + e`` is node ``P + e`` here: the
base's column indices are shifted on the fly, never rewritten. The correction ``delta`` is the
difference between the live weight and the base weight of every changed entry (a removed edge
is ``-w``, exactly), so ``A = relabel(base) + delta``.

:class:`GraphParts` gives the exact weighted degrees (touched rows summed after merging, so a
node whose edges all went has degree 0, not a rounding residue) and, for solvers that need one
matrix, the merged CSR (:meth:`GraphParts.merged`, built once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

F64 = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass
class GraphParts:
    """``A = relabel(base) + delta`` over ``n_passages + n_entities`` nodes (passages first).

    ``base`` is the base segment's CSR over its own ``base_passages + base_entities`` nodes
    (arrays may be memory maps), ``base_degree`` its row sums, ``base_colnorm`` (optional)
    ``w(u, v) / deg(v)`` per entry; ``delta`` is None or an (n, n) symmetric CSR in reader
    node numbers.
    """

    n_passages: int
    n_entities: int
    base: sp.csr_matrix
    base_passages: int
    base_degree: Any
    base_colnorm: Any = None
    delta: sp.csr_matrix | None = None
    _degree: F64 | None = field(default=None, repr=False)
    _merged: sp.csr_matrix | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        """Nodes of the whole graph."""
        return self.n_passages + self.n_entities

    @property
    def shift(self) -> int:
        """How far base entity nodes move in reader numbers (passages added after the base)."""
        return self.n_passages - self.base_passages

    @property
    def plain(self) -> bool:
        """Whether the graph is the base alone, numbered as the base numbers it."""
        return self.delta is None and self.shift == 0 and self.base.shape[0] == self.n

    def relabel(self, nodes: npt.NDArray[Any]) -> IntArray:
        """Reader numbers of base node numbers."""
        out = np.asarray(nodes, dtype=np.int64)
        return np.where(out >= self.base_passages, out + self.shift, out)

    def base_rows(self, nodes: IntArray) -> IntArray:
        """The base row of each reader node, or -1 for nodes the base does not have."""
        nodes = np.asarray(nodes, dtype=np.int64)
        p0, e0 = self.base_passages, self.base.shape[0] - self.base_passages
        out = np.full(len(nodes), -1, dtype=np.int64)
        is_p = nodes < p0
        out[is_p] = nodes[is_p]
        ent = nodes - self.n_passages
        is_e = (ent >= 0) & (ent < e0)
        out[is_e] = ent[is_e] + p0
        return out

    def rows(self, nodes: IntArray) -> tuple[IntArray, IntArray, F64]:
        """Every entry of the given rows as (row position, column, weight) after merging the base
        and the correction (entries that cancel are dropped)."""
        nodes = np.asarray(nodes, dtype=np.int64)
        brow = self.base_rows(nodes)
        has = brow >= 0
        starts = np.asarray(self.base.indptr)[brow[has]].astype(np.int64)
        lens = np.asarray(self.base.indptr)[brow[has] + 1].astype(np.int64) - starts
        first = np.cumsum(lens) - lens
        pos = np.arange(int(lens.sum()), dtype=np.int64) + np.repeat(starts - first, lens)
        owner = np.repeat(np.flatnonzero(has), lens)
        cols = self.relabel(np.asarray(self.base.indices)[pos])
        vals = np.asarray(self.base.data, dtype=np.float64)[pos]
        if self.delta is not None:
            d = self.delta
            dstart = d.indptr[nodes].astype(np.int64)
            dlen = d.indptr[nodes + 1].astype(np.int64) - dstart
            dfirst = np.cumsum(dlen) - dlen
            dpos = np.arange(int(dlen.sum()), dtype=np.int64) + np.repeat(dstart - dfirst, dlen)
            owner = np.concatenate([owner, np.repeat(np.arange(len(nodes)), dlen)])
            cols = np.concatenate([cols, d.indices[dpos].astype(np.int64)])
            vals = np.concatenate([vals, d.data[dpos]])
        if not len(owner):
            return owner, cols, vals
        m = sp.csr_matrix((vals, (owner, cols)), shape=(len(nodes), self.n))
        m.sum_duplicates()
        m.eliminate_zeros()
        coo = m.tocoo()
        return coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data

    def degree(self) -> F64:
        """(n,) weighted degree of every node (exact for rows the correction touches)."""
        if self._degree is None:
            deg = np.zeros(self.n)
            base_deg = np.asarray(self.base_degree, dtype=np.float64)
            p0 = self.base_passages
            deg[:p0] = base_deg[:p0]
            deg[self.n_passages : self.n_passages + len(base_deg) - p0] = base_deg[p0:]
            if self.delta is not None and self.delta.nnz:
                touched = np.flatnonzero(np.diff(self.delta.indptr))
                owner, _, vals = self.rows(touched)
                deg[touched] = np.bincount(owner, weights=vals, minlength=len(touched))
            self._degree = deg
        return self._degree

    def merged(self) -> sp.csr_matrix:
        """The whole adjacency as one (n, n) float64 CSR (built on first use)."""
        if self._merged is None:
            if self.plain:
                m = self.base if self.base.dtype == np.float64 else sp.csr_matrix(self.base, dtype=np.float64)
            else:
                b = self.base.tocoo()
                m = sp.csr_matrix(
                    (np.asarray(b.data, dtype=np.float64), (self.relabel(b.row), self.relabel(b.col))), shape=(self.n, self.n)
                )
                if self.delta is not None:
                    m = m + self.delta
                m.sum_duplicates()
                m.eliminate_zeros()
                m.sort_indices()
            self._merged = m
        return self._merged


def correction(
    n_passages: int,
    n_entities: int,
    base: sp.csr_matrix,
    base_passages: int,
    rows: IntArray,
    cols: IntArray,
    weights: F64,
) -> sp.csr_matrix | None:
    """The symmetric correction of :class:`GraphParts` from the live weight of changed entries.

    ``rows``/``cols`` (reader node numbers, each unordered entry once) and ``weights`` are the
    live weights of every entry some later segment set (the last value per entry); the
    correction is each one minus the base's weight of that entry. None when nothing changed."""
    if not len(rows):
        return None
    n = n_passages + n_entities
    parts = GraphParts(n_passages, n_entities, base, base_passages, np.zeros(base.shape[0]))
    brow, bcol = parts.base_rows(rows), parts.base_rows(cols)
    old = np.zeros(len(rows))
    both = (brow >= 0) & (bcol >= 0)
    if both.any():
        old[both] = _lookup(base, brow[both], bcol[both])
    diff = np.asarray(weights, dtype=np.float64) - old
    keep = diff != 0
    r, c, d = rows[keep], cols[keep], diff[keep]
    if not len(r):
        return None
    m = sp.csr_matrix((np.concatenate([d, d]), (np.concatenate([r, c]), np.concatenate([c, r]))), shape=(n, n))
    m.sum_duplicates()
    m.sort_indices()
    return m


def _lookup(m: sp.csr_matrix, rows: IntArray, cols: IntArray) -> F64:
    """``m[rows[t], cols[t]]`` for each t (0 where absent), by bisection in each sorted row."""
    indptr, indices, data = m.indptr, m.indices, m.data
    out = np.zeros(len(rows))
    for t, (r, c) in enumerate(zip(rows.tolist(), cols.tolist())):
        lo, hi = int(indptr[r]), int(indptr[r + 1])
        pos = lo + int(np.searchsorted(indices[lo:hi], c))
        if pos < hi and int(indices[pos]) == c:
            out[t] = float(data[pos])
    return out
