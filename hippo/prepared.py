"""Write an index from prepared arrays: facts, strings and vectors given, nothing extracted or embedded.

This is how an index over 10^5–10^6 passages is built when OpenIE and embeddings were
computed elsewhere (a batch job, another machine) and how ``benchmarks/scale.py`` builds its
synthetic indexes. It runs the same graph code as ``hippo index`` (containment from the facts,
:func:`hippo.graph.build.assemble_graph`, the synonymy cap), finds synonyms with the
inverted-file range search from ``graph.ann_min_rows`` entities on, and writes the same base
segment as ``hippo index`` (:mod:`hippo.live.base`), IVF-PQ search indexes included.

Such an index is like any other: it answers queries, and it can be added to, deleted from and
compacted (it keeps no raw extractions, which only ``hippo.llm.indexing`` reuses).
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
from hippo.live.base import BaseInput
from hippo.live.base import containment as live_containment
from hippo.live.build import write_base
from hippo.store import check_writable, writer_lock

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
        as_base(self).check()
        for name, arr in (("passage", self.passage_vectors), ("entity", self.entity_vectors), ("fact", self.fact_vectors)):
            if arr.shape[0] and arr.shape[1] != int(self.embedder["dim"]):
                raise ValueError(f"{name}_vectors has shape {arr.shape}, expected (rows, {self.embedder['dim']})")


def containment(c: PreparedCorpus) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """(passage rows, entity cols) of the distinct containment pairs (the entities of each
    passage's facts), each fact's passage count and each entity's passage count."""
    return live_containment(as_base(c))


def as_base(c: PreparedCorpus) -> BaseInput:
    """The :class:`~hippo.live.base.BaseInput` of prepared arrays."""
    return BaseInput(
        passage_ids=c.passage_ids, passage_titles=c.passage_titles, passage_contents=c.passage_contents,
        entity_names=c.entity_names, fact_relations=c.fact_relations,
        fact_subject=np.asarray(c.fact_subject, dtype=np.int64), fact_object=np.asarray(c.fact_object, dtype=np.int64),
        passage_fact_indptr=np.asarray(c.passage_fact_indptr, dtype=np.int64),
        passage_fact_indices=np.asarray(c.passage_fact_indices, dtype=np.int64),
        passage_vectors=c.passage_vectors, entity_vectors=c.entity_vectors, fact_vectors=c.fact_vectors,
    )


def write_prepared(
    out: str | Path,
    corpus: PreparedCorpus,
    config: Config,
    progress: Callable[[str, float], None] | None = None,
    link_vectors: bool = False,
) -> dict[str, Any]:
    """Build the graph and write the index at ``out`` as one base segment (replacing what it
    held); returns counts and timings (seconds per stage). The index can then be added to,
    deleted from and compacted like any other.

    Vectors given as whole ``.npy`` memory maps are copied into the index. ``link_vectors=True``
    hard-links them instead (when on the same file system), which saves a copy of every vector
    file but makes the index share the input files: rewriting an input in place (``np.save`` to
    the same path truncates and rewrites the same file) would then change the index too. Use it
    only for inputs that are never rewritten."""
    corpus.check()
    root = Path(out)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(stage: str, done: int, total: int) -> None:
        if progress:
            progress(stage, timings.get(stage, 0.0))

    check_writable(root)
    emb = {"id": corpus.embedder["id"], "dim": int(corpus.embedder["dim"]), "precision": str(np.dtype(corpus.fact_vectors.dtype))}
    with writer_lock(root):
        manifest = write_base(root, as_base(corpus), config, {"embedder": emb, "extractor": {"name": "prepared", "settings": {}}},
                              "prepared", f"{len(corpus.passage_ids)} prepared passages", lap, timings, link_vectors)
    timings["total"] = round(time.perf_counter() - t0, 3)
    return {"path": str(root), "counts": manifest["counts"], "timings_s": timings, **manifest.get("stats", {})}
