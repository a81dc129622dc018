"""Writes to a living index: each add, update or delete is one new segment, committed at once.

A :class:`Writer` holds the index's writer lock for as long as it is open. It keeps the
:class:`~hippo.live.state.WriterState` and the entity search in memory between writes, so a
write costs what it adds: extraction and embedding of the new passages and strings, a
synonymy search for the new entities, the graph entries they change, and one small segment
plus the manifest (three fsyncs). When :meth:`Writer.add` returns, the write is durable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from hippo.config import Config
from hippo.corpus import dedupe_passages
from hippo.errors import HippoError, IdConflictError, UnknownIdsError
from hippo.live.base import fact_key
from hippo.live.segment import delta_members, meta_strings
from hippo.live.snapshot import Snapshot
from hippo.live.state import WriterState
from hippo.live.synonyms import EntitySearch
from hippo.protocols import Embedder, Extractor
from hippo.reuse import Stages
from hippo.store.workcache import WorkCache, settings_key
from hippo.store.segments import collect_garbage, commit, next_segment_number, write_segment
from hippo.store.strings import KeyLookup, NameLookup
from hippo.types import Extraction, Fact, Passage

FOLDER_ROWS = 20_000
"""A write adding at least this many passages gets a folder segment (memory-mapped when read)."""


@dataclass
class WriteReport:
    """What one write did (the ``changes`` of ``hippo index --json`` and friends)."""

    operation: str
    generation: int = 0
    ids: list[str] = field(default_factory=list)
    """Ids of the passages added or updated, in input order (an unchanged or duplicate one is not listed)."""
    passages: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("added", "updated", "removed", "unchanged", "duplicates"), 0))
    entities: dict[str, int] = field(default_factory=lambda: {"added": 0, "removed": 0})
    """``added``: live after the write and not before (new, or back after their passages were
    deleted); ``removed``: no live passage has them any more."""
    facts: dict[str, int] = field(default_factory=lambda: {"added": 0, "removed": 0})
    extracted: int = 0
    embedded: int = 0
    segment: dict[str, Any] = field(default_factory=dict)
    synonymy: dict[str, Any] = field(default_factory=dict)
    reused: dict[str, int] = field(default_factory=lambda: {"extractions": 0, "vectors": 0})
    """Extractions and vectors taken from the resume cache of an interrupted write."""
    counts: dict[str, Any] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """Whether anything was written."""
        return bool(self.segment)

    def to_dict(self) -> dict[str, Any]:
        """JSON shape."""
        return {
            "operation": self.operation, "generation": self.generation, "passages": self.passages,
            "entities": self.entities, "facts": self.facts, "extracted": self.extracted, "embedded": self.embedded,
            "synonymy": self.synonymy, "reused": self.reused, "segment": self.segment,
        }


def writer_state(snap: Snapshot, config: Config) -> WriterState:
    """The writer's model of the index a snapshot shows (base arrays + the later segments)."""
    b = snap.base
    names, rel = b.strings("entity_names"), b.strings("fact_relations")
    subj, obj = b.array("fact_subject"), b.array("fact_object")
    ids, contents = b.strings("passage_ids"), b.strings("passage_contents")
    arrays: dict[str, Any] = {name: np.asarray(b.array(name)) for name in (  # plain views: scalar reads of a memmap cost 6 us each
        "fact_passage_count", "entity_passage_count", "rel_key", "rel_count", "syn_indptr", "syn_nbr", "syn_cos",
        "fact_subject", "fact_object", "passage_fact_indptr", "passage_fact_indices")}
    arrays.update(n_passages=b.rows[0], n_entities=b.rows[1], n_facts=b.rows[2])
    f = b.files

    def table(stem: str) -> tuple[Any, Any]:
        return f.array(f"{stem}_hash.npy"), f.array(f"{stem}_rows.npy")

    lookups = {
        "entity_name": NameLookup(names, *table("entity_name")),
        "fact_key": KeyLookup(lambda r: fact_key(names[int(subj[r])], rel[r], names[int(obj[r])]), *table("fact_key")),
        "passage_id": KeyLookup(lambda r: ids[r], *table("passage_id")),
        "passage_content": KeyLookup(lambda r: contents[r], *table("passage_content")),
    }
    state = WriterState(config.graph, arrays, lookups, lambda e: names[e], lambda p: (ids[p], contents[p]), snap.manifest["counts"])
    for v in snap.deltas:
        ptr, idx = v.passage_facts()
        state.absorb(
            list(zip(v.strings("passage_ids"), v.strings("passage_contents"))),
            [np.asarray(idx[ptr[k] : ptr[k + 1]]) for k in range(v.rows[0])],
            list(v.strings("entity_names")),
            list(zip(v.ints("fact_subject").tolist(), v.strings("fact_relations"), v.ints("fact_object").tolist())),
            v.pairs(), (v.ints("fc_rows"), v.ints("fc_delta")), (v.ints("ec_rows"), v.ints("ec_delta")), v.ints("dead"),
        )
    return state


