"""Compaction: every segment of an index merged into one new base, as a from-scratch build of
its live passages would write it; and the policy that decides when to merge.

A compaction takes the snapshot of one commit, builds the new base from it (the live passages
in row order, facts and entities renumbered by first appearance, dead ones dropped, stored
vectors and synonymy candidates reused: nothing is extracted or embedded) into a staging
folder, without holding the writer's mutex: writes go on meanwhile. Then, holding the mutex,
it replays the writes that committed during the merge onto the new base (their passages,
extractions and vectors are in their segments, so a replay is the graph work of those
writes only), moves the new segments into the index and commits one manifest listing them.
A crash at any point leaves the previous manifest and its segments; the staging folder of a
dead compaction is deleted by the next one.

The tiered policy (:func:`due`): compact when the later segments hold at least
``runtime.compact_ratio`` times the base's passages (or ``runtime.compact_min_rows``), or when
tombstones reach that share of the passages; otherwise, when there are more than
``runtime.max_segments`` segments, merge a run of the smallest ones (at most
``runtime.merge_factor``) into one (:func:`merge`): no row moves, so nothing is replayed.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hippo.config import Config
from hippo.live.base import base_members
from hippo.live.build import live_base
from hippo.live.snapshot import Snapshot
from hippo.live.writer import FOLDER_ROWS, Writer
from hippo.store.segments import (
    OpenIndex, SegmentFiles, collect_garbage, commit, next_segment_number, string_members, write_segment,
)
from hippo.types import Extraction, Fact, Passage

if TYPE_CHECKING:
    from hippo.live.memory import MemoryWriter

STAGING = ".compacting"


def due(manifest: dict[str, Any], config: Config) -> str:
    """What the tiered policy asks for the index this manifest describes: ``compact`` (merge
    everything into a new base), ``merge`` (merge the newest small segments into one), or ""."""
    segments = manifest["segments"]
    if len(segments) <= 1:
        return ""
    rt = config.runtime
    base_rows = int(segments[0]["rows"][0])
    later_rows = sum(int(s["rows"][0]) for s in segments[1:])
    live = max(int(manifest["counts"]["passages"]), 1)
    if later_rows >= rt.compact_ratio * max(base_rows, rt.compact_min_rows) or (
        int(manifest["counts"].get("tombstones", 0)) >= rt.compact_ratio * live
    ):
        return "compact"
    if len(segments) > rt.max_segments:
        return "merge"
    return ""


def merge_run(manifest: dict[str, Any], factor: int) -> tuple[int, int]:
    """The run of later segments a merge combines: the ``factor`` newest ones when they are
    all small (each at most the size of the one before the run), else the longest run of
    the smallest tier; as (start, stop) positions in the manifest's list."""
    segments = manifest["segments"]
    sizes = [max(int(s["rows"][0]), 1) for s in segments]
    tier = [len(str(n)) for n in sizes]  # powers of ten
    best = (len(segments), len(segments))
    for start in range(1, len(segments)):
        stop = start
        while stop < len(segments) and tier[stop] == tier[start]:
            stop += 1
        if stop - start >= 2 and (best[1] - best[0] < 2 or tier[start] < tier[best[0]]
                                  or (tier[start] == tier[best[0]] and stop - start > best[1] - best[0])):
            best = (start, min(stop, start + factor))
    if best[1] - best[0] < 2:  # no two neighbours share a tier: the newest ones
        best = (max(1, len(segments) - factor), len(segments))
    return best


def _canonical(snap: Snapshot) -> bool:
    """Whether a base alone is what a from-scratch build of its passages writes: no entity or
    fact without a passage (prepared arrays may name some)."""
    b = snap.base
    return bool((np.asarray(b.array("entity_passage_count")) > 0).all() and (np.asarray(b.array("fact_passage_count")) > 0).all())


class _Staging:
    """A folder of the index a running compaction owns (``.compacting-<pid>``), locked so that
    a later compaction can tell a live one from the leftovers of a dead one."""

    def __init__(self, root: Path) -> None:
        for old in root.glob(f"{STAGING}-*"):
            _remove_if_dead(old)
        self.path = root / f"{STAGING}-{os.getpid()}-{time.monotonic_ns()}"
        self.path.mkdir()
        self._fd = os.open(self.path, os.O_RDONLY)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._fd)


