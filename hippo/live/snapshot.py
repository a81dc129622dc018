"""The live index as a reader sees it: every segment's rows as one index, tombstones applied.

A :class:`Snapshot` is a consistent point-in-time view: the segments one manifest lists,
pinned while the snapshot lives. Rows are global (segment after segment); the graph is the
base's CSR plus the correction the later segments' weights give
(:class:`hippo.graph.overlay.GraphParts`); counts are the base's plus the later deltas.
:meth:`Snapshot.refresh` opens the newest commit reusing every segment already open, so a
reader follows writes at the cost of the new segments only (plus one pass over the small
deltas it already had).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from hippo.graph.overlay import GraphParts, correction
from hippo.ids import entity_id
from hippo.live.parts import ConcatArray, ConcatStrings
from hippo.live.segment import SegmentView
from hippo.store.segments import OpenIndex, manifest_changed, open_index_files
from hippo.store.strings import DerivedIds, FactTable, NameLookup

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class ChainLookup(Mapping[str, int]):
    """Name -> row over the base's hashed lookup and the later segments' names."""

    def __init__(self, base: Mapping[str, int], extra: dict[str, int]) -> None:
        self.base = base
        self.extra = extra

    def get(self, name: str, default: Any = None) -> Any:
        got = self.extra.get(name)
        if got is not None:
            return got
        return self.base.get(name, default)

    def __getitem__(self, name: str) -> int:
        got = self.get(name)
        if got is None:
            raise KeyError(name)
        return int(got)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __len__(self) -> int:
        return len(self.base) + len(self.extra)

    def __iter__(self) -> Any:
        yield from self.base
        yield from self.extra


class Snapshot:
    """One commit of an index opened for reading (see the module docstring)."""

    def __init__(self, opened: OpenIndex, previous: Snapshot | None = None) -> None:
        self.opened = opened
        self.root: Path = opened.root
        self.manifest: dict[str, Any] = opened.manifest
        reuse: dict[str, SegmentView] = {v.name: v for v in previous.views} if previous is not None else {}
        self.views: list[SegmentView] = [reuse.get(f.name) or SegmentView(f) for f in opened.segments]
        if not self.views or not self.views[0].is_base:
            raise ValueError(f"{self.root}: the first segment of an index must be a base")
        self.base = self.views[0]
        self.deltas = self.views[1:]
        self.n_passages = sum(v.rows[0] for v in self.views)
        self.n_entities = sum(v.rows[1] for v in self.views)
        self.n_facts = sum(v.rows[2] for v in self.views)

    @classmethod
    def open(cls, root: str | Path) -> Snapshot:
        """The live commit of the index at ``root``."""
        return cls(open_index_files(root))

    @property
    def generation(self) -> int:
        """The commit number (one more per write)."""
        return int(self.manifest["generation"])

    def changed(self) -> bool:
        """Whether a newer commit exists (reads the small ``CURRENT`` file only)."""
        return manifest_changed(self.root, self.manifest)

    def refresh(self) -> Snapshot | None:
        """A snapshot of the newest commit reusing this one's open segments, or None when
        there is none. This snapshot stays valid (and pinned) until closed."""
        if not self.changed():
            return None
        opened = open_index_files(self.root, reuse={v.name: v.files for v in self.views})
        return Snapshot(opened, self)

    def extend(self, manifest: dict[str, Any]) -> Snapshot:
        """A snapshot of ``manifest`` (this one's segments and more, not committed yet), reusing
        this one's open segments: what a writer that commits nothing sees."""
        from hippo.store.segments import SegmentFiles

        have = {v.name: v.files for v in self.views}
        files = [have.get(e["name"]) or SegmentFiles(self.root, e["name"]) for e in manifest["segments"]]
        return Snapshot(OpenIndex(self.root, manifest, files), self)

    def close(self, keep: Sequence[Snapshot] = ()) -> None:
        """Release the pins of segments no snapshot in ``keep`` uses."""
        used = {v.name for s in keep for v in s.views}
        for v in self.views:
            if v.name not in used:
                v.files.close()

    # ---------------------------------------------------------------- strings
    def _concat(self, stem: str) -> Sequence[str]:
        parts = [v.strings(stem) for v in self.views]
        return parts[0] if len(parts) == 1 else ConcatStrings(parts)

    @cached_property
    def passage_ids(self) -> Sequence[str]:
        """Id of every passage row (tombstoned ones included)."""
        return self._concat("passage_ids")

    @cached_property
    def passage_titles(self) -> Sequence[str]:
        """Title of every passage row."""
        return self._concat("passage_titles")

    @cached_property
    def passage_contents(self) -> Sequence[str]:
        """Content of every passage row."""
        return self._concat("passage_contents")

    @cached_property
    def entity_names(self) -> Sequence[str]:
        """Normalised name of every entity row."""
        return self._concat("entity_names")

    @cached_property
    def entity_ids(self) -> Sequence[str]:
        """Id of every entity row (derived from its name)."""
        return DerivedIds(self.entity_names, entity_id)

    @cached_property
    def fact_subject(self) -> ConcatArray:
        """(F,) subject entity row of every fact."""
        return ConcatArray([v.ints("fact_subject") for v in self.views])

    @cached_property
    def fact_object(self) -> ConcatArray:
        """(F,) object entity row of every fact."""
        return ConcatArray([v.ints("fact_object") for v in self.views])

    @cached_property
    def facts(self) -> FactTable:
        """Every fact (built on access)."""
        return FactTable(self.entity_names, self.fact_subject, self.fact_object, self._concat("fact_relations"))

    def metadata(self, row: int) -> dict[str, Any]:
        """The metadata stored with passage ``row`` ({} when none)."""
        start = 0
        for v in self.views:
            if row < start + v.rows[0]:
                table = v.passage_meta
                text = table[row - start] if table is not None else ""
                return dict(json.loads(text)) if text else {}
            start += v.rows[0]
        raise IndexError(f"passage row {row} out of range")

    def meta_column(self, key: str) -> list[str]:
        """The metadata value ``key`` of every passage row, as a string ("" where absent)."""
        return [value for v in self.views for value in v.meta_column(key)]

    @cached_property
    def names(self) -> Mapping[str, int]:
        """Normalised entity name -> entity row (live or not)."""
        b = self.base.files
        base = NameLookup(self.base.strings("entity_names"), b.array("entity_name_hash.npy"), b.array("entity_name_rows.npy"))
        extra: dict[str, int] = {}
        start = self.base.rows[1]
        for v in self.deltas:
            for k, name in enumerate(v.strings("entity_names")):
                extra[name] = start + k
            start += v.rows[1]
        return ChainLookup(base, extra)

    # ---------------------------------------------------------------- counts and liveness
    def _counts(self, kind: str, n: int, base_name: str) -> IntArray:
        out = np.zeros(n, dtype=np.int64)
        base = np.asarray(self.base.array(base_name), dtype=np.int64)
        out[: len(base)] = base
        for v in self.deltas:
            rows, delta = v.ints(f"{kind}_rows"), v.ints(f"{kind}_delta")
            np.add.at(out, rows, delta)
        return out

    @cached_property
    def entity_passage_count(self) -> IntArray:
        """(E,) live passages containing each entity: |C(e)| (0 for a dead entity)."""
        if not self.deltas:
            return np.asarray(self.base.array("entity_passage_count"))
        return self._counts("ec", self.n_entities, "entity_passage_count")

    @cached_property
    def entity_alive(self) -> BoolArray | None:
        """(E,) whether each entity is in some live passage; None when all are."""
        if not self.deltas:
            return None
        alive = self.entity_passage_count > 0
        return None if alive.all() else alive

    @cached_property
    def fact_alive(self) -> BoolArray | None:
        """(F,) whether some live passage states each fact; None when all do."""
        if not self.deltas or not any(len(v.ints("fc_rows")) for v in self.deltas):
            return None
        alive = self._counts("fc", self.n_facts, "fact_passage_count") > 0
        return None if alive.all() else alive

    @cached_property
    def dead(self) -> IntArray:
        """Tombstoned passage rows, ascending."""
        parts = [v.ints("dead") for v in self.deltas]
        return np.unique(np.concatenate([np.zeros(0, np.int64), *parts]))

    @cached_property
    def passage_alive(self) -> BoolArray | None:
        """(P,) whether each passage row is live; None when none is tombstoned."""
        if not len(self.dead):
            return None
        alive = np.ones(self.n_passages, dtype=bool)
        alive[self.dead] = False
        return alive

    # ---------------------------------------------------------------- vectors and graph
    def vectors(self, which: str) -> tuple[Any, Any | None]:
        """(base vectors, every later segment's vectors as one float32 array or None) of
        ``passage``, ``entity`` or ``fact`` rows."""
        base = self.base.vectors(which)
        later = [np.asarray(v.vectors(which), dtype=np.float32) for v in self.deltas if v.rows[("passage", "entity", "fact").index(which)]]
        return base, (np.concatenate(later) if later else None)

    @cached_property
    def passage_facts(self) -> tuple[IntArray, IntArray]:
        """(indptr (P+1,), fact rows) of every passage row."""
        ptrs, idxs, offset = [np.zeros(1, np.int64)], [], 0
        for v in self.views:
            ptr, idx = v.passage_facts()
            ptrs.append(np.asarray(ptr[1:], dtype=np.int64) + offset)
            idxs.append(np.asarray(idx, dtype=np.int64))
            offset += len(idx)
        return np.concatenate(ptrs), np.concatenate(idxs) if idxs else np.zeros(0, np.int64)

    @cached_property
    def graph(self) -> GraphParts:
        """The PageRank graph over ``[passages | entities]`` (see :mod:`hippo.graph.overlay`)."""
        b = self.base
        n0 = b.rows[0] + b.rows[1]
        base = sp.csr_matrix((b.array("adj_data"), b.array("adj_indices"), b.array("adj_indptr")), shape=(n0, n0))
        colnorm = b.array("adj_colnorm") if b.files.has("adj_colnorm.npy") else None
        parts = GraphParts(self.n_passages, self.n_entities, base, b.rows[0], b.array("node_degree"), colnorm)
        if self.deltas:
            rows, cols, weights = self._latest_weights()
            parts.delta = correction(self.n_passages, self.n_entities, base, b.rows[0], rows, cols, weights)
        return parts

    def _latest_weights(self) -> tuple[IntArray, IntArray, npt.NDArray[np.float64]]:
        """Reader node pairs whose weight a later segment set, with the last value set."""
        n_p = self.n_passages
        rows, cols, weights = [], [], []
        for v in self.deltas:
            rows += [v.ints("pair_i") + n_p, v.ints("ctx_p")]
            cols += [v.ints("pair_j") + n_p, v.ints("ctx_e") + n_p]
            weights += [v.floats("pair_w"), v.floats("ctx_w")]
        r, c = np.concatenate(rows), np.concatenate(cols)
        w = np.concatenate(weights)
        if not len(r):
            return r, c, w
        key = r * (self.n_passages + self.n_entities) + c
        # the last occurrence of each key wins: unique over the reversed arrays
        _, first_rev = np.unique(key[::-1], return_index=True)
        last = len(key) - 1 - first_rev
        return r[last], c[last], w[last]

    def ann_path(self, name: str) -> Path | None:
        """The base's faiss index file of a vector set, when it has one."""
        if self.base.files.folder and self.base.files.has(f"{name}.ivf"):
            return self.base.files.file_path(f"{name}.ivf")
        return None
