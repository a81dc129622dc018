"""The hypergraph working memory of HGMem (arXiv 2512.23959), as a pure data structure.

Vertices are entities of the index, by entity index (``0 .. n_entities - 1``), plus provisional
vertices an LLM introduces, kept in a memory-side overlay with negative ids (``-1, -2, ...``)
and never written into the index. A *memory point* is a hyperedge: a set of vertices with a
description and its provenance (the passages and facts it came from).

Points are addressed by their position in :attr:`HypergraphMemory.points`, as HGMem's prompts
address them. ``update`` keeps a point's position, ``insert`` appends, ``merge`` removes the
merged points and appends one point per group (vertex set = union), ``remove`` deletes.
Every operation is validated first and applied whole or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hippo.errors import HippoError


class HGMemError(HippoError):
    """An invalid memory operation (bad index, empty vertex set, overlapping merge groups, ...)."""


@dataclass(frozen=True)
class MemoryPoint:
    """A hyperedge of the memory: vertices, a description and where it came from."""

    vertices: frozenset[int]
    description: str
    passages: frozenset[int] = frozenset()
    facts: frozenset[int] = frozenset()
    step: int = 0
    """The retrieval step that created or last changed the point."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (sorted lists)."""
        return {
            "vertices": sorted(self.vertices), "description": self.description,
            "passages": sorted(self.passages), "facts": sorted(self.facts), "step": self.step,
        }


@dataclass
class HypergraphMemory:
    """The working memory of one question: memory points over entity vertices."""

    n_entities: int
    points: list[MemoryPoint] = field(default_factory=list)
    provisional: dict[str, int] = field(default_factory=dict)
    """Overlay of vertices that are not index entities: name -> negative vertex id."""

    # -- vertices -------------------------------------------------------------------------
    def add_provisional(self, name: str) -> int:
        """The vertex id of a provisional (non-index) entity, created on first use."""
        key = " ".join(name.split())
        if not key:
            raise HGMemError("a provisional vertex needs a non-empty name")
        if key not in self.provisional:
            self.provisional[key] = -(len(self.provisional) + 1)
        return self.provisional[key]

    def vertices(self) -> set[int]:
        """Every vertex of every point."""
        return set().union(*(p.vertices for p in self.points)) if self.points else set()

    def _check_vertices(self, vertices: Iterable[int], what: str) -> frozenset[int]:
        vs = frozenset(int(v) for v in vertices)
        if not vs:
            raise HGMemError(f"{what}: a memory point needs at least one vertex")
        bad = sorted(v for v in vs if v >= self.n_entities or v < -len(self.provisional))
        if bad:
            raise HGMemError(
                f"{what}: vertex ids {bad[:5]} are neither index entities (0..{self.n_entities - 1}) "
                f"nor provisional vertices (-1..-{len(self.provisional)})"
            )
        return vs

    def _check_index(self, index: int, what: str) -> None:
        if not 0 <= index < len(self.points):
            raise HGMemError(f"{what}: no memory point {index} (the memory has {len(self.points)})")

    # -- operations -----------------------------------------------------------------------
    def insert(
        self, vertices: Iterable[int], description: str, passages: Iterable[int] = (),
        facts: Iterable[int] = (), step: int = 0,
    ) -> int:
        """Append a point; returns its index."""
        vs = self._check_vertices(vertices, "insert")
        self.points.append(MemoryPoint(vs, description, frozenset(passages), frozenset(facts), step))
        return len(self.points) - 1

    def update(
        self, index: int, vertices: Iterable[int] | None = None, description: str | None = None,
        passages: Iterable[int] = (), facts: Iterable[int] = (), step: int | None = None,
    ) -> None:
        """Replace a point's vertices and/or description in place; provenance is added to."""
        self._check_index(index, "update")
        old = self.points[index]
        vs = old.vertices if vertices is None else self._check_vertices(vertices, "update")
        self.points[index] = MemoryPoint(
            vs, old.description if description is None else description,
            old.passages | frozenset(passages), old.facts | frozenset(facts),
            old.step if step is None else step,
        )

    def merge(self, groups: Sequence[Sequence[int]], descriptions: Sequence[str] | None = None, step: int | None = None) -> list[int]:
        """Merge each group of point indices into one point (vertex set = union, provenance =
        union). The merged points leave the list; the new points are appended in group order.
        Returns their indices. Groups need 2+ distinct points and must not overlap."""
        if descriptions is not None and len(descriptions) != len(groups):
            raise HGMemError(f"merge: {len(groups)} groups but {len(descriptions)} descriptions")
        seen: set[int] = set()
        for g in groups:
            if len(set(g)) < 2:
                raise HGMemError(f"merge: group {list(g)} needs at least two distinct points")
            for i in g:
                self._check_index(i, "merge")
            overlap = seen & set(g)
            if overlap:
                raise HGMemError(f"merge: point(s) {sorted(overlap)} are in more than one group")
            seen |= set(g)
        merged = []
        for n, g in enumerate(groups):
            pts = [self.points[i] for i in dict.fromkeys(g)]
            desc = descriptions[n] if descriptions is not None else " ".join(p.description for p in pts)
            merged.append(MemoryPoint(
                frozenset().union(*(p.vertices for p in pts)), desc,
                frozenset().union(*(p.passages for p in pts)), frozenset().union(*(p.facts for p in pts)),
                max(p.step for p in pts) if step is None else step,
            ))
        self.points = [p for i, p in enumerate(self.points) if i not in seen] + merged
        start = len(self.points) - len(merged)
        return list(range(start, len(self.points)))

    def remove(self, index: int) -> None:
        """Delete a point (later points move up by one)."""
        self._check_index(index, "remove")
        del self.points[index]

    # -- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "n_entities": self.n_entities,
            "provisional": dict(self.provisional),
            "points": [p.to_dict() for p in self.points],
        }

    def to_json(self) -> str:
        """The memory as a JSON string."""
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HypergraphMemory:
        """Rebuild (and re-validate) a memory from :meth:`to_dict` output."""
        try:
            mem = cls(int(data["n_entities"]))
            for name, vid in sorted(dict(data.get("provisional", {})).items(), key=lambda kv: -int(kv[1])):
                if mem.add_provisional(name) != int(vid):
                    raise HGMemError(f"provisional vertex ids must be -1, -2, ... in order; got {vid} for {name!r}")
            for p in data["points"]:
                mem.insert(p["vertices"], str(p["description"]), p.get("passages", ()), p.get("facts", ()), int(p.get("step", 0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise HGMemError(f"not a serialised HypergraphMemory: {exc!r}") from None
        return mem

    @classmethod
    def from_json(cls, text: str) -> HypergraphMemory:
        """Rebuild a memory from :meth:`to_json` output."""
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise HGMemError(f"malformed memory JSON: {exc.msg} at line {exc.lineno}") from None
