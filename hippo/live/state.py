"""What a write needs to know about a living index, and the change it makes (no IO).

:class:`WriterState` is the live index as a writer sees it: the base segment's arrays
(memory maps) plus in-memory overlays for everything the segments after it changed. A write
asks it to number new entities and facts (:meth:`WriterState.allocate`) and then to compute
its change (:meth:`WriterState.change`): the count deltas, the new synonymy candidates, and
the new absolute weight of exactly the graph entries whose inputs changed
(:mod:`hippo.graph.delta`). Applying a change updates the overlays; :meth:`rollback` undoes
everything since :meth:`begin` when the commit fails.

Rows are global and append-only: passages, entities and facts of segment ``k`` follow those
of segment ``k - 1``. A deleted passage keeps its row (a tombstone) until a compaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from hippo.config import GraphConfig
from hippo.graph.delta import accepted, edge_kinds, pair_key, pair_weights, split_key
from hippo.ids import alnum_count, normalize
from hippo.live.base import fact_key
from hippo.types import Extraction

IntArray = npt.NDArray[np.int64]
_MISSING = object()


@dataclass
class Allocation:
    """New passages normalised: their fact rows, and the entities and facts they created."""

    passage_facts: list[IntArray]
    new_entities: list[str] = field(default_factory=list)
    new_facts: list[tuple[int, str, int]] = field(default_factory=list)
    """(subject row, relation, object row) of each new fact, in row order."""
    dropped: int = 0


@dataclass
class Change:
    """One write's effect on the graph and counts, in global rows (what a delta segment stores)."""

    pair_i: IntArray
    pair_j: IntArray
    pair_w: npt.NDArray[np.float64]
    """New absolute adjacency weight of every entity pair whose weight changed (i < j)."""
    ctx_p: IntArray
    ctx_e: IntArray
    ctx_w: npt.NDArray[np.float64]
    """Passage-entity entries that appeared (weight 1) or went (weight 0)."""
    ec_rows: IntArray
    ec_delta: IntArray
    fc_rows: IntArray
    fc_delta: IntArray
    counts: dict[str, Any]
    """Live counts after the change: passages, entities, facts, nodes, edges by kind."""
    born: dict[str, int] = field(default_factory=dict)
    """Entities and facts some live passage has after the change and none had before (new
    ones, and ones whose passages had all been deleted)."""
    died: dict[str, int] = field(default_factory=dict)
    """Entities and facts no live passage has any more after the change."""


