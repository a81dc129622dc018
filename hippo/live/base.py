"""A base segment from a complete knowledge base: the members of the first segment of an index.

Every whole-index write goes through :func:`base_members`: a new index (``hippo index``),
a compaction (the live passages renumbered), an upgrade of a format-1 index, and an index
written from prepared arrays (:mod:`hippo.prepared`). The members are a pure function of the
:class:`BaseInput`, so a compaction and a from-scratch build of the same passages write the
same bytes (given the same vectors and synonymy candidates).

A base holds, besides the strings, vectors and knowledge base:

* the graph as typed edge lists and as the symmetric CSR adjacency PageRank runs on
  (``adj_*``, ``node_degree``, ``adj_colnorm``: weight over the column's degree, for push);
* what a later write needs without reading everything: passage and entity counts per fact and
  entity, the statement count of every related entity pair (``rel_key``/``rel_count``), every
  synonymy candidate per entity (``syn_*``), and hashed lookups of entity names, fact keys,
  passage ids and passage contents;
* for vector sets of at least ``graph.ann_min_rows`` rows, a faiss IVF-PQ search index.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hippo.config import GraphConfig
from hippo.graph.build import Graph, accept_synonyms, assemble_graph, synonymy_candidates
from hippo.graph.delta import PAIR_BASE
from hippo.ids import alnum_count, normalize
from hippo.retrieval.vectors import build_ivf, floor_rows
from hippo.store.segments import string_members
from hippo.store.strings import hash_table

IntArray = npt.NDArray[np.int64]

VECTOR_SETS = ("passage_vectors", "fact_vectors", "entity_vectors")
FACT_KEY_SEP = "\x1f"


def fact_key(subject: str, relation: str, obj: str) -> str:
    """The string a fact is looked up by (its normalised parts)."""
    return FACT_KEY_SEP.join((subject, relation, obj))


@dataclass(frozen=True)
class BaseInput:
    """Everything a base segment holds, already extracted and embedded.

    Strings are sequences (lists, or :class:`hippo.store.strings.StringTable`); entity names
    are normalised and distinct. ``passage_fact_indptr`` (P+1,) / ``passage_fact_indices`` list
    each passage's distinct facts in order of first statement; ``fact_subject``/``fact_object``
    (F,) are entity rows. Vectors are (rows, d), L2-normalised, float16 or float32 (memory maps
    welcome). ``passage_meta`` holds one JSON string per passage ("" = none) or is empty;
    ``extractions`` one raw record per passage or none; ``synonyms`` the candidate pairs
    ``(i, j, cos)`` when already known (else they are searched for).
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
    passage_meta: Sequence[str] = ()
    extractions: Sequence[dict[str, Any]] | None = None
    synonyms: tuple[IntArray, IntArray, npt.NDArray[np.float32]] | None = None
    triples_dropped: int = 0
    stats: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Raise ``ValueError`` naming the first inconsistency."""
        p, e, f = len(self.passage_ids), len(self.entity_names), len(self.fact_relations)
        if len(self.passage_titles) != p or len(self.passage_contents) != p:
            raise ValueError("passage ids, titles and contents differ in length")
        if self.passage_meta and len(self.passage_meta) != p:
            raise ValueError("passage_meta must be empty or hold one string per passage")
        if self.fact_subject.shape != (f,) or self.fact_object.shape != (f,):
            raise ValueError(f"fact_subject/fact_object must have shape ({f},)")
        if self.passage_fact_indptr.shape != (p + 1,) or self.passage_fact_indptr[-1] != len(self.passage_fact_indices):
            raise ValueError("passage_fact_indptr must have P+1 entries ending at len(passage_fact_indices)")
        dim = self.passage_vectors.shape[1] if self.passage_vectors.ndim == 2 else 0
        for name, arr, rows in (("passage", self.passage_vectors, p), ("entity", self.entity_vectors, e), ("fact", self.fact_vectors, f)):
            if arr.ndim != 2 or arr.shape[0] != rows or (rows and arr.shape[1] != dim):
                raise ValueError(f"{name}_vectors has shape {arr.shape}, expected ({rows}, {dim})")
        for name, arr, bound in (("fact_subject", self.fact_subject, e), ("fact_object", self.fact_object, e),
                                 ("passage_fact_indices", self.passage_fact_indices, f)):
            if len(arr) and (int(arr.min()) < 0 or int(arr.max()) >= bound):
                raise ValueError(f"{name} holds an index outside 0..{bound - 1}")


def containment(c: BaseInput) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """(passage rows, entity cols) of the distinct containment pairs (the entities of each
    passage's facts), each fact's passage count and each entity's passage count."""
    n_p, n_e = len(c.passage_ids), len(c.entity_names)
    indptr = np.asarray(c.passage_fact_indptr, dtype=np.int64)
    facts = np.asarray(c.passage_fact_indices, dtype=np.int64)
    rows = np.repeat(np.arange(n_p, dtype=np.int64), np.diff(indptr))
    subj = np.asarray(c.fact_subject, dtype=np.int64)
    obj = np.asarray(c.fact_object, dtype=np.int64)
    width = max(n_e, 1)
    key = np.unique(np.concatenate([rows * width + subj[facts], rows * width + obj[facts]]))
    pe_rows, pe_cols = key // width, key % width
    fact_count = np.bincount(facts, minlength=len(subj)).astype(np.int64)
    entity_count = np.bincount(pe_cols, minlength=n_e).astype(np.int64)
    return pe_rows, pe_cols, fact_count, entity_count


def relation_counts(subject: IntArray, obj: IntArray, fact_count: IntArray) -> tuple[IntArray, IntArray]:
    """(sorted pair keys, statement counts) of every entity pair joined by a fact (no self pairs)."""
    s, o = np.asarray(subject, dtype=np.int64), np.asarray(obj, dtype=np.int64)
    keep = s != o
    key = np.minimum(s, o)[keep] * PAIR_BASE + np.maximum(s, o)[keep]
    ukey, inv = np.unique(key, return_inverse=True)
    counts = np.bincount(inv, weights=np.asarray(fact_count, dtype=np.float64)[keep], minlength=len(ukey))
    return ukey.astype(np.int64), np.rint(counts).astype(np.int64)


def synonym_csr(i: IntArray, j: IntArray, cos: npt.NDArray[np.float32], n: int) -> dict[str, Any]:
    """Every entity's synonymy candidates, most similar first (ties by neighbour), as CSR."""
    src = np.concatenate([i, j]).astype(np.int64)
    nbr = np.concatenate([j, i]).astype(np.int64)
    score = np.concatenate([cos, cos]).astype(np.float32)
    order = np.lexsort((nbr, -score, src))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    return {"syn_indptr.npy": indptr, "syn_nbr.npy": nbr[order], "syn_cos.npy": score[order]}


def graph_members(graph: Graph) -> dict[str, Any]:
    """The symmetric weighted adjacency as CSR arrays, the weighted degree of every node, and
    each entry's weight over its column's degree (what forward push spreads by)."""
    from hippo.graph.push import column_normalised

    adj = graph.adjacency()
    if adj.nnz >= 2**31:
        raise ValueError("graphs with 2^31 or more adjacency entries are not supported")
    indices = adj.indices.astype(np.int32)
    data = adj.data.astype(np.float64)
    degree = np.asarray(adj.sum(axis=1)).ravel()
    return {
        "edge_src.npy": graph.src, "edge_dst.npy": graph.dst, "edge_weight.npy": graph.weight, "edge_kind.npy": graph.kind,
        "adj_indptr.npy": adj.indptr.astype(np.int64), "adj_indices.npy": indices, "adj_data.npy": data,
        "node_degree.npy": degree, "adj_colnorm.npy": column_normalised(indices, data, degree),
    }


def lookup_members(c: BaseInput) -> dict[str, Any]:
    """Hashed lookups (sorted 64-bit hashes and the row of each) of entity names, fact keys,
    passage ids and passage contents."""
    out: dict[str, Any] = {}
    names = c.entity_names
    keys = (fact_key(names[int(s)], r, names[int(o)]) for s, r, o in zip(c.fact_subject, c.fact_relations, c.fact_object))
    for stem, strings in (("entity_name", (normalize(n) for n in names)), ("fact_key", keys),
                          ("passage_id", iter(c.passage_ids)), ("passage_content", iter(c.passage_contents))):
        hashes, rows = hash_table(strings)
        out[f"{stem}_hash.npy"] = hashes
        out[f"{stem}_rows.npy"] = rows
    return out


def find_synonyms(c: BaseInput, config: GraphConfig) -> tuple[IntArray, IntArray, npt.NDArray[np.float32], dict[str, Any]]:
    """Every entity pair at or above the synonymy threshold: exact below ``ann_min_rows``
    entities, blocked inverted-list search from there on."""
    n_e = len(c.entity_names)
    if n_e >= config.ann_min_rows:
        from hippo.graph.synonymy_ann import synonymy_candidates_ivf

        i, j, cos, scored = synonymy_candidates_ivf(c.entity_vectors, config.synonymy_threshold)
        return i, j, cos, {"search": "ivf", "pairs_scored": int(scored)}
    i, j, cos, scored = synonymy_candidates(np.asarray(c.entity_vectors, dtype=np.float32), config.synonymy_threshold)
    return i, j, cos, {"search": "exact", "pairs_scored": int(scored)}


def base_members(
    c: BaseInput, config: GraphConfig, stage: Path, lap: Callable[[str], None] | None = None, link_vectors: bool = False,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The members of a base segment, its counts and what was computed (statistics). IVF
    search indexes are written to ``stage`` (a folder on the index's file system) and handed
    over as paths, as are vectors given as whole ``.npy`` memory maps (copied, or hard-linked
    with ``link_vectors``: then the index shares the input files, which must never be
    rewritten). ``lap(stage_name)`` is called after each stage (timings)."""
    c.check()
    tick = lap or (lambda _name: None)
    n_p, n_e, n_f = len(c.passage_ids), len(c.entity_names), len(c.fact_relations)
    pe_rows, pe_cols, fact_count, entity_count = containment(c)
    tick("containment")
    stats: dict[str, Any] = {}
    if c.synonyms is None:
        i, j, cos, found = find_synonyms(c, config)
        stats["synonymy"] = found
    else:
        i, j, cos = (np.asarray(c.synonyms[0], dtype=np.int64), np.asarray(c.synonyms[1], dtype=np.int64),
                     np.asarray(c.synonyms[2], dtype=np.float32))
        stats["synonymy"] = {"search": "given"}
    i, j, cos = i.astype(np.int64), j.astype(np.int64), cos.astype(np.float32)
    eligible = np.fromiter((alnum_count(x) >= config.synonymy_min_chars for x in c.entity_names), dtype=bool, count=n_e)
    acc = accept_synonyms(i, j, cos, eligible, config.synonymy_max_neighbors)
    stats["synonymy"].update(candidates=int(len(i)), accepted=int((acc > 0).sum()))
    tick("synonymy")
    graph = assemble_graph(n_p, n_e, c.fact_subject, c.fact_object, fact_count, pe_rows, pe_cols, (i, j, cos, acc), config.edge_weights)
    rel_key, rel_count = relation_counts(c.fact_subject, c.fact_object, fact_count)
    members: dict[str, Any] = {
        "fact_subject.npy": np.asarray(c.fact_subject, dtype=np.int64),
        "fact_object.npy": np.asarray(c.fact_object, dtype=np.int64),
        "passage_fact_indptr.npy": np.asarray(c.passage_fact_indptr, dtype=np.int64),
        "passage_fact_indices.npy": np.asarray(c.passage_fact_indices, dtype=np.int64),
        "entity_passage_count.npy": entity_count,
        "fact_passage_count.npy": fact_count,
        "rel_key.npy": rel_key,
        "rel_count.npy": rel_count,
        "synonym_candidates.npy": np.stack([i, j], axis=1).astype(np.int64).reshape(-1, 2),
        "synonym_candidate_cos.npy": cos,
        **synonym_csr(i, j, cos, n_e),
        **graph_members(graph),
    }
    tick("graph")
    for stem, strings in (("passage_ids", c.passage_ids), ("passage_titles", c.passage_titles),
                          ("passage_contents", c.passage_contents), ("entity_names", c.entity_names),
                          ("fact_relations", c.fact_relations)):
        members.update(string_members(stem, strings))
    if any(c.passage_meta):
        members.update(string_members("passage_meta", c.passage_meta))
    if c.extractions is not None:
        members["extractions.jsonl"] = list(c.extractions)
    members.update(lookup_members(c))
    tick("strings")
    ann: dict[str, Any] = {}
    for name in VECTOR_SETS:
        vecs = getattr(c, name)
        members[f"{name}.npy"] = _vector_member(vecs, stage / f"{name}.npy", link_vectors)
        if vecs.shape[0] >= config.ann_min_rows:
            stage.mkdir(parents=True, exist_ok=True)
            t = time.perf_counter()
            info = build_ivf(vecs, stage / f"{name}.ivf")
            np.save(stage / f"{name}.floor.npy", floor_rows(vecs))
            members[f"{name}.ivf"] = stage / f"{name}.ivf"
            members[f"{name}.floor.npy"] = stage / f"{name}.floor.npy"
            ann[name] = {**info, "seconds": round(time.perf_counter() - t, 2)}
    if ann:
        stats["ann"] = ann
    tick("ann")
    counts = {
        "passages": n_p, "entities": n_e, "facts": n_f, "triples_dropped": int(c.triples_dropped),
        "nodes": graph.n_nodes, "edges": graph.edge_counts(),
    }
    return members, counts, stats


def _vector_member(vecs: Any, staged: Path, link: bool = False) -> Any:
    """A whole ``.npy`` memory map is copied (or hard-linked) in as a file, never read into
    memory; anything else goes in as an array."""
    import os
    import shutil

    src = getattr(vecs, "filename", None)
    if src is None or not str(src).endswith(".npy") or getattr(vecs, "offset", None) is None:
        return np.asarray(vecs)
    if Path(src).parent == staged.parent and Path(src).name.startswith("gathered-"):
        return Path(src)  # gathered for this base (a compaction): moved in, not copied
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
