"""Write an index directory: build it, add to it, update or delete its passages.

Every write runs the same stages over the index's final passage list: plan (which
passages are new, replaced, removed) -> extract (new passages only) -> embed (new strings
only) -> knowledge base -> synonymy (new entities only) -> graph -> write a generation.

* **Reuse.** Extractions and vectors of passages, entities and facts already in the live
  generation are reused, as is the resume cache (:mod:`hippo.store.workcache`) that an
  interrupted write left. Synonymy candidates (every entity pair with cosine >= threshold)
  are stored in the index; a write scores only pairs with a new entity, then re-applies the
  per-entity cap to all candidates.
* **Canonical order.** Passages keep the order they entered the index: survivors keep
  their place, new and replaced passages are appended in corpus order. Entities and facts
  are renumbered by first appearance in that order on every write. The result is exactly
  the index a from-scratch build of that passage list gives (the same bytes, given the same
  vectors): relation weights are recounted, removed entities take their synonymy edges
  with them, and no edge is ever added twice.
* **Safety.** The writer lock is held for the whole write; the live generation is never
  modified; the new one becomes visible in one atomic rename (:mod:`hippo.store.layout`).
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from hippo.config import Config, from_dict, load_config
from hippo.corpus import dedupe_passages, read_corpus
from hippo.embed import make_embedder
from hippo.embed.st import check_embedder
from hippo.errors import ConfigError, HippoError, IndexFormatError
from hippo.extract import make_extractor
from hippo.graph.build import Graph, assemble_graph
from hippo.kb import KnowledgeBase, build_kb
from hippo.protocols import Embedder, Extractor, FloatArray
from hippo.reuse import LiveIndex, Progress, StageRunner, Stages, load_live
from hippo.store import (
    FORMAT_NAME,
    FORMAT_VERSION,
    check_writable,
    current_generation,
    discard_uncommitted,
    next_generation,
    read_index_files,
    write_generation,
    writer_lock,
)
from hippo.store.compact import ann_files, graph_files, string_files
from hippo.store.layout import WORK_DIR
from hippo.store.workcache import WorkCache, settings_key
from hippo.types import Extraction, Passage

__all__ = ["BuildReport", "MUTABLE_KEYS", "Progress", "build_index", "delete_passages", "library_versions", "saved_config"]

_VERSIONED = ("numpy", "scipy", "python-igraph", "torch", "sentence-transformers", "spacy")

MUTABLE_KEYS = ("extract.openie", "extract.missing", "extract.spacy_batch_size", "embed.batch_size", "embed.device")
"""Index-time settings that may differ between writes of one index: inputs and speed knobs
that do not change what an index holds (``retrieval.*`` and ``runtime.*`` may change too)."""


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape an index."""
    out = {"python": platform.python_version()}
    for name in ("hippo", *_VERSIONED):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


