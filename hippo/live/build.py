"""Whole-index writes: a new base segment that replaces every segment of an index.

* :func:`write_base`: the base segment and a manifest listing only it (a first build, a
  rebuild, a compaction, an upgrade, prepared arrays, an empty index);
* :func:`base_from_kb`: the :class:`~hippo.live.base.BaseInput` of passages just extracted
  and embedded (``hippo index`` of a new corpus);
* :func:`live_base`: the :class:`~hippo.live.base.BaseInput` of a snapshot's live passages,
  renumbered as a from-scratch build of them would number them (compaction).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import platform

from hippo.config import Config
from hippo.kb import KnowledgeBase
from hippo.live.base import BaseInput, base_members, fact_key
from hippo.live.segment import meta_strings
from hippo.live.snapshot import Snapshot
from hippo.retrieval.vectors import drop_pages
from hippo.store.segments import (
    FORMAT_NAME, FORMAT_VERSION, WORK_DIR, collect_garbage, commit, is_format1, next_segment_number, read_manifest,
    write_segment,
)
from hippo.types import Extraction, Passage

IntArray = npt.NDArray[np.int64]
_VERSIONED = ("numpy", "scipy", "python-igraph", "torch", "sentence-transformers", "spacy")


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape an index."""
    out = {"python": platform.python_version()}
    for name in ("hippo", *_VERSIONED):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def base_from_kb(
    passages: Sequence[Passage], extractions: Sequence[Extraction], kb: KnowledgeBase, vecs: Any,
) -> BaseInput:
    """The base of passages just extracted and embedded; ``vecs`` holds passage, entity, then fact rows."""
    n_p, n_e = len(passages), len(kb.entity_names)
    return BaseInput(
        passage_ids=[p.id for p in passages], passage_titles=[p.title for p in passages],
        passage_contents=[p.content for p in passages], entity_names=kb.entity_names,
        fact_relations=[f.relation for f in kb.facts], fact_subject=kb.fact_subject, fact_object=kb.fact_object,
        passage_fact_indptr=kb.passage_fact_indptr, passage_fact_indices=kb.passage_fact_indices,
        passage_vectors=vecs[:n_p], entity_vectors=vecs[n_p : n_p + n_e], fact_vectors=vecs[n_p + n_e :],
        passage_meta=meta_strings([p.metadata for p in passages]),
        extractions=[{"passage_id": e.passage_id, "entities": list(e.entities), "triples": [list(x) for x in e.triples]}
                     for e in extractions],
        triples_dropped=kb.dropped_triples,
    )


