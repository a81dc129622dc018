"""What the members of a segment mean: typed, lazy access to one segment, and the members of a
delta segment from a write's change.

Every segment holds the passages, entities and facts it added (their strings, vectors, the
facts each passage states as global fact rows, the entities of each fact as global entity
rows, raw extractions) and the synonymy candidates of its new entities. A base segment (the
first) also holds its whole graph and lookups (:mod:`hippo.live.base`). A delta segment also
holds its change (:class:`hippo.live.state.Change`): the new absolute weight of the entity
pairs and passage-entity entries it changed, count deltas, and the passages it tombstoned.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from hippo.live.state import Change
from hippo.store.segments import SegmentFiles, string_members
from hippo.store.strings import StringTable

IntArray = npt.NDArray[np.int64]
_I = np.zeros(0, dtype=np.int64)
_F = np.zeros(0, dtype=np.float64)


class SegmentView:
    """One open segment, its members as typed arrays and sequences (read on first use)."""

    def __init__(self, files: SegmentFiles) -> None:
        self.files = files
        meta = files.meta
        self.name = files.name
        self.kind: str = meta["kind"]
        self.first: tuple[int, int, int] = tuple(int(x) for x in meta["first"])  # type: ignore[assignment]
        self.rows: tuple[int, int, int] = tuple(int(x) for x in meta["rows"])  # type: ignore[assignment]
        self.dim = int(meta.get("dim", 0))
        self._arrays: dict[str, Any] = {}
        self._tables: dict[str, Sequence[str]] = {}
        self._columns: dict[str, list[str]] = {}

    @property
    def is_base(self) -> bool:
        """Whether this is the base segment (it holds a whole graph)."""
        return self.kind == "base"

    def array(self, name: str) -> Any:
        """The member ``name.npy`` (read once, then kept)."""
        got = self._arrays.get(name)
        if got is None:
            got = self._arrays[name] = self.files.array(f"{name}.npy")
        return got

    def ints(self, name: str) -> IntArray:
        """An integer member, or an empty array when the segment lacks it."""
        return self.array(name) if self.files.has(f"{name}.npy") else _I

    def floats(self, name: str) -> npt.NDArray[np.float64]:
        """A float member, or an empty array when the segment lacks it."""
        return self.array(name) if self.files.has(f"{name}.npy") else _F

    def strings(self, stem: str) -> Sequence[str]:
        """A packed string table (empty when absent)."""
        got = self._tables.get(stem)
        if got is None:
            if not self.files.has(f"{stem}.off.npy"):
                got = StringTable(np.zeros(0, np.uint8), np.zeros(1, np.int64))
            else:
                got = self.files.strings(stem)
            self._tables[stem] = got
        return got

    @property
    def passage_meta(self) -> Sequence[str] | None:
        """One JSON string per passage ("" = none), or None when no passage has metadata."""
        return self.strings("passage_meta") if self.files.has("passage_meta.off.npy") else None

    def meta_column(self, key: str) -> list[str]:
        """The metadata value ``key`` of every passage this segment added, as a string ("" where
        absent); parsed once per segment and key."""
        got = self._columns.get(key)
        if got is None:
            table = self.passage_meta
            got = [""] * self.rows[0] if table is None else [_meta_value(text, key) for text in table]
            self._columns[key] = got
        return got

    def vectors(self, which: str) -> Any:
        """``passage``, ``entity`` or ``fact`` vectors (rows, d)."""
        return self.array(f"{which}_vectors")

    def passage_facts(self) -> tuple[IntArray, IntArray]:
        """(local indptr, global fact rows) of the passages this segment added."""
        return self.ints("passage_fact_indptr"), self.ints("passage_fact_indices")

    def pairs(self) -> tuple[IntArray, IntArray, npt.NDArray[np.float32]]:
        """The synonymy candidates this segment found: (i, j, cos), global entity rows, i < j."""
        pairs = self.ints("synonym_candidates").reshape(-1, 2)
        cos = self.files.optional("synonym_candidate_cos.npy", np.zeros(0, np.float32))
        return pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64), np.asarray(cos, dtype=np.float32)

    def extractions(self) -> list[dict[str, Any]]:
        """Raw extraction records of the passages added (empty for prepared data)."""
        return self.files.jsonl("extractions.jsonl")


def _meta_value(text: str, key: str) -> str:
    value = json.loads(text).get(key) if text else None
    return "" if value is None else str(value)


def meta_strings(metadata: Sequence[Any]) -> list[str]:
    """One canonical JSON string per passage metadata mapping ("" for none)."""
    return [json.dumps(dict(m), ensure_ascii=False, sort_keys=True) if m else "" for m in metadata]


def delta_members(
    first: tuple[int, int, int],
    passages: Sequence[tuple[str, str, str, str]],
    passage_facts: Sequence[IntArray],
    passage_vectors: Any,
    entity_names: Sequence[str],
    entity_vectors: Any,
    facts: Sequence[tuple[int, str, int]],
    fact_vectors: Any,
    pairs: tuple[IntArray, IntArray, npt.NDArray[np.float32]],
    change: Change,
    dead: Sequence[int],
    extractions: Sequence[dict[str, Any]],
    dim: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(members, meta) of a delta segment: ``passages`` are ``(id, title, content, meta JSON)``,
    ``facts`` ``(subject row, relation, object row)``; rows are global."""
    indptr = np.zeros(len(passage_facts) + 1, dtype=np.int64)
    if passage_facts:
        np.cumsum([len(f) for f in passage_facts], out=indptr[1:])
    members: dict[str, Any] = {
        "passage_vectors.npy": np.asarray(passage_vectors, dtype=np.float32).reshape(-1, dim),
        "entity_vectors.npy": np.asarray(entity_vectors, dtype=np.float32).reshape(-1, dim),
        "fact_vectors.npy": np.asarray(fact_vectors, dtype=np.float32).reshape(-1, dim),
        "passage_fact_indptr.npy": indptr,
        "passage_fact_indices.npy": np.concatenate([*passage_facts, _I]).astype(np.int64),
        "fact_subject.npy": np.asarray([f[0] for f in facts], dtype=np.int64),
        "fact_object.npy": np.asarray([f[2] for f in facts], dtype=np.int64),
        "synonym_candidates.npy": np.stack([np.asarray(pairs[0], np.int64), np.asarray(pairs[1], np.int64)], axis=1).reshape(-1, 2),
        "synonym_candidate_cos.npy": np.asarray(pairs[2], dtype=np.float32),
        "pair_i.npy": change.pair_i, "pair_j.npy": change.pair_j, "pair_w.npy": change.pair_w,
        "ctx_p.npy": change.ctx_p, "ctx_e.npy": change.ctx_e, "ctx_w.npy": change.ctx_w,
        "ec_rows.npy": change.ec_rows, "ec_delta.npy": change.ec_delta,
        "fc_rows.npy": change.fc_rows, "fc_delta.npy": change.fc_delta,
        "dead.npy": np.asarray(sorted(dead), dtype=np.int64),
        **string_members("passage_ids", [p[0] for p in passages]),
        **string_members("passage_titles", [p[1] for p in passages]),
        **string_members("passage_contents", [p[2] for p in passages]),
        **string_members("entity_names", entity_names),
        **string_members("fact_relations", [f[1] for f in facts]),
    }
    if any(p[3] for p in passages):
        members.update(string_members("passage_meta", [p[3] for p in passages]))
    if extractions:
        members["extractions.jsonl"] = list(extractions)
    meta = {
        "kind": "delta", "first": list(first), "rows": [len(passages), len(entity_names), len(facts)], "dim": dim,
    }
    return members, meta