@dataclass(frozen=True)
class BuildReport:
    """What a write did: where, how much, how long, and what changed.

    ``changes`` is empty only for the no-op (nothing to add, update or delete): then no
    generation was written and ``counts`` describe the live one.
    """

    path: Path
    counts: dict[str, Any]
    timings_s: dict[str, float]
    notes: dict[str, Any]
    changes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON shape of ``hippo index --json`` / ``hippo delete --json``."""
        return {"path": str(self.path), "counts": self.counts, "timings_s": self.timings_s, "changes": self.changes, **self.notes}


def saved_config(out: str | Path) -> Config | None:
    """The config an existing index at ``out`` was written with; None when there is none."""
    root = Path(out)
    if not root.is_dir() or current_generation(root) is None:
        return None
    files = read_index_files(root)
    try:
        return from_dict(files.manifest["config"], source=f"{files.generation}/manifest.json")
    finally:
        files.close()


def _check_same_settings(prior: Config, config: Config, root: Path) -> None:
    """Index-time settings cannot change between writes of one index."""
    old, new = prior.to_dict(), config.to_dict()
    for section in ("embed", "extract", "graph"):
        for key, value in old[section].items():
            name = f"{section}.{key}"
            if name not in MUTABLE_KEYS and new[section][key] != value:
                raise ConfigError(
                    f"{name} is {new[section][key]!r} here but the index at {root} was built with {value!r}; "
                    f"index-time settings cannot change on an existing index: drop the setting, or rebuild it "
                    f"from the whole corpus with `hippo index CORPUS --out {root} --rebuild`"
                )


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class _Plan:
    final: list[Passage]
    added: int
    updated: int
    removed: int
    unchanged: int
    duplicates: int
    operation: str


def _plan_insert(prior: LiveIndex | None, passages: Sequence[Passage], update: bool, root: Path) -> _Plan:
    if prior is None:
        return _Plan(list(passages), len(passages), 0, 0, 0, 0, "build")
    by_id = {p.id: p for p in prior.passages}
    replaced: set[str] = set()
    conflicts: list[str] = []
    incoming: list[Passage] = []
    unchanged = 0
    for p in passages:
        old = by_id.get(p.id)
        if old is None:
            incoming.append(p)
        elif old.content == p.content and old.title == p.title:
            unchanged += 1
        elif update:
            replaced.add(p.id)
            incoming.append(p)
        else:
            conflicts.append(p.id)
    if conflicts:
        shown = ", ".join(conflicts[:5]) + (f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else "")
        raise HippoError(
            f"{len(conflicts)} passage(s) are already in {root} with other text: {shown}; pass --update to replace "
            f"them, or give them new ids; nothing was written"
        )
    survivors = [p for p in prior.passages if p.id not in replaced]
    final = dedupe_passages([*survivors, *incoming]) if incoming else survivors
    kept = {p.id for p in final}  # an incoming text that a passage already has is dropped
    added = sum(1 for p in incoming if p.id in kept and p.id not in replaced)
    updated = sum(1 for p in incoming if p.id in kept and p.id in replaced)
    duplicates = len(incoming) - added - updated
    removed = len(replaced) - updated  # replaced by a text another passage has: gone
    return _Plan(final, added, updated, removed, unchanged, duplicates, "update" if replaced else "insert")


def build_index(
    corpus: str | Path | Sequence[Passage],
    out: str | Path,
    config: Config | None = None,
    *,
    openie: str | Path | None = None,
    extractor: Extractor | None = None,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
    update: bool = False,
    rebuild: bool = False,
    runner: StageRunner | None = None,
) -> BuildReport:
    """Index ``corpus`` (a path or passages) into the directory ``out``; see ``hippo index``.

    A new ``out`` gets a fresh index. An existing index gets the passages it lacks; passages
    it has with the same text are skipped, and with other text are replaced if ``update``
    (else refused). ``config`` defaults to the existing index's (else the defaults); its
    index-time settings must match the existing index's. ``rebuild`` ignores the existing
    index instead: a from-scratch build of ``corpus``, with any settings, becomes the next
    generation. ``openie`` implies the precomputed extractor; ``extractor``/``embedder``
    override the ones the config names. A write interrupted at any point leaves the
    previous index readable; running it again finishes it, reusing the work already done.
    ``runner`` computes the missing extractions and vectors elsewhere (e.g.
    :class:`hippo.distributed.RayRunner`); the index written is the same.
    """
    t0 = time.perf_counter()
    root = Path(out)
    if openie is not None:
        config = (config or (None if rebuild else saved_config(root)) or load_config()).replace(
            {"extract.extractor": "precomputed", "extract.openie": str(openie)}
        )
    passages = read_corpus(corpus) if isinstance(corpus, (str, Path)) else dedupe_passages(corpus)
    check_writable(root)
    with writer_lock(root):
        discard_uncommitted(root)
        history: list[dict[str, Any]] = []
        if rebuild:
            prior = None
            if current_generation(root) is not None:
                live = read_index_files(root)
                history = live.history()
                live.close()
        else:
            prior = load_live(root)
            history = prior.history if prior else []
        config = config or (prior.config if prior else load_config())
        if prior is not None:
            _check_same_settings(prior.config, config, root)
        read_s = time.perf_counter() - t0
        plan = _plan_insert(prior, passages, update, root)
        if rebuild and history:
            plan = dataclasses.replace(plan, operation="rebuild")
        source = str(corpus) if isinstance(corpus, (str, Path)) else f"{len(passages)} passages"
        return _write(root, prior, plan, config, extractor, embedder, progress, source, history, t0, read_s, runner)


def delete_passages(
    out: str | Path,
    ids: Collection[str],
    config: Config | None = None,
    *,
    progress: Progress | None = None,
) -> BuildReport:
    """Delete the passages with these ids from the index at ``out``; see ``hippo delete``.

    Facts and entities no passage supports any more go with them, relation weights are
    recounted, synonymy edges of removed entities go. Nothing is extracted or embedded.
    Unknown ids are refused before anything is written. ``config`` may change only
    ``retrieval.*``/``runtime.*`` settings (e.g. ``runtime.keep_generations``).
    """
    t0 = time.perf_counter()
    root = Path(out)
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        raise HippoError("no passage ids given; pass --ids ID,ID,... or --corpus FILE")
    read_index_files(root).close()  # an index must be there: else the reason, before any lock file is made
    with writer_lock(root):
        discard_uncommitted(root)
        prior = load_live(root)
        if prior is None:  # pragma: no cover - checked above; CURRENT never disappears
            raise IndexFormatError(f"{root} is not a hippo index")
        config = config or prior.config
        _check_same_settings(prior.config, config, root)
        present = {p.id for p in prior.passages}
        unknown = [i for i in wanted if i not in present]
        if unknown:
            shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            raise HippoError(
                f"{len(unknown)} of {len(wanted)} id(s) are not in {root}: {shown}; nothing was deleted "
                f"(passage ids are listed in {prior.generation}/passages.jsonl)"
            )
        gone = set(wanted)
        final = [p for p in prior.passages if p.id not in gone]
        if not final:
            raise HippoError(
                f"deleting {len(gone)} passage(s) would leave {root} empty; nothing was deleted "
                f"(to drop the whole index, remove the directory)"
            )
        plan = _Plan(final, 0, 0, len(gone), len(final), 0, "delete")
        return _write(
            root, prior, plan, config, None, None, progress, f"{len(gone)} ids", prior.history, t0, time.perf_counter() - t0
        )


def _write(
    root: Path,
    prior: LiveIndex | None,
    plan: _Plan,
    config: Config,
    extractor: Extractor | None,
    embedder: Embedder | None,
    progress: Progress | None,
    source: str,
    history: list[dict[str, Any]],
    t0: float,
    read_s: float,
    runner: StageRunner | None = None,
) -> BuildReport:
    """Run the stages for ``plan.final`` and commit a generation (the writer lock is held)."""
    if prior is not None and _same_passages(plan.final, prior.passages):
        WorkCache(root).clear()
        skipped = {"duplicates": plan.duplicates} if plan.duplicates else {}
        timings = {"read": round(read_s, 3), "total": round(time.perf_counter() - t0, 3)}
        return BuildReport(root, prior.manifest["counts"], timings, skipped)
    built = prior.manifest if prior is not None else None

    def make_extractor_() -> Extractor:
        e = extractor or make_extractor(config.extract)
        if built is not None and e.name != built["extractor"]["name"]:
            raise HippoError(
                f"{root} was built with extractor {built['extractor']['name']}, not {e.name}; "
                f"add to it with the same extractor, or build a new index into another directory"
            )
        return e

    made: list[Embedder] = []

    def make_embedder_() -> Embedder:
        if not made:
            made.append(embedder or make_embedder(config.embed))
            if built is not None:
                check_embedder(built["embedder"]["id"], int(built["embedder"]["dim"]), made[0])
        return made[0]

    if embedder is not None and built is not None and embedder.id != built["embedder"]["id"]:
        make_embedder_()  # refuse a mismatched embedder before any work
    stages = Stages(root, config, prior, progress, runner)
    stages.timings["read"] = read_s
    extractions = stages.extract(plan.final, make_extractor_)
    kb = build_kb(plan.final, extractions)
    fmt = config.embed.fact_format
    texts = [p.content for p in plan.final] + kb.entity_names + [f.as_text(fmt) for f in kb.facts]
    embedder_id = built["embedder"]["id"] if built is not None else make_embedder_().id
    key = settings_key([embedder_id, config.embed.precision, config.embed.max_seq_length])
    vecs = stages.embed(texts, make_embedder_, key)
    n_p, n_e = len(plan.final), len(kb.entity_names)

    t = time.perf_counter()
    synonyms = stages.synonyms(kb, vecs[n_p : n_p + n_e])
    if progress:
        progress("graph", 0, 1)
    graph = assemble_graph(
        n_p, n_e, kb.fact_subject, kb.fact_object, kb.fact_passage_count,
        kb.passage_entity_rows, kb.passage_entity_cols, synonyms, config.graph.edge_weights,
    )
    if progress:
        progress("graph", 1, 1)
    stages.timings["graph"] = time.perf_counter() - t

    t = time.perf_counter()
    counts = {
        "passages": n_p,
        "entities": n_e,
        "facts": len(kb.facts),
        "triples_dropped": kb.dropped_triples,
        "nodes": graph.n_nodes,
        "edges": graph.edge_counts(),
        "distinct_strings": len(set(texts)),
    }
    ext = stages.extractor
    if ext is not None:
        ext_desc = {"name": ext.name, "settings": ext.settings()}
    elif built is not None:
        ext_desc = built["extractor"]
    else:
        e = make_extractor_()
        ext_desc = {"name": e.name, "settings": e.settings()}
    versions = library_versions()
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "hippo_version": versions.get("hippo", "0"),
        "versions": versions,
        "embedder": {"id": embedder_id, "dim": int(vecs.shape[1]), "precision": config.embed.precision},
        "extractor": ext_desc,
        "config": config.to_dict(),
        "counts": counts,
        "node_layout": "passages 0..P-1 in the order they entered the index, then entities P..P+E-1 by first appearance",
    }
    files = _index_files(plan.final, extractions, kb, vecs, graph, synonyms)
    files.update(compact_files(plan.final, kb, graph))
    stage = root / WORK_DIR / f"stage-{os.getpid()}"
    staged, ann = ann_files(
        {"passage_vectors": files["passage_vectors.npy"], "fact_vectors": files["fact_vectors.npy"],
         "entity_vectors": files["entity_vectors.npy"]},
        config.graph.ann_min_rows, stage,
    )
    files.update(staged)
    if ann:
        stages.stats["ann"] = ann
    notes = dict(stages.notes)
    for attr in ("invalid_triples", "delegated"):
        value = getattr(ext, attr, 0) if ext is not None else 0
        if value:
            notes[attr] = value
    if not any(e.triples for e in extractions):
        notes["warning"] = "no passage produced a triple: retrieval will be dense only"
    changes = _changes(plan, prior, kb, stages.stats)
    entry = {
        "generation": next_generation(root),
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "operation": plan.operation,
        "source": source,
        "passages": {k: changes["passages"][k] for k in ("added", "updated", "removed")},
        "entities": changes["entities"],
        "facts": changes["facts"],
        "counts": {k: counts[k] for k in ("passages", "entities", "facts", "edges")},
        "seconds": round(time.perf_counter() - t0, 3),
    }
    stats = {"timings_s": {k: round(v, 3) for k, v in stages.timings.items()}, "argv": sys.argv[1:], "history": [*history, entry]}
    written = write_generation(root, files, manifest, volatile={"stats.json": stats},
                               keep=config.runtime.keep_generations, progress=progress)
    WorkCache(root).clear()  # everything in it is now part of the live generation
    changes["generation"] = written.name
    stages.timings["write"] = time.perf_counter() - t
    stages.timings["total"] = time.perf_counter() - t0
    report_counts = {**counts, "distinct_strings_embedded": stages.stats["embedded"]}
    return BuildReport(root, report_counts, {k: round(v, 3) for k, v in stages.timings.items()}, notes, changes)


def _same_passages(a: Sequence[Passage], b: Sequence[Passage]) -> bool:
    return [(p.id, p.content, p.title) for p in a] == [(p.id, p.content, p.title) for p in b]


def _index_files(
    passages: Sequence[Passage], extractions: Sequence[Extraction], kb: KnowledgeBase, vecs: FloatArray,
    graph: Graph, synonyms: tuple[Any, Any, Any, Any],
) -> dict[str, Any]:
    """Every digested file of a generation. ``vecs`` holds passage, entity, then fact rows."""
    n_p, n_e = len(passages), len(kb.entity_names)
    si, sj, scos, _ = synonyms
    return {
        "passages.jsonl": [{"id": p.id, "title": p.title, "content": p.content} for p in passages],
        "entities.json": {"ids": kb.entity_ids, "names": kb.entity_names},
        "facts.jsonl": [{"id": f.id, "s": f.subject, "r": f.relation, "o": f.object} for f in kb.facts],
        "extractions.jsonl": [
            {"passage_id": e.passage_id, "entities": list(e.entities), "triples": [list(x) for x in e.triples]}
            for e in extractions
        ],
        "passage_vectors.npy": vecs[:n_p],
        "entity_vectors.npy": vecs[n_p : n_p + n_e],
        "fact_vectors.npy": vecs[n_p + n_e :],
        "fact_subject.npy": kb.fact_subject,
        "fact_object.npy": kb.fact_object,
        "passage_fact_indptr.npy": kb.passage_fact_indptr,
        "passage_fact_indices.npy": kb.passage_fact_indices,
        "entity_passage_count.npy": kb.entity_passage_count,
        "edge_src.npy": graph.src,
        "edge_dst.npy": graph.dst,
        "edge_weight.npy": graph.weight,
        "edge_kind.npy": graph.kind,
        # every entity pair with cosine >= threshold (i < j), before the per-entity cap:
        # what the next write needs to re-apply the cap without rescoring old pairs
        "synonym_candidates.npy": np.stack([si, sj], axis=1).astype(np.int32).reshape(-1, 2),
        "synonym_candidate_cos.npy": np.asarray(scos, dtype=np.float32),
    }


def compact_files(passages: Sequence[Passage], kb: KnowledgeBase, graph: Graph) -> dict[str, Any]:
    """String tables, name hash and CSR graph (:mod:`hippo.store.compact`) of a generation."""
    return {
        **string_files({
            "passage_ids": [p.id for p in passages],
            "passage_titles": [p.title for p in passages],
            "passage_contents": [p.content for p in passages],
            "entity_names": kb.entity_names,
            "fact_relations": [f.relation for f in kb.facts],
        }),
        **graph_files(graph),
    }


def _changes(plan: _Plan, prior: LiveIndex | None, kb: KnowledgeBase, stats: dict[str, Any]) -> dict[str, Any]:
    """What this write changed, and what it computed versus reused."""
    old_names = set(prior.entity_names) if prior else set()
    old_facts = prior.fact_ids if prior else set()
    kept_names = sum(1 for x in kb.entity_names if x in old_names)
    kept_facts = sum(1 for f in kb.facts if f.id in old_facts)
    return {
        "operation": plan.operation,
        "passages": {"added": plan.added, "updated": plan.updated, "removed": plan.removed,
                     "unchanged": plan.unchanged, "duplicates": plan.duplicates},
        "entities": {"added": len(kb.entity_names) - kept_names, "removed": len(old_names) - kept_names},
        "facts": {"added": len(kb.facts) - kept_facts, "removed": len(old_facts) - kept_facts},
        **stats,
    }
