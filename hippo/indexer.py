"""Write an index directory: build it, add to it, update or delete its passages.

* **A new index** (or ``rebuild``) runs every stage over the corpus: extract -> embed ->
  knowledge base -> synonymy -> graph, and writes one base segment
  (:func:`hippo.live.build.write_base`). Extraction and embedding checkpoint into the resume
  cache (:mod:`hippo.store.workcache`), so an interrupted build, run again, redoes at most one
  checkpoint.
* **An existing index** gets one new segment per write (:class:`hippo.live.writer.Writer`):
  passages it lacks are extracted and embedded, with the strings they bring; synonymy is
  searched for their new entities only; the graph entries they change are recomputed. The
  cost depends on what is written, not on what is stored. Passages present with the same text
  are skipped, with other text refused (or replaced with ``update``); a deletion tombstones.
* **Canonical order.** Passages keep the order they entered the index; entities and facts are
  numbered by first appearance. A compaction (:mod:`hippo.live.compaction`) writes the base a
  from-scratch build of the live passages writes.
* **Safety.** The writer lock is held for the whole write; segments are immutable; a write
  becomes visible in one atomic replacement of the manifest (:mod:`hippo.store.segments`).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hippo.config import Config, from_dict, load_config
from hippo.corpus import dedupe_passages, read_corpus
from hippo.embed import make_embedder
from hippo.embed.st import check_embedder
from hippo.errors import ConfigError, HippoError, IndexFormatError
from hippo.extract import make_extractor
from hippo.kb import build_kb
from hippo.live.build import base_from_kb, library_versions, write_base
from hippo.live.memory import MemoryWriter
from hippo.live.writer import WriteReport
from hippo.protocols import Embedder, Extractor
from hippo.reuse import Progress, StageRunner, Stages
from hippo.store import check_writable, read_manifest, writer_lock
from hippo.store.workcache import WorkCache, settings_key
from hippo.types import Passage

__all__ = ["BuildReport", "MUTABLE_KEYS", "Progress", "build_index", "delete_passages", "library_versions", "saved_config"]

MUTABLE_KEYS = ("extract.openie", "extract.missing", "extract.spacy_batch_size", "embed.batch_size", "embed.device")
"""Index-time settings that may differ between writes of one index: inputs and speed knobs
that do not change what an index holds (``retrieval.*`` and ``runtime.*`` may change too)."""


@dataclass(frozen=True)
class BuildReport:
    """What a write did: where, how much, how long, and what changed.

    ``changes`` is empty only for the no-op (nothing to add, update or delete): then nothing
    was written and ``counts`` describe the live index.
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
    if not root.is_dir():
        return None
    manifest = read_manifest(root)
    if manifest is None:
        return None
    return from_dict(manifest["config"], source=f"{root}/CURRENT")


def check_same_settings(prior: Config, config: Config, root: Path) -> None:
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