def _remove_if_dead(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return
    shutil.rmtree(path, ignore_errors=True)
    os.close(fd)


def compact(mw: MemoryWriter) -> dict[str, Any]:
    """Compact the index of a writable engine's writer (see the module docstring)."""
    t0 = time.perf_counter()
    with mw.mutex:
        snap0 = mw.writer.snapshot
        config = mw.writer.config
    if len(snap0.views) == 1 and _canonical(snap0):
        return {"operation": "none", "segments": 1, "seconds": round(time.perf_counter() - t0, 3)}
    root = snap0.root
    staging = _Staging(root)
    try:
        t = time.perf_counter()
        members, counts, stats = base_members(live_base(snap0, staging.path / "stage"), config.graph, staging.path / "stage")
        dim = int(snap0.manifest.get("embedder", {}).get("dim", 0) or 0)
        meta = {"kind": "base", "first": [0, 0, 0], "rows": [counts["passages"], counts["entities"], counts["facts"]], "dim": dim}
        staged = write_segment(staging.path, 0, members, meta, folder=True)
        merge_s = time.perf_counter() - t
        with mw.mutex:
            t = time.perf_counter()
            report = _swap(mw, snap0, staging.path / staged["name"], staged, counts, meta)
            report.update(merge_s=round(merge_s, 3), swap_s=round(time.perf_counter() - t, 4),
                          seconds=round(time.perf_counter() - t0, 3), synonymy=stats.get("synonymy", {}))
            return report
    finally:
        staging.close()


def merge(mw: MemoryWriter) -> dict[str, Any]:
    """Merge a run of later segments (:func:`merge_run`) into one segment, numbering kept: no
    row moves, so readers and the writer's state are unaffected; only the manifest changes."""
    t0 = time.perf_counter()
    with mw.mutex:
        snap = mw.writer.snapshot
        config = mw.writer.config
    start, stop = merge_run(snap.manifest, config.runtime.merge_factor)
    if stop - start < 2:
        return {"operation": "none"}
    views = snap.views[start:stop]
    members, meta = merged_members(views, snap)
    root = snap.root
    staging = _Staging(root)
    try:
        staged = write_segment(staging.path, 0, members, meta, folder=meta["rows"][0] >= FOLDER_ROWS)
        with mw.mutex:
            latest = mw.writer.snapshot
            names = [v.name for v in views]
            if [v.name for v in latest.views[start:stop]] != names:
                return {"operation": "none"}  # the segments moved (cannot happen while compactions are serial)
            suffix = ".hseg" if not (staging.path / staged["name"]).is_dir() else ""
            name = f"seg-{next_segment_number(root, latest.manifest):06d}{suffix}"
            os.rename(staging.path / staged["name"], root / name)
            entry = {**staged, "name": name, "kind": "delta", "rows": meta["rows"]}
            segments = [*latest.manifest["segments"][:start], entry, *latest.manifest["segments"][stop:]]
            manifest = {**latest.manifest, "segments": segments, "generation": int(latest.manifest["generation"]) + 1,
                        "counts": {**latest.manifest["counts"], "segments": len(segments)}, "operation": "merge"}
            commit(root, manifest, {"generation": manifest["generation"], "operation": "merge",
                                    "source": f"{len(names)} segments", "segment": name,
                                    "counts": {k: manifest["counts"][k] for k in ("passages", "entities", "facts")}})
            mw.writer._fresh()
            collect_garbage(root)
            return {"operation": "merge", "merged": len(names), "segment": name, "segments": len(segments),
                    "seconds": round(time.perf_counter() - t0, 4)}
    finally:
        staging.close()


def merged_members(views: Sequence[Any], snap: Snapshot) -> tuple[dict[str, Any], dict[str, Any]]:
    """The members of one delta segment equal to consecutive delta segments ``views``: rows
    concatenated, the last weight of each graph entry, count deltas summed, tombstones united."""
    def cat(name: str, dtype: Any) -> Any:
        return np.concatenate([np.asarray(v.array(name) if v.files.has(f"{name}.npy") else np.zeros(0), dtype=dtype) for v in views])

    dim = max(v.dim for v in views)

    def vecs(which: str) -> Any:
        parts = [np.asarray(v.vectors(which), dtype=np.float32).reshape(-1, dim) for v in views]
        return np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)

    ptr = [np.zeros(1, np.int64)]
    off = 0
    for v in views:
        p, idx = v.passage_facts()
        ptr.append(np.asarray(p[1:], dtype=np.int64) + off)
        off += len(idx)

    def latest(a: str, b: str, w: str) -> tuple[Any, Any, Any]:
        i, j, x = cat(a, np.int64), cat(b, np.int64), cat(w, np.float64)
        if not len(i):
            return i, j, x
        key = i * (1 << 32) + j
        _, first_rev = np.unique(key[::-1], return_index=True)
        last = np.sort(len(key) - 1 - first_rev)
        return i[last], j[last], x[last]

    def summed(rows: str, delta: str) -> tuple[Any, Any]:
        r, d = cat(rows, np.int64), cat(delta, np.int64)
        u, inv = np.unique(r, return_inverse=True)
        total = np.bincount(inv, weights=d, minlength=len(u)).astype(np.int64) if len(u) else np.zeros(0, np.int64)
        keep = total != 0
        return u[keep], total[keep]

    pi, pj, pw = latest("pair_i", "pair_j", "pair_w")
    ci, ce, cw = latest("ctx_p", "ctx_e", "ctx_w")
    ecr, ecd = summed("ec_rows", "ec_delta")
    fcr, fcd = summed("fc_rows", "fc_delta")
    members: dict[str, Any] = {
        "passage_vectors.npy": vecs("passage"), "entity_vectors.npy": vecs("entity"), "fact_vectors.npy": vecs("fact"),
        "passage_fact_indptr.npy": np.concatenate(ptr), "passage_fact_indices.npy": cat("passage_fact_indices", np.int64),
        "fact_subject.npy": cat("fact_subject", np.int64), "fact_object.npy": cat("fact_object", np.int64),
        "synonym_candidates.npy": cat("synonym_candidates", np.int64).reshape(-1, 2),
        "synonym_candidate_cos.npy": cat("synonym_candidate_cos", np.float32),
        "pair_i.npy": pi, "pair_j.npy": pj, "pair_w.npy": pw, "ctx_p.npy": ci, "ctx_e.npy": ce, "ctx_w.npy": cw,
        "ec_rows.npy": ecr, "ec_delta.npy": ecd, "fc_rows.npy": fcr, "fc_delta.npy": fcd,
        "dead.npy": np.unique(cat("dead", np.int64)),
    }
    for stem in ("passage_ids", "passage_titles", "passage_contents", "entity_names", "fact_relations"):
        members.update(string_members(stem, [x for v in views for x in v.strings(stem)]))
    if any(v.passage_meta is not None for v in views):
        members.update(string_members("passage_meta", [
            (v.passage_meta[k] if v.passage_meta is not None else "") for v in views for k in range(v.rows[0])]))
    records = [r for v in views for r in v.extractions()]
    if records:
        members["extractions.jsonl"] = records
    rows = [sum(v.rows[k] for v in views) for k in range(3)]
    return members, {"kind": "delta", "first": list(views[0].first), "rows": rows, "dim": dim}


