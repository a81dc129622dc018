"""Recognition memory (HippoRAG 2, step 4), the pure half: map the filter's reply back to
the candidate facts. The engine makes the LLM call; nothing here does IO.

HippoRAG 2 maps every fact the LLM returns to its closest candidate by ``difflib`` with
cutoff 0, so an invented fact still lands on some candidate. Here the mapping is strict:
a returned fact counts only if it equals a candidate after normalisation (the index's own
lower-case, punctuation-to-space form); anything else is dropped. The kept facts keep the
LLM's order and their embedding scores, and feed the entity seeds as the linked facts did.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from hippo.ids import normalize
from hippo.types import Triple

IntArray = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


def _key(triple: Sequence[str]) -> tuple[str, str, str]:
    return (normalize(str(triple[0])), normalize(str(triple[1])), normalize(str(triple[2])))


def map_to_candidates(candidates: Sequence[Triple], returned: Sequence[Sequence[str]], limit: int) -> list[int]:
    """Positions in ``candidates`` of the ``returned`` facts, in the reply's order, each once,
    at most ``limit``. A returned fact equal to no candidate (after normalisation) is dropped."""
    where: dict[tuple[str, str, str], int] = {}
    for i, c in enumerate(candidates):
        where.setdefault(_key(c), i)
    out: list[int] = []
    for fact in returned:
        if len(fact) != 3:
            continue
        found = where.get(_key(fact))
        if found is not None and found not in out:
            out.append(found)
        if len(out) >= limit:
            break
    return out


def kept_facts(fact_idx: IntArray, fact_scores: F64, positions: Sequence[int]) -> tuple[IntArray, F64]:
    """The linked facts (indices, scores) at ``positions``, in that order."""
    pos = np.asarray(list(positions), dtype=np.int64)
    return fact_idx[pos].astype(np.int64), fact_scores[pos].astype(np.float64)