def live_base(snap: Snapshot, stage: Path | None = None) -> BaseInput:
    """The live passages of ``snap`` as a base: in row order, their facts and entities
    renumbered by first appearance (as :func:`hippo.kb.build_kb` numbers them), dead facts and
    entities dropped, synonymy candidates between live entities kept. Vector sets of more than
    :data:`GATHER_IN_FILE` bytes are gathered into ``.npy`` files in ``stage`` (when given),
    not into memory."""
    alive = snap.passage_alive
    rows = np.arange(snap.n_passages) if alive is None else np.flatnonzero(alive)
    ptr, idx = snap.passage_facts
    subj, obj = snap.fact_subject.materialize(), snap.fact_object.materialize()
    fact_new = np.full(snap.n_facts, -1, dtype=np.int64)
    ent_new = np.full(snap.n_entities, -1, dtype=np.int64)
    fact_order: list[int] = []
    ent_order: list[int] = []
    new_ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    new_idx: list[IntArray] = []
    for k, p in enumerate(rows.tolist()):
        facts = idx[ptr[p] : ptr[p + 1]]
        for f in facts[fact_new[facts] < 0].tolist():
            if fact_new[f] >= 0:
                continue
            fact_new[f] = len(fact_order)
            fact_order.append(f)
            for e in (int(subj[f]), int(obj[f])):
                if ent_new[e] < 0:
                    ent_new[e] = len(ent_order)
                    ent_order.append(e)
        new_idx.append(fact_new[facts])
        new_ptr[k + 1] = new_ptr[k] + len(facts)
    facts_kept = np.asarray(fact_order, dtype=np.int64)
    ents_kept = np.asarray(ent_order, dtype=np.int64)
    pairs_i, pairs_j, pairs_cos = [], [], []
    for v in snap.views:
        i, j, c = v.pairs()
        pairs_i.append(i)
        pairs_j.append(j)
        pairs_cos.append(c)
    si, sj, sc = np.concatenate(pairs_i), np.concatenate(pairs_j), np.concatenate(pairs_cos)
    ni, nj = ent_new[si], ent_new[sj]
    keep = (ni >= 0) & (nj >= 0)
    ni, nj, sc = np.minimum(ni, nj)[keep], np.maximum(ni, nj)[keep], sc[keep]
    order = np.lexsort((nj, ni))
    rel = snap.facts.relations
    meta = [snap.metadata(int(p)) for p in rows] if any(v.passage_meta is not None for v in snap.views) else []
    extractions = _extractions(snap, rows)
    return BaseInput(
        passage_ids=[snap.passage_ids[p] for p in rows.tolist()],
        passage_titles=[snap.passage_titles[p] for p in rows.tolist()],
        passage_contents=[snap.passage_contents[p] for p in rows.tolist()],
        entity_names=[snap.entity_names[e] for e in ent_order],
        fact_relations=[rel[f] for f in fact_order],
        fact_subject=ent_new[subj[facts_kept]], fact_object=ent_new[obj[facts_kept]],
        passage_fact_indptr=new_ptr,
        passage_fact_indices=np.concatenate([np.zeros(0, np.int64), *new_idx]),
        passage_vectors=_gather(snap, "passage", rows, stage), entity_vectors=_gather(snap, "entity", ents_kept, stage),
        fact_vectors=_gather(snap, "fact", facts_kept, stage),
        passage_meta=meta_strings(meta) if meta else (),
        extractions=extractions,
        synonyms=(ni[order], nj[order], sc[order]),
        triples_dropped=int(snap.manifest["counts"].get("triples_dropped", 0)),
    )


GATHER_IN_FILE = 1 << 28
"""Vector sets larger than this (256 MB) are gathered into a staged file, not into memory."""


def _gather(snap: Snapshot, which: str, rows: IntArray, stage: Path | None = None) -> Any:
    """Vectors of global ``rows`` (sorted ascending or not), in their order."""
    base, later = snap.vectors(which)
    n0 = base.shape[0]
    dim = base.shape[1] if base.ndim == 2 and base.shape[1] else (later.shape[1] if later is not None else 0)
    dtype = base.dtype if n0 else np.float32
    if later is None and len(rows) == n0 and np.array_equal(rows, np.arange(n0)):
        return base  # every row, in order: the base file as it is
    if stage is not None and len(rows) * dim * np.dtype(dtype).itemsize > GATHER_IN_FILE:
        return _gather_to_file(base, later, rows, stage / f"gathered-{which}_vectors.npy", dtype, dim)
    out = np.empty((len(rows), dim), dtype=dtype)
    for a, block in _blocks(base, later, rows, dtype, dim):
        out[a : a + len(block)] = block
    return out


def _blocks(base: Any, later: Any, rows: IntArray, dtype: Any, dim: int, step: int = 1 << 16) -> Iterator[tuple[int, Any]]:
    """(first output row, vectors) of ``rows`` (global: the base's, then ``later``'s), ``step``
    rows at a time."""
    n0 = base.shape[0]
    for a in range(0, len(rows), step):
        chunk = rows[a : a + step]
        block = np.empty((len(chunk), dim), dtype=dtype)
        in_base = chunk < n0
        if in_base.any():  # an empty base (create=True) may have no columns
            block[in_base] = base[chunk[in_base]]
        if not in_base.all():
            block[~in_base] = later[chunk[~in_base] - n0]
        yield a, block