def _swap(mw: MemoryWriter, snap0: Snapshot, staged: Path, entry: dict[str, Any], counts: dict[str, Any],
          meta: dict[str, Any]) -> dict[str, Any]:
    """Under the mutex: move the new base in, replay the writes committed since ``snap0``
    onto it, commit one manifest, and point the writer at it."""
    writer = mw.writer
    latest = writer.snapshot
    root = latest.root
    names0 = [v.name for v in snap0.views]
    later = latest.views[len(names0):]
    if [v.name for v in latest.views[: len(names0)]] != names0:
        raise RuntimeError("segments changed under a compaction")  # only compaction replaces segments: never two at once
    number = next_segment_number(root, latest.manifest)
    name = f"seg-{number:06d}"
    os.rename(staged, root / name)
    entry = {**entry, "name": name, "kind": "base", "rows": meta["rows"]}
    counts = {**counts, "tombstones": 0, "segments": 1}
    manifest = {
        **latest.manifest, "segments": [entry], "counts": counts,
        "totals": {"passages": counts["passages"], "entities": counts["entities"], "facts": counts["facts"]},
        "operation": "compact",
    }
    base_snap = Snapshot(OpenIndex(root, manifest, [SegmentFiles(root, name)]))
    replayed = 0
    if later:
        replay = Writer(root, writer.config, writer._make_extractor, lambda: _StoredVectors(later, latest, writer),
                        snapshot=base_snap)
        for v in later:
            _replay(replay, v, latest)
            replayed += 1
        manifest = replay.snapshot.manifest
    manifest = {**manifest, "generation": int(latest.manifest["generation"]) + 1, "operation": "compact"}
    commit(root, manifest, {"generation": manifest["generation"], "time": manifest.get("time", ""), "operation": "compact",
                            "source": f"{len(names0)} segments", "segment": name,
                            "counts": {k: manifest["counts"][k] for k in ("passages", "entities", "facts")}})
    fresh = Writer(root, writer.config, writer._make_extractor, writer._make_embedder)
    mw.writer = fresh
    collect_garbage(root)
    return {"operation": "compact", "merged": len(names0), "replayed": replayed, "base": name,
            "counts": manifest["counts"], "segments": len(manifest["segments"])}


