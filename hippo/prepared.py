"""Write an index from prepared arrays: facts, strings and vectors given, nothing extracted or embedded.

This is how an index over 10^5–10^6 passages is built when OpenIE and embeddings were
computed elsewhere (a batch job, another machine) and how ``benchmarks/scale.py`` builds its
synthetic indexes. It runs the same graph code as ``hippo index`` (containment from the facts,
:func:`hippo.graph.build.assemble_graph`, the synonymy cap), finds synonyms with the
inverted-file range search from ``graph.ann_min_rows`` entities on, and writes the packed
tables, CSR graph and IVF-PQ search indexes an engine opens without parsing anything.

Such an index answers queries like any other but keeps no extractions: ``hippo index`` cannot
add to it (it says so).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hippo.config import Config
from hippo.graph.build import accept_synonyms, assemble_graph, synonymy_candidates
from hippo.ids import alnum_count
from hippo.store import FORMAT_NAME, FORMAT_VERSION, write_generation
from hippo.store.compact import ann_files, graph_files, string_files, synonymy_candidates_ivf
from hippo.store.layout import WORK_DIR

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class PreparedCorpus:
    """Everything an index needs, already extracted and embedded.

    Strings are sequences (lists, or :class:`hippo.store.strings.StringTable`); entity names
    must be normalised and distinct. ``passage_fact_indptr`` (P+1,) / ``passage_fact_indices``
    list each passage's distinct facts; ``fact_subject``/``fact_object`` (F,) are entity rows.
    Vectors are (rows, d), L2-normalised, float16 or float32 (memory maps welcome).
    """

    passage_ids: Sequence[str]
    passage_titles: Sequence[str]
    passage_contents: Sequence[str]
    entity_names: Sequence[str]
    fact_relations: Sequence[str]
    fact_subject: IntArray
    fact_object: IntArray
    passage_fact_indptr: IntArray
    passage_fact_indices: IntArray
    passage_vectors: Any
    entity_vectors: Any
    fact_vectors: Any
    embedder: dict[str, Any]
    """``{"id": ..., "dim": ...}`` of the model the vectors came from (queries must use it)."""

    def check(self) -> None:
        """Raise ``ValueError`` naming the first inconsistency."""
        p, e, f = len(self.passage_ids), len(self.entity_names), len(self.fact_relations)
        if len(self.passage_titles) != p or len(self.passage_contents) != p:
            raise ValueError("passage ids, titles and contents differ in length")
        if self.fact_subject.shape != (f,) or self.fact_object.shape != (f,):
            raise ValueError(f"fact_subject/fact_object must have shape ({f},)")
        if self.passage_fact_indptr.shape != (p + 1,) or self.passage_fact_indptr[-1] != len(self.passage_fact_indices):
            raise ValueError("passage_fact_indptr must have P+1 entries ending at len(passage_fact_indices)")
        for name, arr, rows in (("passage", self.passage_vectors, p), ("entity", self.entity_vectors, e), ("fact", self.fact_vectors, f)):
            if arr.shape[0] != rows or arr.ndim != 2 or arr.shape[1] != int(self.embedder["dim"]):
                raise ValueError(f"{name}_vectors has shape {arr.shape}, expected ({rows}, {self.embedder['dim']})")
        for name, arr, bound in (("fact_subject", self.fact_subject, e), ("fact_object", self.fact_object, e),
                                 ("passage_fact_indices", self.passage_fact_indices, f)):
            if len(arr) and (int(arr.min()) < 0 or int(arr.max()) >= bound):
                raise ValueError(f"{name} holds an index outside 0..{bound - 1}")


def containment(c: PreparedCorpus) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """(passage rows, entity cols) of the distinct containment pairs (the entities of each
    passage's facts), each fact's passage count and each entity's passage count."""
    n_p, n_e = len(c.passage_ids), len(c.entity_names)
    indptr = np.asarray(c.passage_fact_indptr, dtype=np.int64)
    facts = np.asarray(c.passage_fact_indices, dtype=np.int64)
    rows = np.repeat(np.arange(n_p, dtype=np.int64), np.diff(indptr))
    subj = np.asarray(c.fact_subject, dtype=np.int64)
    obj = np.asarray(c.fact_object, dtype=np.int64)
    key = np.unique(np.concatenate([rows * n_e + subj[facts], rows * n_e + obj[facts]]))
    pe_rows, pe_cols = key // n_e, key % n_e
    fact_count = np.bincount(facts, minlength=len(subj)).astype(np.int64)
    entity_count = np.bincount(pe_cols, minlength=n_e).astype(np.int64)
    return pe_rows, pe_cols, fact_count, entity_count


def write_prepared(
    out: str | Path,
    corpus: PreparedCorpus,
    config: Config,
    progress: Callable[[str, float], None] | None = None,
    link_vectors: bool = False,
) -> dict[str, Any]:
    """Build the graph and write a new generation of the index at ``out``; returns counts and
    timings (seconds per stage).

    Vectors given as whole ``.npy`` memory maps are copied into the index. ``link_vectors=True``
    hard-links them instead (when on the same file system), which saves a copy of every vector
    file but makes the index share the input files: rewriting an input in place (``np.save`` to
    the same path truncates and rewrites the same file) would then change the index too. Use it
    only for inputs that are never rewritten."""
    corpus.check()
    root = Path(out)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    stats: dict[str, Any] = {}

    def lap(stage: str, t: float) -> float:
        now = time.perf_counter()
        timings[stage] = round(now - t, 3)
        if progress:
            progress(stage, timings[stage])
        return now

    n_p, n_e = len(corpus.passage_ids), len(corpus.entity_names)
    pe_rows, pe_cols, fact_count, entity_count = containment(corpus)
    t = lap("containment", t0)
    g = config.graph
    if n_e >= g.ann_min_rows:
        i, j, cos, scored = synonymy_candidates_ivf(corpus.entity_vectors, g.synonymy_threshold)
        stats["synonymy_search"] = "ivf"
    else:
        i, j, cos, scored = synonymy_candidates(np.asarray(corpus.entity_vectors, dtype=np.float32), g.synonymy_threshold)
        stats["synonymy_search"] = "exact"
    eligible = np.fromiter((alnum_count(x) >= g.synonymy_min_chars for x in corpus.entity_names), dtype=bool, count=n_e)
    acc = accept_synonyms(i, j, cos, eligible, g.synonymy_max_neighbors)
    stats["synonymy"] = {"candidates": int(len(i)), "accepted": int((acc > 0).sum()), "pairs_scored": int(scored)}
    t = lap("synonymy", t)
    graph = assemble_graph(n_p, n_e, corpus.fact_subject, corpus.fact_object, fact_count, pe_rows, pe_cols,
                           (i, j, cos, acc), g.edge_weights)
    files: dict[str, Any] = {
        "fact_subject.npy": np.asarray(corpus.fact_subject, dtype=np.int64),
        "fact_object.npy": np.asarray(corpus.fact_object, dtype=np.int64),
        "passage_fact_indptr.npy": np.asarray(corpus.passage_fact_indptr, dtype=np.int64),
        "passage_fact_indices.npy": np.asarray(corpus.passage_fact_indices, dtype=np.int64),
        "entity_passage_count.npy": entity_count,
        "edge_src.npy": graph.src,
        "edge_dst.npy": graph.dst,
        "edge_weight.npy": graph.weight,
        "edge_kind.npy": graph.kind,
        "synonym_candidates.npy": np.stack([i, j], axis=1).astype(np.int32).reshape(-1, 2),
        "synonym_candidate_cos.npy": np.asarray(cos, dtype=np.float32),
        **graph_files(graph),
    }
    t = lap("graph", t)
    files.update(string_files({
        "passage_ids": corpus.passage_ids, "passage_titles": corpus.passage_titles,
        "passage_contents": corpus.passage_contents, "entity_names": corpus.entity_names,
        "fact_relations": corpus.fact_relations,
    }))
    t = lap("strings", t)
    stage = root / WORK_DIR / f"stage-{os.getpid()}"
    root.mkdir(parents=True, exist_ok=True)
    vectors = {"passage_vectors": corpus.passage_vectors, "fact_vectors": corpus.fact_vectors, "entity_vectors": corpus.entity_vectors}
    staged, ann = ann_files(vectors, g.ann_min_rows, stage)
    stats["ann"] = ann
    t = lap("ann", t)
    for name, vecs in vectors.items():
        files[f"{name}.npy"] = _vector_file(vecs, stage / f"{name}.npy", link_vectors)
    files.update(staged)
    counts = {
        "passages": n_p, "entities": n_e, "facts": len(corpus.fact_relations), "triples_dropped": 0,
        "nodes": graph.n_nodes, "edges": graph.edge_counts(),
    }
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "embedder": {"id": corpus.embedder["id"], "dim": int(corpus.embedder["dim"]), "precision": str(np.dtype(corpus.fact_vectors.dtype))},
        "extractor": {"name": "prepared", "settings": {}},
        "config": config.to_dict(),
        "counts": counts,
        "versions": {},
        "node_layout": "passages 0..P-1 in the given order, then entities P..P+E-1",
        "prepared": True,
    }
    from hippo.indexer import library_versions

    versions = library_versions()
    manifest["versions"] = versions
    manifest["hippo_version"] = versions.get("hippo", "0")
    entry = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "operation": "prepared",
             "counts": {k: counts[k] for k in ("passages", "entities", "facts", "edges")}}
    written = write_generation(root, files, manifest, volatile={"stats.json": {"timings_s": timings, "history": [entry], **stats}},
                               keep=config.runtime.keep_generations)
    _remove_tree(stage)
    lap("write", t)
    timings["total"] = round(time.perf_counter() - t0, 3)
    return {"path": str(written), "counts": counts, "timings_s": timings, **stats}


def _vector_file(vecs: Any, staged: Path, link: bool) -> Any:
    """A whole ``.npy`` memory map goes in as a file: copied, or hard-linked when ``link`` and
    on the same file system (the index never modifies it in place); anything else as an array."""
    import shutil

    src = getattr(vecs, "filename", None)
    if src is None or not str(src).endswith(".npy") or getattr(vecs, "offset", None) is None:
        return np.asarray(vecs)
    whole = np.load(src, mmap_mode="r")
    if whole.shape != vecs.shape or whole.dtype != vecs.dtype:
        return np.asarray(vecs)
    staged.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(src, staged)
            return staged
        except OSError:
            pass
    shutil.copyfile(src, staged)
    return staged


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