def model_factories(
    root: Path, config: Config, manifest: dict[str, Any] | None, extractor: Extractor | None, embedder: Embedder | None,
) -> tuple[Any, Any]:
    """Builders of the extractor and embedder a write uses (made once, on first need; the
    embedder is checked against the index's)."""
    made: dict[str, Any] = {}

    def make_extractor_() -> Extractor:
        if "x" not in made:
            made["x"] = extractor or make_extractor(config.extract)
        return made["x"]  # type: ignore[no-any-return]

    def make_embedder_() -> Embedder:
        if "e" not in made:
            e = embedder or make_embedder(config.embed, config.llm)
            built = (manifest or {}).get("embedder")
            if built:
                check_embedder(built["id"], int(built["dim"]), e)
            made["e"] = e
        return made["e"]  # type: ignore[no-any-return]

    if embedder is not None and manifest is not None and manifest.get("embedder"):
        make_embedder_()  # refuse a mismatched embedder before any work
    return make_extractor_, make_embedder_


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

    A new ``out`` gets a fresh index. An existing index gets the passages it lacks as one new
    segment; passages it has with the same text are skipped, and with other text are replaced
    if ``update`` (else refused). ``config`` defaults to the existing index's (else the
    defaults); its index-time settings must match the existing index's. ``rebuild`` ignores
    the existing index instead: a from-scratch build of ``corpus``, with any settings, replaces
    it. ``openie`` implies the precomputed extractor; ``extractor``/``embedder`` override the
    ones the config names. A write interrupted at any point leaves the previous index readable;
    running it again finishes it, reusing the work already done. ``runner`` computes the
    missing extractions and vectors elsewhere (e.g. :class:`hippo.distributed.RayRunner`); the
    index written is the same.
    """
    t0 = time.perf_counter()
    root = Path(out)
    if openie is not None:
        config = (config or (None if rebuild else saved_config(root)) or load_config()).replace(
            {"extract.extractor": "precomputed", "extract.openie": str(openie)}
        )
    passages = read_corpus(corpus) if isinstance(corpus, (str, Path)) else dedupe_passages(corpus)
    source = str(corpus) if isinstance(corpus, (str, Path)) else f"{len(passages)} passages"
    check_writable(root)
    with writer_lock(root):
        manifest = read_manifest(root)
        if manifest is None or rebuild:
            config = config or load_config()
            return _build_base(root, passages, config, extractor, embedder, progress, source, t0, manifest is not None, runner)
        mw = MemoryWriter.open(root, config=config, embedder=embedder, extractor=extractor, progress=progress, runner=runner)
        mw.background = False
        try:
            with mw.mutex:
                report = mw.writer.add(passages, update=update, source=source)
            mw.after_write()
        finally:
            mw.close()
        return _report(root, report, t0)


def _report(root: Path, report: WriteReport, t0: float) -> BuildReport:
    timings = {**report.timings_s, "total": round(time.perf_counter() - t0, 3)}
    if not report.changed:
        notes = {"duplicates": report.passages["duplicates"]} if report.passages["duplicates"] else {}
        return BuildReport(root, report.counts, timings, notes)
    changes = report.to_dict()
    return BuildReport(root, report.counts, timings, {}, changes)


def _build_base(
    root: Path, passages: list[Passage], config: Config, extractor: Extractor | None, embedder: Embedder | None,
    progress: Progress | None, source: str, t0: float, rebuild: bool, runner: StageRunner | None = None,
) -> BuildReport:
    """A from-scratch build of ``passages`` as the index's only segment."""
    make_x, make_e = model_factories(root, config, None, extractor, embedder)
    stages = Stages(root, config, None, progress, runner)
    extractions = stages.extract(passages, make_x)
    kb = build_kb(passages, extractions)
    fmt = config.embed.fact_format
    texts = [p.content for p in passages] + kb.entity_names + [f.as_text(fmt) for f in kb.facts]
    emb = make_e()
    key = settings_key([emb.id, config.embed.precision, config.embed.max_seq_length])
    vecs = stages.embed(texts, make_e, key)
    ext = stages.extractor or make_x()
    base = base_from_kb(passages, extractions, kb, vecs)
    extra = {
        "embedder": {"id": emb.id, "dim": int(vecs.shape[1]), "precision": config.embed.precision},
        "extractor": {"name": ext.name, "settings": ext.settings()},
    }
    timings = dict(stages.timings)
    operation = "rebuild" if rebuild else "build"
    manifest = write_base(root, base, config, extra, operation, source, progress, timings)
    WorkCache(root).clear()  # everything in it is now part of the index
    timings["total"] = round(time.perf_counter() - t0, 3)
    notes = dict(stages.notes)
    for attr in ("invalid_triples", "delegated"):
        value = getattr(ext, attr, 0)
        if value:
            notes[attr] = value
    if not any(e.triples for e in extractions):
        notes["warning"] = "no passage produced a triple: retrieval will be dense only"
    counts = {**manifest["counts"], "distinct_strings": len(set(texts)), "distinct_strings_embedded": stages.stats["embedded"]}
    changes = {
        "operation": operation, "generation": manifest["generation"],
        "passages": {"added": len(passages), "updated": 0, "removed": 0, "unchanged": 0, "duplicates": 0},
        "entities": {"added": len(kb.entity_names)}, "facts": {"added": len(kb.facts)},
        "extracted": stages.stats["extracted"], "embedded": stages.stats["embedded"], "reused": stages.stats["reused"],
        "synonymy": manifest.get("stats", {}).get("synonymy", {}), "segment": manifest["segments"][0],
    }
    return BuildReport(root, counts, {k: round(v, 3) for k, v in timings.items()}, notes, changes)


def delete_passages(
    out: str | Path,
    ids: Collection[str],
    config: Config | None = None,
    *,
    progress: Progress | None = None,
    missing_ok: bool = False,
) -> BuildReport:
    """Delete the passages with these ids from the index at ``out``; see ``hippo delete``.

    Each becomes a tombstone in one new segment: gone from results at once, its facts and
    entities no live passage states any more with it, weights recounted. Nothing is extracted
    or embedded. Unknown ids are refused before anything is written (unless ``missing_ok``).
    """
    t0 = time.perf_counter()
    root = Path(out)
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        raise HippoError("no passage ids given; pass --ids ID,ID,... or --corpus FILE")
    manifest = read_manifest(root) if root.is_dir() else None
    if manifest is None:
        raise IndexFormatError(f"{root} is not a hippo index; build one with `hippo index CORPUS --out {root}`")
    mw = MemoryWriter.open(root, config=config, progress=progress)
    mw.background = False
    try:
        with mw.mutex:
            report = mw.writer.delete(wanted, missing_ok=missing_ok)
        mw.after_write()
    finally:
        mw.close()
    return _report(root, report, t0)