def _replay(writer: Writer, v: Any, old: Snapshot) -> None:
    """Re-apply the write that made segment ``v`` of snapshot ``old`` to ``writer``."""
    dead_ids = [old.passage_ids[int(r)] for r in v.ints("dead").tolist()]
    n = v.rows[0]
    if not n:
        if dead_ids:
            writer.delete(dead_ids)
        return
    ids, titles, contents = v.strings("passage_ids"), v.strings("passage_titles"), v.strings("passage_contents")
    start = v.first[0]
    passages = [Passage(ids[k], contents[k], titles[k], old.metadata(start + k)) for k in range(n)]
    records = v.extractions()
    extractions = [
        Extraction(r["passage_id"], tuple(r["entities"]), tuple((str(a), str(b), str(c)) for a, b, c in r["triples"]))
        for r in records
    ]
    replaced = [row for pid in dead_ids if (row := writer.state.passage_row(pid)) is not None]
    writer.add_extracted(passages, extractions, replaced)


class _StoredVectors:
    """An embedder that never runs a model: the vectors of strings some segment already holds."""

    def __init__(self, later: Sequence[Any], old: Snapshot, writer: Writer) -> None:
        emb = old.manifest.get("embedder") or {}
        self.id = str(emb.get("id", ""))
        self.dim = int(emb.get("dim", 0))
        self._old = old
        self._fmt = writer.config.embed.fact_format
        self._known: dict[str, Any] = {}
        for v in later:
            for which, texts in (("passage", v.strings("passage_contents")), ("entity", v.strings("entity_names")),
                                 ("fact", self._fact_texts(v))):
                vecs = v.vectors(which)
                self._known.update(zip(texts, np.asarray(vecs, dtype=np.float32)))

    def _fact_texts(self, v: Any) -> list[str]:
        names = self._old.entity_names
        return [Fact("", names[int(s)], r, names[int(o)]).as_text(self._fmt)
                for s, r, o in zip(v.ints("fact_subject").tolist(), v.strings("fact_relations"), v.ints("fact_object").tolist())]

    def encode_documents(self, texts: Sequence[str]) -> Any:
        missing = [t for t in texts if t not in self._known]
        if missing:
            self._fill(set(missing))
        return np.stack([self._known[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def _fill(self, wanted: set[str]) -> None:
        """Vectors of strings the compacted base dropped and a replayed write brought back
        (an entity or fact whose passages were all deleted before the compaction)."""
        old = self._old
        for e, name in enumerate(old.entity_names):
            if name in wanted:
                self._known[name] = _row(old, "entity", e)
        for f in range(old.n_facts):
            text = old.facts[f].as_text(self._fmt)
            if text in wanted:
                self._known[text] = _row(old, "fact", f)

    def encode_queries(self, texts: Sequence[str], instruction: str = "") -> Any:
        raise RuntimeError("a replay embeds no query")


def _row(snap: Snapshot, which: str, row: int) -> Any:
    base, later = snap.vectors(which)
    n0 = base.shape[0]
    return np.asarray(base[row] if row < n0 else later[row - n0], dtype=np.float32)  # type: ignore[index]
