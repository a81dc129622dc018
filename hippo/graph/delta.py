"""The weight of every entity-pair edge as a function of a few counts (pure, no IO).

:func:`hippo.graph.build.assemble_graph` gives an entity pair ``(i, j)`` the adjacency weight

* ``reference`` mode: ``f32(R * (2 - acc)) + f32(cos * acc)``;
* ``single`` mode: ``f32(R) + f32(cos if acc else 0)``,

summed in float64, where ``R`` is the number of (passage, fact) statements of facts joining
the pair, ``acc`` (0, 1 or 2) how many endpoints accept the pair as a synonym (each entity
accepts its ``max_neighbors`` most similar live candidates, most similar first, ties by the
neighbour's index, if it is eligible) and ``cos`` the pair's cosine. A passage and each entity
of its facts are joined with weight 1.

A write of a living index changes a few of these inputs; :func:`pair_weights` and
:func:`accepted` recompute the weight of exactly the pairs whose inputs changed, so the graph
of an index grown by small writes is the graph a from-scratch build of its passages gives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

PAIR_BASE = 1 << 32
"""Pairs of entity rows ``i < j`` are keyed ``i * PAIR_BASE + j``."""


def pair_key(i: int, j: int) -> int:
    """The key of the unordered pair ``{i, j}`` (``i != j``)."""
    return min(i, j) * PAIR_BASE + max(i, j)


def split_key(key: int) -> tuple[int, int]:
    """``(i, j)`` with ``i < j`` of a pair key."""
    return key // PAIR_BASE, key % PAIR_BASE


def pair_weights(rel: npt.ArrayLike, acc: npt.ArrayLike, cos: npt.ArrayLike, reference: bool) -> F64:
    """Adjacency weight of entity pairs (arrays of equal length): ``rel`` statement counts,
    ``acc`` accepting endpoints, ``cos`` cosines (float32). Equal, to the bit, to the entry a
    from-scratch :func:`~hippo.graph.build.assemble_graph` gives the pair."""
    r = np.asarray(rel, dtype=np.float64)
    a = np.asarray(acc, dtype=np.float64)
    c = np.asarray(cos, dtype=np.float32).astype(np.float64)
    if reference:
        rel_w = (r * 2.0) * (2.0 - a) / 2.0
        syn_w = c * a
    else:
        rel_w = r
        syn_w = np.where(a > 0, c, 0.0)
    return rel_w.astype(np.float32).astype(np.float64) + syn_w.astype(np.float32).astype(np.float64)


def edge_kinds(rel: int, acc: int, reference: bool) -> tuple[bool, bool]:
    """Whether the pair carries a relation edge and a synonym edge (for edge counts): in
    ``reference`` mode a pair both endpoints accept as synonyms keeps only the synonym."""
    return rel > 0 and not (reference and acc >= 2), acc > 0


def accepted(
    candidates: Sequence[tuple[float, int]],
    alive: Callable[[int], bool],
    eligible: bool,
    max_neighbors: int,
) -> frozenset[int]:
    """The neighbours an entity accepts as synonyms: its ``max_neighbors`` best candidates
    among the live ones, ``candidates`` being ``(cos, neighbour)`` pairs in any order (ordered
    here by decreasing cosine, ties by neighbour index). None if it is not ``eligible``."""
    if not eligible or max_neighbors <= 0:
        return frozenset()
    ordered = sorted(candidates, key=lambda cn: (-cn[0], cn[1]))
    out: list[int] = []
    for _, nbr in ordered:
        if alive(nbr):
            out.append(nbr)
            if len(out) >= max_neighbors:
                break
    return frozenset(out)
