"""Query entities: link the entities a question names straight into the graph (pure, no IO).

HippoRAG 2 reaches the graph only through facts: the query embedding picks the most similar
facts, and their subjects and objects become PageRank seeds. With a small embedder the
linked facts are often about the right topic but the wrong entity. A multi-hop question
nearly always *names* its starting entity ("the composer of **Aschenbrodel**"), so hippo
also seeds the entities the question names, found two ways:

- **names**: token n-grams of the question equal to an entity name (after
  :func:`hippo.ids.normalize`), longest first, non-overlapping, kept only when the span holds
  a capitalised word that does not open the question (a proper-noun cue, so "the state" or
  "president" never match);
- **mentions**: spans a named-entity recogniser found (supplied by the caller, e.g. spaCy),
  each linked to its exact entity name, else to the entity whose vector is nearest to the
  mention's vector when the cosine reaches a threshold.

Each linked entity ``e`` gets reset weight ``query_entity_weight / |C(e)|`` (``C(e)``: passages
containing ``e``), the same specificity discount as fact seeds.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from hippo.ids import normalize

IntArray = npt.NDArray[np.int64]

MAX_NGRAM = 8
"""Longest name (in words) matched against the question."""
MIN_SINGLE_WORD_CHARS = 3
"""A one-word match needs at least this many characters ("US" is too ambiguous)."""


def _words(text: str) -> list[str]:
    """Words as :func:`normalize` splits them, case kept: runs of letters, marks and digits."""
    text = unicodedata.normalize("NFKC", text)
    words, cur = [], []
    for ch in text:
        if unicodedata.category(ch)[0] in "LMN":
            cur.append(ch)
        elif cur:
            words.append("".join(cur))
            cur = []
    if cur:
        words.append("".join(cur))
    return words


def name_index(names: Sequence[str]) -> dict[str, int]:
    """Normalised entity name -> first entity index with that name."""
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        index.setdefault(normalize(name), i)
    return index


def match_names(query: str, names: Mapping[str, int], max_ngram: int = MAX_NGRAM) -> list[int]:
    """Entities whose whole name is a capitalised n-gram of ``query``; longest spans first.

    >>> match_names("Who founded the Boston Red Sox?", {"boston red sox": 7, "boston": 3, "founded": 1})
    [7]
    """
    words = _words(query)
    lower = [w.lower() for w in words]
    capital = [i > 0 and w[:1].isupper() for i, w in enumerate(words)]
    taken = [False] * len(words)
    found: list[int] = []
    for n in range(min(max_ngram, len(words)), 0, -1):
        for i in range(len(words) - n + 1):
            if any(taken[i : i + n]) or not any(capital[i : i + n]):
                continue
            span = " ".join(lower[i : i + n])
            if n == 1 and len(span) < MIN_SINGLE_WORD_CHARS:
                continue
            hit = names.get(span)
            if hit is not None:
                found.append(hit)
                taken[i : i + n] = [True] * n
    return list(dict.fromkeys(found))


def link_mentions(
    mentions: Sequence[str],
    names: Mapping[str, int],
    nearest: Callable[[Sequence[str]], tuple[IntArray, npt.NDArray[np.floating]]],
    threshold: float,
) -> list[int]:
    """One entity per mention: its exact normalised name, else the entity ``nearest`` returns
    for it (index and cosine) when the cosine reaches ``threshold``. ``nearest`` is called
    once, with only the mentions that need it."""
    found: list[int] = []
    need = []
    for mention in mentions:
        hit = names.get(normalize(mention))
        if hit is not None:
            found.append(hit)
        else:
            need.append(mention)
    if need:
        best, cos = nearest(need)
        found.extend(int(e) for e, c in zip(best.tolist(), cos.tolist()) if c >= threshold)
    return list(dict.fromkeys(found))


def query_entity_weights(
    entities: Sequence[int], entity_passage_count: IntArray, weight: float
) -> tuple[IntArray, npt.NDArray[np.float64]]:
    """Reset weights ``weight / max(|C(e)|, 1)`` of the linked entities, in the given order."""
    idx = np.asarray(list(entities), dtype=np.int64)
    if weight <= 0 or idx.size == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    return idx, weight / np.maximum(entity_passage_count[idx], 1).astype(np.float64)