def _gather_to_file(base: Any, later: Any, rows: IntArray, path: Path, dtype: Any, dim: int) -> Any:
    """:func:`_gather` into the ``.npy`` file ``path``, written in order one chunk at a time
    (durable when it returns) and opened read-only. The base's pages leave this process's
    resident set after each chunk and no output page is mapped: a compaction of 10^6 passages
    held 15.8 GB of mapped vector pages with a writable memory map here."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": (len(rows), dim)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for _, block in _blocks(base, later, rows, dtype, dim):
            f.write(block.tobytes())
            drop_pages(base)
        f.flush()
        os.fsync(f.fileno())
    return np.load(path, mmap_mode="r")


def _extractions(snap: Snapshot, rows: IntArray) -> list[dict[str, Any]] | None:
    """Raw extraction records of the given passage rows, when every segment kept them."""
    records: list[dict[str, Any]] = []
    for v in snap.views:
        got = v.extractions()
        if v.rows[0] and len(got) != v.rows[0]:
            return None
        records.extend(got)
    return [records[int(p)] for p in rows]


def write_base(
    root: Path,
    base: BaseInput,
    config: Config,
    manifest_extra: dict[str, Any],
    operation: str,
    source: str = "",
    progress: Callable[[str, int, int], None] | None = None,
    timings: dict[str, float] | None = None,
    link_vectors: bool = False,
) -> dict[str, Any]:
    """Write ``base`` as a new base segment and commit a manifest listing only it (the
    writer lock must be held). ``manifest_extra`` gives ``embedder`` and ``extractor``.
    Returns the manifest."""
    t = time.perf_counter()
    laps = timings if timings is not None else {}

    def lap(stage: str) -> None:
        nonlocal t
        now = time.perf_counter()
        laps[stage] = round(laps.get(stage, 0.0) + now - t, 4)
        t = now
        if progress:
            progress(stage, 1, 1)

    old = None if is_format1(root) else read_manifest(root)
    stage = root / WORK_DIR / f"stage-{os.getpid()}"
    members, counts, stats = base_members(base, config.graph, stage, lap, link_vectors)
    dim = int(base.passage_vectors.shape[1]) if base.passage_vectors.ndim == 2 else 0
    meta = {"kind": "base", "first": [0, 0, 0], "rows": [counts["passages"], counts["entities"], counts["facts"]], "dim": dim}
    entry = write_segment(root, next_segment_number(root, old), members, meta, folder=True)
    entry.update(kind="base", rows=meta["rows"])
    shutil.rmtree(stage, ignore_errors=True)
    versions = library_versions()
    counts.update(tombstones=0, segments=1)
    manifest = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION,
        "hippo_version": versions.get("hippo", "0"), "versions": versions,
        "generation": int(old["generation"]) + 1 if old else 1,
        "embedder": manifest_extra.get("embedder"), "extractor": manifest_extra.get("extractor"),
        "config": config.to_dict(), "counts": counts,
        "totals": {"passages": counts["passages"], "entities": counts["entities"], "facts": counts["facts"]},
        "segments": [entry], "stats": stats,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "operation": operation,
        "node_layout": "passages 0..P-1 in the order they entered the index, then entities P..P+E-1 by first appearance",
    }
    history = {"generation": manifest["generation"], "time": manifest["time"], "operation": operation, "source": source,
               "segment": entry["name"], "counts": {k: counts[k] for k in ("passages", "entities", "facts")}}
    commit(root, manifest, history)
    lap("write")
    collect_garbage(root)
    return manifest


def empty_base(dim: int = 0) -> BaseInput:
    """The base of an index with no passage yet."""
    z = np.zeros(0, dtype=np.int64)
    v = np.zeros((0, dim), dtype=np.float32)
    return BaseInput([], [], [], [], [], z, z, np.zeros(1, np.int64), z, v, v, v)


__all__ = ["base_from_kb", "empty_base", "fact_key", "library_versions", "live_base", "write_base"]
