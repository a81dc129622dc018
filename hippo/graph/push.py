"""Local Personalized PageRank by forward push (Andersen, Chung and Lang 2006; pure, no IO).

It solves the same system as :class:`hippo.graph.ppr.PPRSolver`: ``pi`` is proportional to
``x`` with ``(I - d A D^-1) x = v`` on the symmetric weighted adjacency ``A`` with weighted
degrees ``D`` (an isolated node keeps its own reset mass, as prpack's dangling rule gives).
Instead of touching every node on every iteration, push keeps an estimate ``p`` and a
residual ``r`` (starting at ``v``) with the invariant ``x = p + X(r)``, and repeatedly moves
the residual of every node ``u`` with ``r(u) >= eps * deg(u)`` into ``p(u)`` while spreading
``d * r(u)`` over ``u``'s edges in proportion to their weights.

**Error bound.** When no node qualifies, ``r(u) < eps * deg(u)`` everywhere, and for every node
``v``::

    0 <= x(v) - p(v) < eps * deg(v) / (1 - d)

(``D^-1 X(r) = sum_k d^k P^k D^-1 r`` with the row-stochastic ``P = D^-1 A``, whose entries
are at most ``max_u r(u)/deg(u)``). With ``v`` summing to 1 the error is relative to the whole
mass, and passages, whose degrees are small, get the tightest bound.

**Cost.** Proportional to the edges of the nodes pushed, not to the graph: at most
``1 / ((1 - d) eps)`` mass units, independent of the number of nodes. With numba installed
(``pip install 'hippo[scale]'``) a compiled first-in-first-out queue does the pushes (about
70 ns per edge on a 6-million-node graph, where most accesses miss the cache); without it,
every node that qualifies in a round is pushed at once with vectorised CSR gathers (a few dozen
numpy calls per round, about ``log(1/eps) / log(1/d)`` rounds, 3-4x slower per edge). Both meet the same bound; their estimates differ within it.

**Certified top k.** The same bounds give every passage an interval: its (refined) estimate
below, plus its error bound above. When the smallest lower bound among the ``k`` best is at
least every other passage's upper bound, those ``k`` are provably the exact top ``k`` (as a
set). :meth:`PushSolver.run` with ``certify=k`` starts at a coarse ``eps``, checks, and only if
the proof fails lowers ``eps`` (by 3) and pushes on from the residuals it has (nothing is
redone), down to a floor. Most queries are proved at a coarse ``eps``; near-ties at the k-th
place go to the floor. The residual is stored divided by the degree, so the threshold is the
same ``eps`` for every node and each edge costs one random access.

A solver reuses its work arrays (clearing only what a query touched), so concurrent calls of
:meth:`PushSolver.run` take turns (a lock); a thread that wants its own pace makes its own solver.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from hippo.compiled import numba_kernel
from hippo.graph.overlay import GraphParts

F64 = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


REFINE_TOP = 256
"""Estimates refined after a push (see :meth:`PushSolver.run`)."""


class PushSolver:
    """Forward push over one graph: borrows the CSR arrays (memory-mapped arrays are fine), and
    ``colnorm`` when given (:func:`column_normalised`, stored with an index).

    Given :class:`~hippo.graph.overlay.GraphParts` with a correction (a living index with
    segments after its base), the compiled kernel walks the base rows, shifting entity
    columns, and the correction's rows, and reads ``1 / deg(v)`` per edge instead of the
    stored ``colnorm`` (whose degrees the correction may have changed)."""

    def __init__(self, adjacency: sp.csr_matrix | GraphParts, degree: npt.ArrayLike | None = None, colnorm: Any = None) -> None:
        if isinstance(adjacency, GraphParts):
            parts = adjacency
        else:
            if adjacency.shape[0] != adjacency.shape[1]:
                raise ValueError("adjacency must be square")
            if degree is None:
                degree = np.asarray(adjacency.sum(axis=1)).ravel()
            n0 = int(adjacency.shape[0])
            parts = GraphParts(n0, 0, adjacency, n0, np.asarray(degree, dtype=np.float64), colnorm)
        self.parts = parts
        self.n = parts.n
        self.plain = parts.plain
        base = parts.base
        self.indptr = base.indptr
        self.indices = base.indices
        self.data = base.data
        self.degree = parts.degree() if not self.plain else np.asarray(parts.base_degree, dtype=np.float64)
        if self.degree.shape != (self.n,):
            raise ValueError(f"degree has shape {self.degree.shape}, graph has {self.n} nodes")
        self._inv_deg = np.where(self.degree > 0, 1.0 / np.where(self.degree > 0, self.degree, 1.0), 0.0) if not self.plain else None
        delta = parts.delta if parts.delta is not None else sp.csr_matrix((self.n, self.n))
        self._delta = (delta.indptr.astype(np.int64), delta.indices.astype(np.int64), np.asarray(delta.data, dtype=np.float64))
        self._p = np.zeros(self.n)
        self._q = np.zeros(self.n)  # residual / degree: one threshold, eps, for every node
        self._stamp = np.zeros(self.n, dtype=np.int64)  # scratch for de-duplication, never cleared
        colnorm = parts.base_colnorm
        self._colnorm: Any = colnorm  # w(u, v) / deg(v) per adjacency entry (column_normalised), made on first use
        if colnorm is not None and colnorm.shape != self.indices.shape:
            raise ValueError(f"colnorm has shape {colnorm.shape}, the graph has {self.indices.shape[0]} adjacency entries")
        self._top_degree: dict[int, float] = {}
        self._lock = threading.Lock()  # one run at a time: the work arrays are shared
        self._kernel = _compiled_kernel() if self.plain else _compiled_overlay_kernel()
        # a correction's negative entries can queue a node twice (its residual crosses eps, drops
        # below and crosses again before it is pushed): room for that, in pages touched only if used
        self._queue = np.zeros(max(self.n, 1) * (1 if self.plain else 2), dtype=np.int64)
        self._touched = np.zeros(max(self.n, 1), dtype=np.int64)
        self._count = 0
        self.last_pushes = 0
        """Node pushes of the last :meth:`run` (for benchmarks)."""
        self.last_edges = 0
        """Edges scanned by the last :meth:`run`."""
        self.last_eps = 0.0
        """The threshold the last :meth:`run` stopped at."""
        self.last_certified: bool | None = None
        """Whether the last :meth:`run` with ``certify`` proved its top passages (None without)."""

    def run(
        self,
        nodes: npt.ArrayLike,
        weights: npt.ArrayLike,
        damping: float = 0.5,
        eps: float = 1e-6,
        refine_below: int = 0,
        certify: int = 0,
        eps_start: float | None = None,
    ) -> tuple[IntArray, F64]:
        """PageRank of the reset vector ``weights`` on ``nodes`` (normalised to sum 1).

        Returns ``(touched, score)``: every node with a non-zero estimate, ascending, and its
        estimate of ``x`` (see the module docstring; ``x`` sums to ``1 / (1 - d)`` on a graph
        without isolated nodes, so divide by ``score.sum()`` for a distribution). Nodes not
        listed have estimate 0, and every estimate is below the exact value by less than
        ``eps * deg / (1 - d)``. Raises ``ValueError`` when the reset has no positive mass.

        ``refine_below``: the :data:`REFINE_TOP` best estimates among nodes with a smaller index
        (the passages) also get the first two terms of what the residuals still owe them,
        ``r(v) + d * sum_u r(u) w(u, v) / deg(u)`` (one look at their own edges): still lower
        bounds, now within ``eps * deg * d^2 / (1 - d)``, 4x tighter at d = 0.5.

        ``certify`` (k > 0, with ``refine_below``): push first to ``eps_start`` (default
        ``27 * eps``), and after each stage check whether the ``k`` best refined estimates among
        the passages are provably the exact top ``k``: the smallest of their lower bounds is at
        least every other passage's upper bound (estimate plus the error bound above). If not,
        divide the threshold by 3 and push on from where the last stage stopped (no work is
        redone), down to ``eps``. :attr:`last_certified` says how it ended; most queries stop
        well above ``eps``.
        """
        with self._lock:
            return self._run(nodes, weights, damping, eps, refine_below, certify, eps_start)

    def _run(self, nodes: npt.ArrayLike, weights: npt.ArrayLike, damping: float, eps: float, refine_below: int,
             certify: int, eps_start: float | None) -> tuple[IntArray, F64]:
        if not 0.0 <= damping < 1.0:
            raise ValueError(f"damping must be in [0, 1), not {damping}")
        if eps <= 0:
            raise ValueError(f"eps must be > 0, not {eps}")
        if certify and refine_below <= 0:
            raise ValueError("certify needs refine_below (the passages whose top is certified)")
        seeds = np.asarray(nodes, dtype=np.int64).ravel()
        w = np.nan_to_num(np.asarray(weights, dtype=np.float64).ravel(), nan=0.0)
        if seeds.shape != w.shape:
            raise ValueError(f"{len(seeds)} nodes but {len(w)} weights")
        keep = w > 0
        seeds, w = seeds[keep], w[keep]
        if len(seeds) and (seeds.min() < 0 or seeds.max() >= self.n):
            raise ValueError(f"reset node out of range 0..{self.n - 1}")
        total = w.sum()
        if total <= 0:
            raise ValueError("reset vector has no positive mass")
        if self._colnorm is None and (self.plain or self._kernel is None):
            self._use_merged()
        self._count = 0
        self.last_pushes = self.last_edges = 0
        self.last_certified = None
        level = eps if not certify else max(eps, eps_start if eps_start is not None else 27 * eps)
        self._push(seeds, w / total, damping, level)
        best: tuple[IntArray, F64] | None = None
        while certify:
            best, ok = self._certify(certify, damping, level, refine_below)
            self.last_certified = ok
            if ok or level <= eps:
                break
            level = max(eps, level / 3)
            self._push(seeds[:0], w[:0], damping, level)
        self.last_eps = level
        return self._finish(damping, refine_below, best)

    def _use_merged(self) -> None:
        """The numpy rounds (or a plain graph) walk one CSR with stored ``colnorm``: the merged
        adjacency when the graph has a correction."""
        if not self.plain:
            m = self.parts.merged()
            self.indptr, self.indices, self.data = m.indptr, m.indices, m.data
        self._colnorm = column_normalised(self.indices, self.data, self.degree)

    def _push(self, seeds: IntArray, w: F64, damping: float, eps: float) -> None:
        """Add ``w`` at ``seeds`` to the residuals, then push every node at or above ``eps``."""
        if self._kernel is not None and not self.plain:
            count, pushes, edges = self._kernel(
                self.indptr, self.indices, self.data, self.parts.base_passages, self.parts.shift,
                self.parts.n_passages, *self._delta, self._inv_deg, self.degree, seeds, w, damping, eps,
                self._p, self._q, self._queue, self._touched, self._count,
            )
        elif self._kernel is not None:
            count, pushes, edges = self._kernel(
                self.indptr, self.indices, self._colnorm, self.degree, seeds, w, damping, eps,
                self._p, self._q, self._queue, self._touched, self._count,
            )
        else:
            count, pushes, edges = self._push_rounds(seeds, w, damping, eps)
        self._count = int(count)
        self.last_pushes += int(pushes)
        self.last_edges += int(edges)

    def _push_rounds(self, seeds: IntArray, w: F64, damping: float, eps: float) -> tuple[int, int, int]:
        """The numpy push: every node at or above ``eps`` in a round is pushed at once."""
        p, q, deg, colnorm = self._p, self._q, self.degree, self._colnorm
        assert colnorm is not None
        indptr, indices = self.indptr, self.indices
        touched = [self._touched[: self._count]]
        if len(seeds):
            isolated = deg[seeds] <= 0
            np.add.at(p, seeds[isolated], w[isolated])  # an isolated node keeps its own reset mass
            np.add.at(q, seeds[~isolated], w[~isolated] / deg[seeds[~isolated]])
            touched.append(seeds)
        cand = self._distinct(np.concatenate(touched))
        pushes = edges = 0
        while len(cand):
            active = cand[q[cand] >= eps]
            if not len(active):
                break
            mass = q[active]
            q[active] = 0.0
            p[active] += mass * deg[active]
            pushes += len(active)
            starts = indptr[active].astype(np.int64)
            lens = indptr[active + 1].astype(np.int64) - starts
            m = int(lens.sum())
            if m == 0:
                break
            edges += m
            # Positions of every edge of every active node, concatenated.
            first = np.cumsum(lens) - lens
            pos = np.arange(m, dtype=np.int64) + np.repeat(starts - first, lens)
            nbr = indices[pos]
            np.add.at(q, nbr, colnorm[pos] * np.repeat(damping * mass, lens))
            touched.append(nbr)
            hot = nbr[q[nbr] >= eps]
            cand = self._distinct(hot)
        every = self._distinct(np.concatenate(touched))
        every = every[(p[every] > 0) | (q[every] > 0)]
        self._touched[: len(every)] = every
        return len(every), pushes, edges

    def _refined(self, damping: float, refine_below: int) -> tuple[IntArray, F64, IntArray, F64]:
        """Passages with an estimate and their estimates, then the :data:`REFINE_TOP` best of
        them (positions into the first two) and their refined estimates."""
        every = self._touched[: self._count]
        rows = every[every < refine_below]
        rows = rows[self._p[rows] > 0]
        est = self._p[rows]
        best = np.arange(len(rows))
        if len(best) > REFINE_TOP:  # only the best estimates can change the top of the ranking
            best = np.argpartition(-est, REFINE_TOP - 1)[:REFINE_TOP]
        return rows, est, best, est[best] + self._owed(rows[best], damping)

    def _certify(self, k: int, damping: float, eps: float, refine_below: int) -> tuple[tuple[IntArray, F64], bool]:
        """The refined passages and estimates, and whether their ``k`` best are the exact top ``k``
        (see :meth:`run`)."""
        rows, est, best, low = self._refined(damping, refine_below)
        if refine_below not in self._top_degree:
            self._top_degree[refine_below] = float(self.degree[:refine_below].max(initial=0.0))
        rest = np.ones(len(rows), dtype=bool)
        rest[best] = False
        # a passage not refined (or never reached) is below its estimate plus eps deg / (1 - d)
        ceiling = (est[rest].max() if rest.any() else 0.0) + eps * self._top_degree[refine_below] / (1.0 - damping)
        kk = min(k, len(best))
        order = np.argsort(-low, kind="stable")
        top, others = order[:kk], order[kk:]
        if len(others):  # a refined passage is below its refined estimate plus eps deg d^2 / (1 - d)
            ceiling = max(ceiling, float((low[others] + eps * self.degree[rows[best[others]]] * damping**2 / (1.0 - damping)).max()))
        ok = kk > 0 and float(low[top].min()) >= ceiling
        return (rows[best], low), ok

    def _finish(self, damping: float, refine_below: int, refined: tuple[IntArray, F64] | None) -> tuple[IntArray, F64]:
        """Estimates of the touched nodes (refined below ``refine_below``), then clear the work arrays."""
        p, q = self._p, self._q
        every = self._touched[: self._count]
        nz = np.sort(every[p[every] > 0])
        score = p[nz].copy()
        if refine_below > 0:
            if refined is None:
                rows, _, best, low = self._refined(damping, refine_below)
                refined = (rows[best], low)
            score[np.searchsorted(nz, refined[0])] = refined[1]
        p[every] = 0.0
        q[every] = 0.0
        self._count = 0
        return nz, score

    def _owed(self, nodes: IntArray, damping: float) -> F64:
        """``r(v) + d * sum_u r(u) w(u, v) / deg(u)`` for each node (vectorised over its edges)."""
        if not self.plain and self.indptr is self.parts.base.indptr:
            owner, cols, vals = self.parts.rows(nodes)
            pulled: F64 = self._q[nodes] * self.degree[nodes] + damping * np.bincount(
                owner, weights=self._q[cols] * vals, minlength=len(nodes))
            return pulled
        starts = self.indptr[nodes].astype(np.int64)
        lens = self.indptr[nodes + 1].astype(np.int64) - starts
        m = int(lens.sum())
        first = np.cumsum(lens) - lens
        pos = np.arange(m, dtype=np.int64) + np.repeat(starts - first, lens)
        pull = self._q[self.indices[pos]] * self.data[pos]  # r(u) / deg(u) = q(u)
        owner = np.repeat(np.arange(len(nodes)), lens)
        out: F64 = self._q[nodes] * self.degree[nodes] + damping * np.bincount(owner, weights=pull, minlength=len(nodes))
        return out

    def _distinct(self, nodes: IntArray) -> IntArray:
        """``nodes`` without repeats, in linear time: each node's stamp ends at the position of
        its last occurrence, and only that occurrence is kept (``np.unique`` sorts or hashes)."""
        pos = np.arange(len(nodes), dtype=np.int64)
        self._stamp[nodes] = pos
        out: IntArray = nodes[self._stamp[nodes] == pos]
        return out


def _compiled_kernel() -> Any:
    """The numba push kernel (compiled once per process, cached on disk), or None without numba."""
    return numba_kernel("push", _make_push)


def _make_push(numba: Any) -> Any:
    @numba.njit(cache=True, nogil=True)
    def kernel(indptr, indices, colnorm, deg, seeds, w, damping, eps, p, q, queue, touched, count):  # type: ignore[no-untyped-def]
        # q is the residual divided by the degree, so the threshold is eps for every node and the
        # weight w(u, v) / deg(v) is read in edge order: one random access per edge. A node is
        # queued when its q crosses eps (at most once at a time: only its push lowers q) and
        # recorded as touched when q leaves 0 while it has no estimate (once per run).
        n = queue.shape[0]
        for i in range(seeds.shape[0]):
            s = seeds[i]
            if q[s] == 0.0 and p[s] == 0.0:
                touched[count] = s
                count += 1
            if deg[s] <= 0:
                p[s] += w[i]  # isolated: keeps its own reset mass
            else:
                q[s] += w[i] / deg[s]
        head = 0
        tail = 0
        size = 0
        for i in range(count):  # a new run's seeds, or every node touched so far when resuming
            v = touched[i]
            if q[v] >= eps:
                queue[tail] = v
                tail = (tail + 1) % n
                size += 1
        pushes = 0
        edges = 0
        while size > 0:
            u = queue[head]
            head = (head + 1) % n
            size -= 1
            qu = q[u]
            p[u] += qu * deg[u]
            q[u] = 0.0
            pushes += 1
            share = damping * qu
            for e in range(indptr[u], indptr[u + 1]):
                v = indices[e]
                edges += 1
                old = q[v]
                new = old + share * colnorm[e]
                q[v] = new
                if old == 0.0 and new != 0.0 and p[v] == 0.0:
                    touched[count] = v
                    count += 1
                if old < eps <= new:
                    queue[tail] = v
                    tail = (tail + 1) % n
                    size += 1
        return count, pushes, edges

    return kernel


def _compiled_overlay_kernel() -> Any:
    """The numba push kernel over a base CSR plus a correction (None without numba)."""
    return numba_kernel("push_overlay", _make_push_overlay)


def _make_push_overlay(numba: Any) -> Any:
    @numba.njit(cache=True, nogil=True)
    def kernel(indptr, indices, data, p0, shift, n_p, dptr, dind, ddata, inv_deg, deg, seeds, w, damping, eps,  # type: ignore[no-untyped-def]
               p, q, queue, touched, count):
        # As the plain kernel, over two edge lists per node: the base row (base entity columns
        # shifted by `shift`) and the correction's row; w(u, v) / deg(v) is computed per edge.
        n = queue.shape[0]
        e0 = indptr.shape[0] - 1 - p0
        for i in range(seeds.shape[0]):
            s = seeds[i]
            if q[s] == 0.0 and p[s] == 0.0:
                touched[count] = s
                count += 1
            if deg[s] <= 0:
                p[s] += w[i]
            else:
                q[s] += w[i] / deg[s]
        head = 0
        tail = 0
        size = 0
        for i in range(count):
            v = touched[i]
            if q[v] >= eps:
                queue[tail] = v
                tail = (tail + 1) % n
                size += 1
        pushes = 0
        edges = 0
        while size > 0:
            u = queue[head]
            head = (head + 1) % n
            size -= 1
            qu = q[u]
            p[u] += qu * deg[u]
            q[u] = 0.0
            pushes += 1
            share = damping * qu
            b = -1
            if u < p0:
                b = u
            elif u >= n_p and u - n_p < e0:
                b = u - n_p + p0
            lo = 0
            hi = 0
            if b >= 0:
                lo = indptr[b]
                hi = indptr[b + 1]
            for k in range(2):
                if k == 1:
                    lo = dptr[u]
                    hi = dptr[u + 1]
                for e in range(lo, hi):
                    if k == 0:
                        v = indices[e]
                        if v >= p0:
                            v += shift
                        wt = data[e]
                    else:
                        v = dind[e]
                        wt = ddata[e]
                    edges += 1
                    old = q[v]
                    new = old + share * wt * inv_deg[v]
                    q[v] = new
                    if old == 0.0 and new != 0.0 and p[v] == 0.0:
                        touched[count] = v
                        count += 1
                    if old < eps <= new:
                        queue[tail] = v
                        tail = (tail + 1) % n
                        size += 1
        return count, pushes, edges

    return kernel


def column_normalised(indices: npt.NDArray[Any], data: npt.NDArray[Any], degree: F64) -> F64:
    """``w(u, v) / deg(v)`` for every adjacency entry ``(u, v)`` (0 where ``deg(v)`` is 0)."""
    out = np.empty(len(indices), dtype=np.float64)
    step = 1 << 22
    for a in range(0, len(indices), step):
        d = degree[np.asarray(indices[a : a + step])]
        out[a : a + step] = np.where(d > 0, np.asarray(data[a : a + step]) / np.where(d > 0, d, 1.0), 0.0)
    return out


def push_ppr(
    adjacency: sp.csr_matrix, nodes: npt.ArrayLike, weights: npt.ArrayLike, damping: float = 0.5, eps: float = 1e-6
) -> tuple[IntArray, F64]:
    """One-shot :meth:`PushSolver.run`."""
    return PushSolver(adjacency).run(nodes, weights, damping, eps)
