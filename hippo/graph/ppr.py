"""Personalized PageRank on a symmetric weighted CSR adjacency (pure, no IO).

Semantics are those of igraph's ``personalized_pagerank(directed=False, weights=...)``
(prpack), which HippoRAG 2 calls: with ``v = reset / sum(reset)``,

    pi = (1 - d) * v + d * (P^T pi + (mass on dangling nodes) * v)

where ``P`` is the row-normalised weighted adjacency and dangling (isolated) nodes
teleport according to ``v``. Solved by power iteration until the L1 change < ``tol``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

F64 = npt.NDArray[np.float64]


class PPRSolver:
    """Precomputes what every PageRank call on one graph shares (CSR, inverse degrees)."""

    def __init__(self, adjacency: sp.csr_matrix) -> None:
        if adjacency.shape[0] != adjacency.shape[1]:
            raise ValueError("adjacency must be square")
        self.adj = sp.csr_matrix(adjacency, dtype=np.float64)
        deg = np.asarray(self.adj.sum(axis=1)).ravel()
        self.dangling = deg <= 0
        self.inv_deg = np.where(self.dangling, 0.0, 1.0 / np.where(self.dangling, 1.0, deg))
        self.n = self.adj.shape[0]

    def run(
        self, reset: npt.ArrayLike, damping: float = 0.5, tol: float = 1e-7, max_iter: int = 100
    ) -> F64:
        """PageRank vector(s) for ``reset``: shape (n,) or (n, B) for B resets at once.

        Each column is normalised to sum to 1; negative or NaN entries count as 0.
        Raises ``ValueError`` when a reset vector has no positive mass.
        """
        v = np.nan_to_num(np.asarray(reset, dtype=np.float64), nan=0.0)
        v = np.where(v > 0, v, 0.0)
        squeeze = v.ndim == 1
        if squeeze:
            v = v[:, None]
        if v.shape[0] != self.n:
            raise ValueError(f"reset has {v.shape[0]} entries, graph has {self.n} nodes")
        total = v.sum(axis=0)
        if np.any(total <= 0):
            raise ValueError("reset vector has no positive mass")
        v = v / total
        pi = v.copy()
        inv_deg = self.inv_deg[:, None]
        dangling = self.dangling
        for _ in range(max_iter):
            spread = self.adj @ (pi * inv_deg)
            lost = pi[dangling].sum(axis=0) if dangling.any() else 0.0
            new = (1.0 - damping) * v + damping * (spread + lost * v)
            delta = np.abs(new - pi).sum(axis=0).max()
            pi = new
            if delta < tol:
                break
        return pi[:, 0] if squeeze else pi


def personalized_pagerank(
    adjacency: sp.csr_matrix, reset: npt.ArrayLike, damping: float = 0.5, tol: float = 1e-7, max_iter: int = 100
) -> F64:
    """One-shot PageRank; build a :class:`PPRSolver` once to amortise setup over queries."""
    return PPRSolver(adjacency).run(reset, damping, tol, max_iter)