class Writer:
    """Adds to and deletes from the index at ``root`` (its writer lock must be held).

    ``make_extractor``/``make_embedder`` build the models on first need; the embedder must be
    the index's (checked by the caller)."""

    def __init__(
        self,
        root: Path,
        config: Config,
        make_extractor: Callable[[], Extractor],
        make_embedder: Callable[[], Embedder],
        progress: Callable[[str, int, int], None] | None = None,
        snapshot: Snapshot | None = None,
        runner: Any = None,
    ) -> None:
        self.root = root
        self.config = config
        self._make_extractor = make_extractor
        self._make_embedder = make_embedder
        self.progress = progress
        self.runner = runner
        self.dry = snapshot is not None
        """A writer over a given snapshot writes segments but commits nothing: :attr:`pending`
        lists what it wrote (a compaction replaying writes onto its new base)."""
        self.pending: list[dict[str, Any]] = []
        self.snapshot = snapshot if snapshot is not None else Snapshot.open(root)
        self._stages: Stages | None = None
        self._commit_start: float | None = None
        self.state = writer_state(self.snapshot, config)
        base_vecs, later = self.snapshot.vectors("entity")
        self.search = EntitySearch(base_vecs, later, self.snapshot.ann_path("entity_vectors"), config.retrieval.ann_nprobe)

    @property
    def manifest(self) -> dict[str, Any]:
        """The live manifest (this writer's last commit)."""
        return self.snapshot.manifest

    def close(self) -> None:
        """Release the segments this writer read."""
        self.snapshot.close()

    # ---------------------------------------------------------------- add
    def add(self, passages: Sequence[Passage], update: bool = False, source: str = "") -> WriteReport:
        """Add ``passages`` (see :meth:`hippo.engine.Engine.add`): new ids are added, ids present
        with the same content skipped, with other content replaced if ``update`` (else refused:
        nothing is written), and a content the index already has under another id is dropped."""
        t0 = time.perf_counter()
        report = WriteReport("update" if update else "add")
        incoming: list[Passage] = []
        replaced: list[int] = []
        dropped: list[int] = []  # replaced by a text another passage has: gone, and not added
        conflicts: list[str] = []
        for p in dedupe_passages(passages, "add") if passages else []:
            row = self.state.passage_row(p.id)
            if row is not None:
                if self._same(row, p):
                    report.passages["unchanged"] += 1
                elif update:
                    twin = self.state.content_row(p.content)
                    if twin is not None and twin != row:
                        dropped.append(row)
                        report.passages["duplicates"] += 1
                    else:
                        replaced.append(row)
                        incoming.append(p)
                else:
                    conflicts.append(p.id)
            elif self.state.content_row(p.content) is not None:
                report.passages["duplicates"] += 1
            else:
                incoming.append(p)
        if conflicts:
            shown = ", ".join(conflicts[:5]) + (f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else "")
            raise IdConflictError(
                f"{len(conflicts)} passage(s) are already in {self.root} with other text: {shown}; pass update=True "
                f"(--update) to replace them, or give them new ids; nothing was written", conflicts,
            )
        if not incoming and not dropped:
            if not self.dry:
                WorkCache(self.root).clear()  # left by a write that committed but died before clearing it
            report.timings_s["total"] = round(time.perf_counter() - t0, 4)
            report.counts = self.manifest["counts"]
            return report
        t = time.perf_counter()
        extractions = self._extract(incoming) if incoming else []
        report.extracted = len(incoming)
        if self._stages is not None:
            report.extracted = int(self._stages.stats["extracted"])
            report.reused["extractions"] = int(self._stages.stats["reused"]["extractions"])
        report.timings_s["extract"] = round(time.perf_counter() - t, 4)
        return self._commit(incoming, extractions, replaced, report, source, t0, dropped)

    def add_extracted(self, passages: Sequence[Passage], extractions: Sequence[Extraction], replaced: Sequence[int] = (),
                      source: str = "") -> WriteReport:
        """Add passages whose extractions are already known (a batch job, a resumed write)."""
        t0 = time.perf_counter()
        report = WriteReport("update" if replaced else "add")
        return self._commit(list(passages), list(extractions), list(replaced), report, source, t0)

    def _same(self, row: int, p: Passage) -> bool:
        snap = self._fresh()
        return bool(snap.passage_contents[row] == p.content and snap.passage_titles[row] == p.title
                    and snap.metadata(row) == dict(p.metadata))

    def _tick(self, stage: str) -> None:
        if self.progress is not None:
            self.progress(stage, 1, 1)

    def _fresh(self) -> Snapshot:
        if self.dry:
            return self.snapshot
        newer = self.snapshot.refresh()
        if newer is not None:
            self.snapshot = newer
        return self.snapshot

    def _extract(self, passages: Sequence[Passage]) -> list[Extraction]:
        extractor = self._make_extractor()
        built = self.manifest.get("extractor")
        if built and built["name"] != "prepared" and extractor.name != built["name"]:  # prepared: any extractor
            raise HippoError(
                f"{self.root} was built with extractor {built['name']}, not {extractor.name}; add to it with the same "
                f"extractor, or build a new index into another directory"
            )
        if len(passages) <= self.config.runtime.checkpoint_passages:
            return list(extractor.extract(passages))
        self._stages = self._stages or Stages(self.root, self.config, None, self.progress, self.runner)
        return self._stages.extract(passages, lambda: extractor)

    def _embed(self, texts: list[str], n_passages: int) -> Any:
        """Vectors of the passages (the first ``n_passages`` texts) and the short strings after
        them, in two calls: batched together, every entity name would be padded to the longest
        passage (several times the work)."""
        embedder = self._make_embedder()
        if len(texts) <= self.config.runtime.checkpoint_strings and self._stages is None:
            parts = [np.asarray(embedder.encode_documents(x), dtype=np.float32).reshape(len(x), -1)
                     for x in (texts[:n_passages], texts[n_passages:]) if x]
            if not parts:
                return np.zeros((0, embedder.dim), dtype=np.float32)
            return np.concatenate(parts) if len(parts) > 1 else parts[0]
        self._stages = self._stages or Stages(self.root, self.config, None, self.progress, self.runner)
        key = settings_key([embedder.id, self.config.embed.precision, self.config.embed.max_seq_length])
        return self._stages.embed(texts, lambda: embedder, key)

    def _commit(self, incoming: list[Passage], extractions: list[Extraction], replaced: list[int],
                report: WriteReport, source: str, t0: float, dropped: Sequence[int] = ()) -> WriteReport:
        state = self.state
        first = (state.n_p, state.n_e, state.n_f)
        state.begin()
        try:
            t_alloc = time.perf_counter()
            alloc = state.allocate(extractions, [(p.id, p.content) for p in incoming])
            fmt = self.config.embed.fact_format
            fact_texts = [Fact("", state.entity_name(s), r, state.entity_name(o)).as_text(fmt) for s, r, o in alloc.new_facts]
            texts = [p.content for p in incoming] + alloc.new_entities + fact_texts
            embedder = self._make_embedder()
            t = time.perf_counter()
            alloc_s = t - t_alloc
            vecs = self._embed(texts, len(incoming))
            report.embedded = len(texts)
            if self._stages is not None:
                report.embedded = int(self._stages.stats["embedded"])
                report.reused["vectors"] = int(self._stages.stats["reused"]["vectors"])
            report.timings_s["embed"] = round(time.perf_counter() - t, 4)
            t_commit = time.perf_counter() - alloc_s  # the commit part: everything after extraction and embedding
            t = time.perf_counter()
            n_p, n_e = len(incoming), len(alloc.new_entities)
            ent_vecs = vecs[n_p : n_p + n_e]
            self._tick("synonymy")
            pairs = self.search.candidates(ent_vecs, first[1], self.config.graph.synonymy_threshold)
            self._commit_start = t_commit
            report.synonymy = {"new_entities": n_e, "entities": state.n_e, "pairs_scored": self.search.last_scored,
                               "candidates": len(pairs[0])}
            self._tick("graph")
            change = state.change(list(range(first[0], first[0] + n_p)), [*replaced, *dropped], pairs)
            members, meta = delta_members(
                first,
                [(p.id, p.title, p.content, s) for p, s in zip(incoming, meta_strings([p.metadata for p in incoming]))],
                alloc.passage_facts, vecs[:n_p], alloc.new_entities, ent_vecs, alloc.new_facts, vecs[n_p + n_e :],
                pairs, change, [*replaced, *dropped],
                [{"passage_id": e.passage_id, "entities": list(e.entities), "triples": [list(x) for x in e.triples]}
                 for e in extractions],
                int(vecs.shape[1]) if vecs.ndim == 2 else embedder.dim,
            )
            report.timings_s["graph"] = round(time.perf_counter() - t, 4)
            report.passages["added"] = n_p - len(replaced)
            report.passages["updated"] = len(replaced)
            report.passages["removed"] = len(dropped)
            report.entities = {"added": change.born["entities"], "removed": change.died["entities"]}
            report.facts = {"added": change.born["facts"], "removed": change.died["facts"]}
            report.ids = [p.id for p in incoming]
            counts = dict(change.counts)
            counts["triples_dropped"] = int(counts.get("triples_dropped", 0)) + alloc.dropped
            embed_desc = {"id": embedder.id, "dim": int(embedder.dim), "precision": self.config.embed.precision}
            self._write(members, meta, counts, report, source, t0, embedder=embed_desc)
            self._commit_start = None
        except BaseException:
            self._commit_start = None
            state.rollback()
            self._stages = None
            raise
        state.commit()
        self.search.absorb(ent_vecs)
        if self._stages is not None:
            WorkCache(self.root).clear()  # everything the resume cache held is now in the index
            self._stages = None
        return report

    # ---------------------------------------------------------------- delete
    def delete(self, ids: Sequence[str], missing_ok: bool = False, source: str = "") -> WriteReport:
        """Tombstone the passages with these ids. Unknown ids are refused (nothing is deleted)
        unless ``missing_ok``; the report's ``ids`` lists the ids deleted."""
        t0 = time.perf_counter()
        report = WriteReport("delete")
        wanted = list(dict.fromkeys(ids))
        rows = {pid: self.state.passage_row(pid) for pid in wanted}
        unknown = [pid for pid, row in rows.items() if row is None]
        if unknown and not missing_ok:
            shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            raise UnknownIdsError(
                f"{len(unknown)} of {len(wanted)} id(s) are not in {self.root}: {shown}; nothing was deleted "
                f"(`hippo info {self.root}` counts the passages; ids are listed by `hippo export`)", unknown,
            )
        gone = [int(r) for r in rows.values() if r is not None]
        report.ids = [pid for pid, r in rows.items() if r is not None]
        if not gone:
            report.counts = self.manifest["counts"]
            return report
        state = self.state
        state.begin()
        try:
            empty = np.zeros(0, np.int64)
            change = state.change([], gone, (empty, empty, np.zeros(0, np.float32)))
            dim = int(self.manifest.get("embedder", {}).get("dim", 0) or 0)
            members, meta = delta_members((state.n_p, state.n_e, state.n_f), [], [], np.zeros((0, dim)), [], np.zeros((0, dim)),
                                          [], np.zeros((0, dim)), (empty, empty, np.zeros(0, np.float32)), change, gone, [], dim)
            report.passages["removed"] = len(gone)
            report.entities = {"added": change.born["entities"], "removed": change.died["entities"]}
            report.facts = {"added": change.born["facts"], "removed": change.died["facts"]}
            self._write(members, meta, dict(change.counts), report, source or f"{len(gone)} ids", t0)
        except BaseException:
            state.rollback()
            raise
        state.commit()
        return report

    # ---------------------------------------------------------------- commit
    def _write(self, members: dict[str, Any], meta: dict[str, Any], counts: dict[str, Any], report: WriteReport,
               source: str, t0: float, embedder: dict[str, Any] | None = None) -> None:
        t = time.perf_counter()
        self._tick("write")
        old = self.manifest
        number = next_segment_number(self.root, old)
        folder = meta["rows"][0] >= FOLDER_ROWS
        entry = write_segment(self.root, number, members, meta, folder=folder)
        entry.update(kind="delta", rows=meta["rows"])
        counts["tombstones"] = int(counts.get("tombstones", 0)) + len(members["dead.npy"])
        counts["segments"] = len(old["segments"]) + 1
        manifest = {
            **old,
            "generation": int(old["generation"]) + 1,
            "segments": [*old["segments"], entry],
            "counts": counts,
            "totals": {"passages": self.state.n_p, "entities": self.state.n_e, "facts": self.state.n_f},
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "operation": report.operation,
        }
        if embedder is not None and not old.get("embedder"):
            manifest["embedder"] = embedder
        if not old.get("extractor") and report.extracted:
            ex = self._make_extractor()
            manifest["extractor"] = {"name": ex.name, "settings": ex.settings()}
        history = {
            "generation": manifest["generation"], "time": manifest["time"], "operation": report.operation,
            "source": source, "passages": {k: report.passages[k] for k in ("added", "updated", "removed")},
            "segment": entry["name"], "counts": {k: counts[k] for k in ("passages", "entities", "facts")},
            "seconds": round(time.perf_counter() - t0, 4),
        }
        report.generation = manifest["generation"]
        report.segment = entry
        report.counts = counts
        if self.dry:
            self.pending.append(entry)
            self.snapshot = self.snapshot.extend(manifest)
            return
        commit(self.root, manifest, history)
        self._tick("commit")
        report.timings_s["write"] = round(time.perf_counter() - t, 4)
        report.timings_s["total"] = round(time.perf_counter() - t0, 4)
        if self._commit_start is not None:
            report.timings_s["commit"] = round(time.perf_counter() - self._commit_start, 4)
        self._fresh()
        collect_garbage(self.root)