class WriterState:
    """The writer's model of a living index (see the module docstring).

    ``base`` gives the base segment's arrays by name (``fact_passage_count``, ``syn_indptr``...),
    ``names``/``fact_rows``/``passage_rows``/``content_rows`` are its hashed lookups
    (``name -> row``), ``entity_name(row)`` its names; ``counts`` the live counts of the
    manifest. Segments after the base are folded in with :meth:`absorb`.
    """

    def __init__(
        self,
        config: GraphConfig,
        base: Mapping[str, Any],
        lookups: Mapping[str, Mapping[str, int]],
        base_entity_name: Callable[[int], str],
        base_passage: Callable[[int], tuple[str, str]],
        counts: Mapping[str, Any],
    ) -> None:
        self.config = config
        self.reference = config.edge_weights == "reference"
        self.base_n = (int(base["n_passages"]), int(base["n_entities"]), int(base["n_facts"]))
        self.n_p, self.n_e, self.n_f = self.base_n
        self._fc_base = base["fact_passage_count"]
        self._ec_base = base["entity_passage_count"]
        self._rel_key = base["rel_key"]
        self._rel_count = base["rel_count"]
        self._syn_ptr, self._syn_nbr, self._syn_cos = base["syn_indptr"], base["syn_nbr"], base["syn_cos"]
        self._subj_base, self._obj_base = base["fact_subject"], base["fact_object"]
        self._pf_ptr, self._pf_idx = base["passage_fact_indptr"], base["passage_fact_indices"]
        self._lookups = lookups
        self._base_name = base_entity_name
        self._base_passage = base_passage
        self.counts: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in counts.items()}
        self.fc: dict[int, int] = {}
        self.ec: dict[int, int] = {}
        self.rel: dict[int, int] = {}
        self.syn_extra: dict[int, list[tuple[float, int]]] = {}
        self.names: dict[str, int] = {}
        self.fact_rows: dict[str, int] = {}
        self.pids: dict[str, int] = {}
        self.contents: dict[str, int] = {}
        self.dead: set[int] = set()
        self.new_names: list[str] = []
        self.new_subj: list[int] = []
        self.new_obj: list[int] = []
        self.new_passages: list[tuple[str, str]] = []
        self.new_passage_facts: list[IntArray] = []
        self._eligible: dict[int, bool] = {}
        self._undo: list[tuple[Any, Any, Any]] | None = None

    # ---------------------------------------------------------------- undo log
    def begin(self) -> None:
        """Start recording changes so that :meth:`rollback` can undo them."""
        self._undo = []

    def commit(self) -> None:
        """Keep every change since :meth:`begin`."""
        self._undo = None

    def rollback(self) -> None:
        """Undo every change since :meth:`begin` (the write failed before its commit)."""
        for target, key, old in reversed(self._undo or []):
            if isinstance(target, list):
                del target[key:]
            elif isinstance(target, set):
                target.discard(key)
            elif target is self:
                setattr(self, key, old)
            elif old is _MISSING:
                target.pop(key, None)
            else:
                target[key] = old
        self._undo = None

    def _set(self, d: dict[Any, Any], key: Any, value: Any) -> None:
        if self._undo is not None:
            self._undo.append((d, key, d.get(key, _MISSING)))
        d[key] = value

    def _append(self, lst: list[Any], value: Any) -> None:
        if self._undo is not None:
            self._undo.append((lst, len(lst), None))
        lst.append(value)

    def _attr(self, name: str, value: Any) -> None:
        if self._undo is not None:
            self._undo.append((self, name, getattr(self, name)))
        setattr(self, name, value)

    # ---------------------------------------------------------------- reading
    def fact_count(self, f: int) -> int:
        """Live passages stating fact ``f``."""
        got = self.fc.get(f)
        if got is not None:
            return got
        return int(self._fc_base[f]) if f < self.base_n[2] else 0

    def entity_count(self, e: int) -> int:
        """Live passages containing entity ``e`` (|C(e)|)."""
        got = self.ec.get(e)
        if got is not None:
            return got
        return int(self._ec_base[e]) if e < self.base_n[1] else 0

    def relation_count(self, key: int) -> int:
        """Statements of facts joining the entity pair ``key``."""
        got = self.rel.get(key)
        if got is not None:
            return got
        pos = int(np.searchsorted(self._rel_key, key))
        if pos < len(self._rel_key) and int(self._rel_key[pos]) == key:
            return int(self._rel_count[pos])
        return 0

    def candidates(self, e: int) -> list[tuple[float, int]]:
        """Every synonymy candidate of entity ``e`` as ``(cos, neighbour)``."""
        out: list[tuple[float, int]] = []
        if e < self.base_n[1]:
            lo, hi = int(self._syn_ptr[e]), int(self._syn_ptr[e + 1])
            if hi > lo:
                out = list(zip(np.asarray(self._syn_cos[lo:hi]).tolist(), np.asarray(self._syn_nbr[lo:hi]).tolist()))
        out.extend(self.syn_extra.get(e, ()))
        return out

    def entity_name(self, e: int) -> str:
        """The normalised name of entity ``e``."""
        return self._base_name(e) if e < self.base_n[1] else self.new_names[e - self.base_n[1]]

    def fact_entities(self, f: int) -> tuple[int, int]:
        """(subject, object) rows of fact ``f``."""
        if f < self.base_n[2]:
            return int(self._subj_base[f]), int(self._obj_base[f])
        k = f - self.base_n[2]
        return self.new_subj[k], self.new_obj[k]

    def passage_facts(self, p: int) -> IntArray:
        """The fact rows passage ``p`` states."""
        if p < self.base_n[0]:
            return np.asarray(self._pf_idx[int(self._pf_ptr[p]) : int(self._pf_ptr[p + 1])], dtype=np.int64)
        return self.new_passage_facts[p - self.base_n[0]]

    def passage(self, p: int) -> tuple[str, str]:
        """(id, content) of passage row ``p``."""
        return self._base_passage(p) if p < self.base_n[0] else self.new_passages[p - self.base_n[0]]

    def passage_row(self, pid: str) -> int | None:
        """The live row of passage id ``pid``, or None."""
        row = self.pids.get(pid)
        if row is None:
            row = self._lookups["passage_id"].get(pid)
        return None if row is None or row in self.dead else int(row)

    def content_row(self, content: str) -> int | None:
        """The live row of a passage with exactly this content, or None."""
        row = self.contents.get(content)
        if row is None:
            row = self._lookups["passage_content"].get(content)
        return None if row is None or row in self.dead else int(row)

    def entity_row(self, name: str) -> int | None:
        """The row of the entity with this normalised name (live or not), or None."""
        row = self.names.get(name)
        return row if row is not None else self._lookups["entity_name"].get(name)

    def fact_row(self, key: str) -> int | None:
        """The row of the fact with this key (:func:`~hippo.live.base.fact_key`), or None."""
        row = self.fact_rows.get(key)
        return row if row is not None else self._lookups["fact_key"].get(key)

    def eligible(self, e: int) -> bool:
        """Whether entity ``e`` looks for synonyms of its own (enough letters/digits)."""
        got = self._eligible.get(e)
        if got is None:
            got = self._eligible[e] = alnum_count(self.entity_name(e)) >= self.config.synonymy_min_chars
        return got

    def accepted_by(self, e: int) -> frozenset[int]:
        """The neighbours entity ``e`` accepts as synonyms now (none when it is not live)."""
        return accepted(
            self.candidates(e), lambda n: self.entity_count(n) > 0,
            self.eligible(e) and self.entity_count(e) > 0, self.config.synonymy_max_neighbors,
        )

    def pair_cos(self, i: int, j: int) -> float:
        """The cosine of a candidate pair (0 when the pair is no candidate)."""
        for cos, nbr in self.candidates(i):
            if nbr == j:
                return cos
        return 0.0

    # ---------------------------------------------------------------- writing
    def allocate(self, extractions: Sequence[Extraction], passages: Sequence[tuple[str, str]]) -> Allocation:
        """Normalise the triples of new passages (``(id, content)`` each, with its extraction)
        and give new entities and facts the next rows, numbered by first appearance as
        :func:`hippo.kb.build_kb` numbers them. Passages get the next passage rows."""
        out = Allocation([])
        for (pid, content), ex in zip(passages, extractions):
            seen: set[int] = set()
            facts: list[int] = []
            for s_raw, r_raw, o_raw in ex.triples:
                s, r, o = normalize(s_raw), normalize(r_raw), normalize(o_raw)
                if not s or not o:
                    out.dropped += 1
                    continue
                key = fact_key(s, r, o)
                f = self.fact_row(key)
                if f is None:
                    si, oi = self._entity(s, out), self._entity(o, out)
                    f = self.n_f
                    self._attr("n_f", self.n_f + 1)
                    self._set(self.fact_rows, key, f)
                    self._append(self.new_subj, si)
                    self._append(self.new_obj, oi)
                    out.new_facts.append((si, r, oi))
                if f not in seen:
                    seen.add(f)
                    facts.append(f)
            row = self.n_p
            self._attr("n_p", self.n_p + 1)
            self._set(self.pids, pid, row)
            self._set(self.contents, content, row)
            self._append(self.new_passages, (pid, content))
            arr = np.asarray(facts, dtype=np.int64)
            self._append(self.new_passage_facts, arr)
            out.passage_facts.append(arr)
        return out

    def _entity(self, name: str, out: Allocation) -> int:
        e = self.entity_row(name)
        if e is None:
            e = self.n_e
            self._attr("n_e", self.n_e + 1)
            self._set(self.names, name, e)
            self._append(self.new_names, name)
            out.new_entities.append(name)
        return e

    def change(
        self,
        added: Sequence[int],
        deleted: Iterable[int],
        new_pairs: tuple[IntArray, IntArray, npt.NDArray[np.float32]],
    ) -> Change:
        """The change of adding passage rows ``added`` (allocated) and deleting the live rows
        ``deleted``, with ``new_pairs`` the synonymy candidates of the new entities; the state
        is updated to after it."""
        deleted = list(deleted)
        fc_d: dict[int, int] = {}
        ec_d: dict[int, int] = {}
        ctx: dict[tuple[int, int], float] = {}
        for sign, rows in ((1, list(added)), (-1, list(deleted))):
            for p in rows:
                facts = self.passage_facts(p)
                ents: dict[int, None] = {}
                for f in facts.tolist():
                    fc_d[f] = fc_d.get(f, 0) + sign
                    s, o = self.fact_entities(f)
                    ents[s] = ents[o] = None
                for e in ents:
                    ec_d[e] = ec_d.get(e, 0) + sign
                    ctx[(p, e)] = 1.0 if sign > 0 else 0.0
                if sign < 0:
                    self._undo_add(self.dead, p)
        rel_d: dict[int, int] = {}
        for f, d in fc_d.items():
            s, o = self.fact_entities(f)
            if d and s != o:
                k = pair_key(s, o)
                rel_d[k] = rel_d.get(k, 0) + d
        life = [e for e, d in ec_d.items() if d and (self.entity_count(e) > 0) != (self.entity_count(e) + d > 0)]
        pi, pj, pcos = (np.asarray(x) for x in new_pairs)
        touched = set(pi.tolist()) | set(pj.tolist()) | set(life)
        for e in life:
            touched.update(n for _, n in self.candidates(e))
        old_acc = {e: self.accepted_by(e) for e in touched}
        fact_moves = [(1 if self.fact_count(f) + d > 0 else 0) - (1 if self.fact_count(f) > 0 else 0) for f, d in fc_d.items()]
        entity_moves = [1 if self.entity_count(e) + d > 0 else -1 for e, d in ec_d.items() if e in life]
        fact_life, entity_life = sum(fact_moves), sum(entity_moves)
        born = {"entities": entity_moves.count(1), "facts": fact_moves.count(1)}
        died = {"entities": entity_moves.count(-1), "facts": fact_moves.count(-1)}
        for f, d in fc_d.items():
            self._set(self.fc, f, self.fact_count(f) + d)
        for e, d in ec_d.items():
            self._set(self.ec, e, self.entity_count(e) + d)
        for k, d in rel_d.items():
            self._set(self.rel, k, self.relation_count(k) + d)
        for i, j, c in zip(pi.tolist(), pj.tolist(), pcos.tolist()):
            for a, b in ((i, j), (j, i)):
                lst = self.syn_extra.get(a)
                if lst is None:
                    self._set(self.syn_extra, a, [])
                    lst = self.syn_extra[a]
                self._append(lst, (float(c), b))
        new_acc = {e: self.accepted_by(e) for e in touched}
        affected = {k for k, d in rel_d.items() if d}
        for e in touched:
            for n in old_acc[e] ^ new_acc[e]:
                affected.add(pair_key(e, n))
        out = self._weights(affected, rel_d, old_acc, new_acc, fc_d, ec_d, ctx, fact_life, entity_life, len(added), len(deleted))
        out.born, out.died = born, died
        return out

    def _undo_add(self, s: set[int], value: int) -> None:
        if value in s:
            return
        if self._undo is not None:
            self._undo.append((s, value, None))
        s.add(value)

    def _weights(
        self, affected: set[int], rel_d: dict[int, int], old_acc: dict[int, frozenset[int]],
        new_acc: dict[int, frozenset[int]], fc_d: dict[int, int], ec_d: dict[int, int],
        ctx: dict[tuple[int, int], float], fact_life: int, entity_life: int, n_added: int, n_deleted: int,
    ) -> Change:
        keys = sorted(affected)
        current: dict[int, frozenset[int]] = {}

        def acc_of(e: int, table: dict[int, frozenset[int]]) -> frozenset[int]:
            got = table.get(e)
            if got is None:
                got = current.get(e)
                if got is None:
                    got = current[e] = self.accepted_by(e)
            return got

        ii, jj, rel_new, rel_old, acc_new, acc_old, cos = [], [], [], [], [], [], []
        for k in keys:
            i, j = split_key(k)
            r = self.relation_count(k)
            ii.append(i)
            jj.append(j)
            rel_new.append(r)
            rel_old.append(r - rel_d.get(k, 0))
            acc_new.append(int(j in acc_of(i, new_acc)) + int(i in acc_of(j, new_acc)))
            acc_old.append(int(j in acc_of(i, old_acc)) + int(i in acc_of(j, old_acc)))
            cos.append(self.pair_cos(i, j) if acc_new[-1] or acc_old[-1] else 0.0)
        w_new = pair_weights(rel_new, acc_new, np.asarray(cos, dtype=np.float32), self.reference)
        w_old = pair_weights(rel_old, acc_old, np.asarray(cos, dtype=np.float32), self.reference)
        edges = dict(self.counts["edges"])
        for rn, ro, an, ao in zip(rel_new, rel_old, acc_new, acc_old):
            (rel_n, syn_n), (rel_o, syn_o) = edge_kinds(rn, an, self.reference), edge_kinds(ro, ao, self.reference)
            edges["relation"] += int(rel_n) - int(rel_o)
            edges["synonym"] += int(syn_n) - int(syn_o)
        edges["context"] += sum(1 if w > 0 else -1 for w in ctx.values())
        changed = np.flatnonzero(w_new != w_old)
        counts = dict(self.counts)
        counts["passages"] = int(counts["passages"]) + n_added - n_deleted
        counts["entities"] = int(counts["entities"]) + entity_life
        counts["facts"] = int(counts["facts"]) + fact_life
        counts["nodes"] = counts["passages"] + counts["entities"]
        counts["edges"] = edges
        self._attr("counts", counts)
        ctx_keys = sorted(ctx)

        def ints(values: Iterable[int]) -> IntArray:
            return np.fromiter(values, dtype=np.int64)

        ec_rows = sorted(e for e, d in ec_d.items() if d)
        fc_rows = sorted(f for f, d in fc_d.items() if d)
        return Change(
            pair_i=np.asarray(ii, dtype=np.int64)[changed], pair_j=np.asarray(jj, dtype=np.int64)[changed],
            pair_w=w_new[changed],
            ctx_p=ints(p for p, _ in ctx_keys), ctx_e=ints(e for _, e in ctx_keys),
            ctx_w=np.fromiter((ctx[k] for k in ctx_keys), dtype=np.float64),
            ec_rows=ints(ec_rows), ec_delta=ints(ec_d[e] for e in ec_rows),
            fc_rows=ints(fc_rows), fc_delta=ints(fc_d[f] for f in fc_rows),
            counts=counts,
        )

    def absorb(
        self,
        passages: Sequence[tuple[str, str]],
        passage_facts: Sequence[IntArray],
        entity_names: Sequence[str],
        facts: Sequence[tuple[int, str, int]],
        pairs: tuple[IntArray, IntArray, npt.NDArray[np.float32]],
        fc: tuple[IntArray, IntArray],
        ec: tuple[IntArray, IntArray],
        dead: IntArray,
    ) -> None:
        """Fold in a committed segment after the base (when a writer opens the index): its
        passages ``(id, content)`` and their fact rows, its new entities and facts, its new
        synonymy candidates, count deltas and tombstones."""
        for name in entity_names:
            self.names[name] = self.n_e
            self.new_names.append(name)
            self.n_e += 1
        for s, r, o in facts:
            self.fact_rows[fact_key(self.entity_name(s), r, self.entity_name(o))] = self.n_f
            self.new_subj.append(s)
            self.new_obj.append(o)
            self.n_f += 1
        for (pid, content), pf in zip(passages, passage_facts):
            self.pids[pid] = self.n_p
            self.contents[content] = self.n_p
            self.new_passages.append((pid, content))
            self.new_passage_facts.append(np.asarray(pf, dtype=np.int64))
            self.n_p += 1
        for i, j, c in zip(*(np.asarray(x).tolist() for x in pairs)):
            self.syn_extra.setdefault(int(i), []).append((float(c), int(j)))
            self.syn_extra.setdefault(int(j), []).append((float(c), int(i)))
        for f, d in zip(*(np.asarray(x).tolist() for x in fc)):
            self.fc[f] = self.fact_count(f) + d
            s, o = self.fact_entities(f)
            if s != o:
                k = pair_key(s, o)
                self.rel[k] = self.relation_count(k) + d
        for e, d in zip(*(np.asarray(x).tolist() for x in ec)):
            self.ec[e] = self.entity_count(e) + d
        self.dead.update(np.asarray(dead).tolist())
