"""A per-passage prior applied after ranking (pure, no IO).

Some indexes know more about a passage than its text: a conversation turn has a time and a
speaker. A prior is one weight per passage row for one question (from
:func:`hippo.conversation.prior.turn_prior`, for example); :func:`reweight` multiplies the
candidates' final scores by it and keeps the best ``k``. The retriever ranks
``retrieval.prior_candidates`` passages first, so a boosted passage just outside the top ``k``
can move in.

Scores must be positive and comparable across passages for a product to mean anything: graph
rankings are (PageRank mass, times ``exp(dense_fusion × cosine)`` for ``hippo``), and a dense
ranking's cosine ``c`` becomes ``exp(dense_fusion × (c − 1))`` first, as ``hippo`` fuses them
(``exp(c − 1)`` when ``dense_fusion`` is 0).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from hippo.retrieval.hipporag import GraphRanking

F64 = npt.NDArray[np.float64]


def candidates(k: int, n_passages: int, prior_candidates: int) -> int:
    """How many passages to rank before a prior re-weights them: at least ``k``, at most all."""
    return max(1, min(n_passages, max(k, prior_candidates)))


def reweight(ranking: GraphRanking, weights: F64, k: int, dense_fusion: float) -> GraphRanking:
    """``ranking`` with every candidate's score multiplied by ``weights[passage]``, re-sorted
    (ties by passage row, as every ranking here) and cut to ``k``."""
    rows = np.asarray(ranking.passages, dtype=np.int64)
    scores = np.asarray(ranking.scores, dtype=np.float64)
    if ranking.mode == "dense":
        scores = np.exp((dense_fusion or 1.0) * (scores - 1.0))
    weighted = scores * np.asarray(weights, dtype=np.float64)[rows]
    order = np.lexsort((rows, -weighted))[:k]
    return dataclasses.replace(ranking, passages=rows[order], scores=weighted[order])


def rank_with_prior(rank: Callable[[int], list[GraphRanking]], weights: Sequence[F64 | None], k: int,
                    n_passages: int, prior_candidates: int, dense_fusion: float) -> list[GraphRanking]:
    """``rank(n)`` ranks ``n`` passages per query; each query with prior ``weights`` (None:
    none) is ranked wide and re-weighted, the others cut to ``k``."""
    wide = rank(candidates(k, n_passages, prior_candidates))
    return [reweight(g, w, k, dense_fusion) if w is not None
            else dataclasses.replace(g, passages=g.passages[:k], scores=g.scores[:k]) for g, w in zip(wide, weights)]
