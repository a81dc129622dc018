"""Cosines of queries against passage and fact vectors held as parts (a living index: the base
segment's rows, then every later segment's), with dead rows masked (pure, no IO)."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from hippo.protocols import FloatArray
from hippo.threads import SERIAL_UP_TO, torch_threads_for

F64 = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def top_k_indices(scores: npt.NDArray[np.floating], k: int) -> IntArray:
    """Indices of the ``k`` largest scores, best first, ties broken by lower index."""
    n = scores.shape[0]
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k < n:
        part = np.argpartition(-scores, k - 1)[:k]
        # Bring in every index tied with the k-th score so ties break by index, not by partition luck.
        kth = scores[part].min()
        part = np.flatnonzero(scores >= kth)
    else:
        part = np.arange(n)
    order = np.lexsort((part, -scores[part]))
    return part[order][:k].astype(np.int64)


class CosineScorer:
    """Cosine scores of queries against passage and fact vectors given as parts (a living
    index: the base segment's rows, then every later segment's), dead rows masked.

    Uses torch (MKL, the same OpenMP pool as the embedder and the sparse PageRank) when
    available: mixing it with OpenBLAS's spinning threads on 2 cores slows both. A part's
    float32 copy is made once and kept in ``cache`` (shared by the engines over one base) while the
    part lives, so a reader that follows writes copies only the new segments' rows, and the copies
    of the commits it left go with them.
    """

    def __init__(
        self,
        passage_parts: Sequence[FloatArray],
        fact_parts: Sequence[FloatArray],
        cache: dict[int, tuple[Any, Any]] | None = None,
        fact_alive: npt.NDArray[np.bool_] | None = None,
    ) -> None:
        def parts(given: Any) -> list[Any]:
            listed = list(given) if isinstance(given, (list, tuple)) else [given]
            return [p for p in listed if p is not None and p.shape[0]]

        self.passage_parts = parts(passage_parts)
        self.fact_parts = parts(fact_parts)
        self.fact_alive = fact_alive
        self._cache: dict[int, tuple[Any, Any]] = {} if cache is None else cache
        try:
            import torch
        except ImportError:
            self._torch = None
            return
        self._torch = torch
        self._dead_f = None if fact_alive is None else torch.from_numpy(~fact_alive)

    def _copy(self, part: FloatArray) -> Any:
        """float32 copy in RAM, transposed to (d, rows), made on first use (torch cannot wrap
        read-only memory maps; an index searched through an ANN index never makes one).

        Transposed because a few queries against it as ``q @ copy`` measured 1.8x faster
        with torch's MKL on this AMD CPU than ``rows @ q.T`` on the untransposed copy (one
        question against MuSiQue's 17,033 facts: 0.8 against 1.7 ms), while a large batch
        through the transposed view costs the same."""
        got = self._cache.get(id(part))
        if got is None or got[0]() is not part:
            assert self._torch is not None
            # always a copy: a one-row part's transpose is already contiguous, and a view would
            # keep the part (and its commit) alive through this cache
            copy = self._torch.from_numpy(np.array(np.asarray(part, dtype=np.float32).T, order="C", copy=True))
            got = self._cache[id(part)] = (weakref.ref(part), copy)
            weakref.finalize(part, self._cache.pop, id(part), None)  # a later segment's rows go with their commit
        return got[1]

    def _raw(self, parts: list[FloatArray], q: FloatArray) -> Any:
        """(rows, B) cosines as a torch float32 tensor (or numpy without torch)."""
        q = np.atleast_2d(np.asarray(q, dtype=np.float32))
        if self._torch is None:
            if not parts:
                return np.zeros((0, q.shape[0]), dtype=np.float32)
            return np.concatenate([np.asarray(p, dtype=np.float32) @ q.T for p in parts])
        torch = self._torch
        few = q.shape[0] <= SERIAL_UP_TO
        qt = torch.from_numpy(q if few else np.ascontiguousarray(q.T))
        with torch_threads_for(q.shape[0]), torch.inference_mode():
            outs = [(qt @ self._copy(p)).T if few else self._copy(p).T @ qt for p in parts]
            return torch.cat(outs) if len(outs) != 1 else outs[0] if outs else torch.zeros((0, q.shape[0]))

    def _scores(self, parts: list[FloatArray], q: FloatArray) -> F64:
        raw = self._raw(parts, q)
        return np.asarray(raw if self._torch is None else raw.numpy(), dtype=np.float64)

    def passages(self, q: FloatArray) -> F64:
        """(P, B) cosines for queries (B, d)."""
        return self._scores(self.passage_parts, q)

    def facts(self, q: FloatArray) -> F64:
        """(F, B) cosines for queries (B, d) (dead facts included)."""
        return self._scores(self.fact_parts, q)

    def top_facts(self, q: FloatArray, k: int) -> list[tuple[IntArray, F64]]:
        """Per query: the ``k`` best live facts (ties by index) and their min-max normalised
        scores (over the live facts).

        Equal to ``top_k_indices(minmax(facts(q)))`` without normalising every fact: torch's
        top-k over a few spare candidates, then the stable order on those.
        """
        if self._torch is None:
            raw = self.facts(q)
            if self.fact_alive is not None:
                raw = np.where(self.fact_alive[:, None], raw, np.nan)
            lo, hi = np.nanmin(raw, axis=0), np.nanmax(raw, axis=0)
            span = np.where(hi - lo > 0, hi - lo, 1.0)
            scores = np.where(hi - lo > 0, (raw - lo) / span, 1.0)
            scores = np.where(np.isnan(raw), -np.inf, scores)
            out = []
            for b in range(scores.shape[1]):
                top = top_k_indices(scores[:, b], min(k, int(np.isfinite(scores[:, b]).sum())))
                out.append((top, scores[top, b]))
            return out
        torch = self._torch
        q = np.atleast_2d(np.asarray(q, dtype=np.float32))
        with torch.inference_mode():
            raw = self._raw(self.fact_parts, q)  # (F, B)
            if self._dead_f is not None:
                lo = raw.masked_fill(self._dead_f[:, None], float("inf")).min(0).values.double().numpy()
                raw = raw.masked_fill(self._dead_f[:, None], float("-inf"))
            else:
                lo = raw.min(0).values.double().numpy()
            hi = raw.max(0).values.double().numpy()
            live = raw.shape[0] if self._dead_f is None else int((~self._dead_f).sum())
            spare = min(k + 8, raw.shape[0])
            cand = torch.topk(raw, spare, dim=0).indices.numpy()
            cand_scores = raw.gather(0, torch.from_numpy(cand)).double().numpy()
        out = []
        for b in range(q.shape[0]):
            order = np.lexsort((cand[:, b], -cand_scores[:, b]))[: min(k, live)]
            span = hi[b] - lo[b]
            norm = (cand_scores[order, b] - lo[b]) / span if span > 0 else np.ones(len(order))
            out.append((cand[order, b].astype(np.int64), norm))
        return out
