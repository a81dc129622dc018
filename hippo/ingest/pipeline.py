"""Index a folder of documents, re-index what changed, delete documents: on the living index.

Each chunk is a passage whose metadata is its citation (``document_id``, ``source``,
``title``, ``headings``, ``span``, ``chunk``, ``page``), so hits cite their source straight from
the index. A first run on an empty ``--out`` builds the base with the normal indexer. A re-run
reads the files whose bytes changed, re-chunks the documents whose text changed, and writes
only them: one ``add`` (new chunks, and chunks whose citation moved, replaced in place) and one
``delete`` (the chunks a changed, deleted or ``--sync``-gone document no longer has), the
delete first. Nothing else is extracted, embedded or rewritten.

The passages are the truth about which documents exist; the registry
(:mod:`hippo.store.documents`) keeps their texts and file hashes. A write stores the new texts
and a ``pending`` note first, then commits the passages, then the registry: killed anywhere,
the next run re-derives the documents the note names from the passages' metadata
(:func:`recover`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hippo.config import Config, load_config
from hippo.documents import Held, consistent, held_documents
from hippo.errors import ConfigError, CorpusError, HippoError
from hippo.ingest.chunking import Chunker
from hippo.ingest.collect import Loaded, Skipped, load, read_bytes, scan, unique_ids
from hippo.ingest.document import Document, SkipFile
from hippo.ingest.plan import DocState, DocumentPlan, document_hash, file_hash, files_to_read, plan_documents
from hippo.ingest.reconcile import Wanted, reconcile
from hippo.live.memory import MemoryWriter
from hippo.protocols import Embedder, Extractor
from hippo.reuse import Progress
from hippo.store import check_writable, read_manifest, writer_lock
from hippo.store.documents import (
    Registry,
    find_document,
    load_pending,
    load_registry,
    save_registry,
    write_pending,
    write_report,
    write_texts,
)
from hippo.types import Passage


@dataclass
class IngestReport:
    """What a document run did: the plan, the chunks, the skipped files, and the index
    writes (``build`` for a first run, else ``add`` and ``delete``)."""

    path: Path
    plan: DocumentPlan
    skipped: list[Skipped]
    chunks: dict[str, int]
    timings_s: dict[str, float]
    writes: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON shape of ``hippo index FOLDER --json`` and of ``DIR/ingest_report.json``."""
        p = self.plan
        return {
            "path": str(self.path),
            "documents": {**p.to_dict(), "lists": {k: getattr(p, k) for k in ("new", "changed", "gone", "deleted", "failed")}},
            "chunks": self.chunks,
            "skipped": [s.to_dict() for s in self.skipped],
            "counts": self.counts,
            "timings_s": self.timings_s,
            "writes": self.writes,
        }


def chunk_settings(config: Config) -> dict[str, Any]:
    """What decides the chunks of a document: recorded in the registry, checked on re-runs."""
    return {"chunk_tokens": config.ingest.chunk_tokens, "chunk_overlap": config.ingest.chunk_overlap,
            "tokenizer": config.embed.model}


def _check_settings(registry: Registry, config: Config, root: Path) -> None:
    now = chunk_settings(config)
    for key, old in registry.settings.items():
        if key in now and now[key] != old:
            raise ConfigError(
                f"{'ingest.' + key if key != 'tokenizer' else 'embed.model'} is {now[key]!r} here but the documents in "
                f"{root} were chunked with {old!r}; drop the setting, or re-chunk everything with --rebuild"
            )


def recover(registry: Registry, pending: Mapping[str, Mapping[str, Any] | None], held: Held) -> set[str]:
    """Bring ``registry`` (in place) in line with the passages after an interrupted write:
    a pending record the passages agree with was committed and replaces the registered one; a
    pending deletion whose document holds no passage any more is done. Returns the documents
    whose record agrees with nothing (to be re-read and re-derived from the passages)."""
    unsure: set[str] = set()
    for doc_id, rec in pending.items():
        if rec is None:
            if doc_id not in held.docs and not consistent(registry.documents.get(doc_id, {}), doc_id, held, complete=False):
                gone = registry.documents.pop(doc_id, None)
                if gone is not None:
                    registry.files.pop(gone["file"], None)
            else:
                unsure.add(doc_id)
        elif consistent(rec, doc_id, held):
            registry.documents[doc_id] = dict(rec)
            registry.files.pop(rec["file"], None)  # its file's hash was not recorded: read it again
        else:
            unsure.add(doc_id)
    return unsure


@dataclass
class _Read:
    """The files of a run: their hashes, what was read, and what was skipped."""

    found: dict[str, str]
    loaded: list[Loaded]
    failed: set[str]
    skipped: list[Skipped]


def _read(path: str | Path, root: Path, config: Config, known: Mapping[str, str], force: set[str],
          registered: Mapping[str, DocState]) -> _Read:
    """Hash every file under ``path``; load those whose hash is not ``known`` (or in ``force``).
    A document whose id a ``registered`` document of another file (not read now) has is skipped."""
    files, skipped = scan(path, config.ingest.max_file_mb, exclude=root)
    single = Path(path).is_file()
    found: dict[str, str] = {}
    loaded: list[Loaded] = []
    failed: set[str] = set()
    for f in files:
        try:
            data = read_bytes(f)
            found[f.id] = file_hash(data)
            if f.id in force or files_to_read(known, {f.id: found[f.id]}):
                loaded.append(load(f, data))
        except SkipFile as exc:
            if single:
                raise CorpusError(f"{f.source}: {exc}") from None
            failed.add(f.id)
            skipped.append(Skipped(f.source, str(exc)))
    reread = {item.file.id for item in loaded}
    taken = [d for d, s in registered.items() if s.file not in reread and s.file not in failed]
    loaded, dup = unique_ids(loaded, taken)
    skipped += dup + [s for item in loaded for s in item.skipped]
    return _Read(found, loaded, failed, skipped)


def index_documents(
    path: str | Path,
    out: str | Path,
    config: Config | None = None,
    *,
    sync: bool = False,
    rebuild: bool = False,
    extractor: Extractor | None = None,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
    chunker: Chunker | None = None,
) -> IngestReport:
    """Index the documents under ``path`` (a folder, recursively, or one file) into ``out``.

    On an existing index only new and changed documents are chunked, extracted and embedded;
    chunks a document no longer has are deleted; ``sync`` also deletes the documents whose
    files disappeared. Bad files are skipped and listed (a single named file that cannot be
    read is an error). ``rebuild`` re-chunks and re-indexes everything from scratch.
    """
    t0 = time.perf_counter()
    root = Path(out)
    config = config or load_config()
    chunker = chunker or Chunker.from_config(config.ingest, config.embed)
    check_writable(root)
    with writer_lock(root):
        if rebuild or read_manifest(root) is None:
            return _build(path, root, config, chunker, rebuild, extractor, embedder, progress, t0)
        mw = MemoryWriter.open(root, config=config, embedder=embedder, extractor=extractor, progress=progress)
        mw.background = False  # merges the policy asks for run before the command returns
        try:
            return _rerun(path, root, config, chunker, sync, mw, t0)
        finally:
            mw.close()


def _build(path: str | Path, root: Path, config: Config, chunker: Chunker, rebuild: bool, extractor: Extractor | None,
           embedder: Embedder | None, progress: Progress | None, t0: float) -> IngestReport:
    """A first run (or ``rebuild``): every document, one base segment."""
    from hippo.indexer import build_index

    timings: dict[str, float] = {}
    read = _read(path, root, config, {}, set(), {})
    docs = [d for item in read.loaded for d in item.documents]
    if not docs:
        what = f"; skipped {len(read.skipped)} file(s), the first: {read.skipped[0].line()}" if read.skipped else ""
        raise CorpusError(f"{path}: no document to index{what}")
    states = {d.id: DocState(item.file.id, document_hash(d)) for item in read.loaded for d in item.documents}
    plan = plan_documents({}, read.found, {i.file.id for i in read.loaded}, states, read.failed)
    timings["read"] = time.perf_counter() - t0
    t = time.perf_counter()
    wanted = [Wanted(d.id, chunker.passages(d)) for d in docs]
    timings["chunk"] = time.perf_counter() - t
    writes = reconcile(wanted, Held({}, {}, {}), set())
    registry = Registry(chunk_settings(config))
    records = _records(registry, {d.id: d for d in docs}, writes.records, states)
    t = time.perf_counter()
    if rebuild and read_manifest(root) is not None:  # the index exists: note what this write replaces
        write_texts(root, [d.text for d in docs])
        write_pending(root, {**dict.fromkeys(load_registry(root).documents), **records})
    report = build_index(writes.add, root, config, extractor=extractor, embedder=embedder, progress=progress, rebuild=rebuild)
    timings["index"] = time.perf_counter() - t
    t = time.perf_counter()
    write_texts(root, [d.text for d in docs])  # before the first commit the folder must hold nothing but the index
    registry.documents.update(records)
    registry.files = _complete_files(read)
    save_registry(root, registry)
    timings["registry"] = time.perf_counter() - t
    counts = {**report.counts, "documents": len(records)}
    chunks = {"chunked": sum(len(w.passages) for w in wanted), "added": len(writes.add), "updated": 0, "deleted": 0,
              "shared": writes.shared}
    return _finish(root, plan, read.skipped, chunks, timings, {"build": report.to_dict()}, counts, t0)


def _rerun(path: str | Path, root: Path, config: Config, chunker: Chunker, sync: bool, mw: MemoryWriter, t0: float) -> IngestReport:
    """A run over an existing index: write what changed only."""
    timings: dict[str, float] = {}
    held = held_documents(mw.snapshot)
    registry, pending = load_registry(root), load_pending(root)
    _check_settings(registry, config, root)
    unsure = recover(registry, pending, held)
    # a record the passages disagree with (a chunk deleted by id, an interrupted write) is re-derived
    registered = {d: DocState(r["file"], r["hash"] if d not in unsure and consistent(r, d, held) else "")
                  for d, r in registry.documents.items()}
    for d in unsure:  # an interrupted write's documents the registry does not know
        registered.setdefault(d, DocState(str((pending.get(d) or {}).get("file", "")), ""))
    force = {s.file for s in registered.values() if not s.hash}
    read = _read(path, root, config, registry.files, force, registered)
    docs: dict[str, Document] = {d.id: d for item in read.loaded for d in item.documents}
    states = {d.id: DocState(item.file.id, document_hash(d)) for item in read.loaded for d in item.documents}
    plan = plan_documents(registered, read.found, {i.file.id for i in read.loaded}, states, read.failed, sync)
    timings["read"] = time.perf_counter() - t0

    t = time.perf_counter()
    todo = plan.new + plan.changed
    wanted = [Wanted(d, chunker.passages(docs[d])) for d in todo]
    timings["chunk"] = time.perf_counter() - t
    kept = [d for d in registered if d not in set(todo) | set(plan.deleted)]
    wanted += _kept(kept, registry, held, mw)
    managed = set(registered) | set(docs)
    writes = reconcile(wanted, held, managed)
    if not (registered or writes.add):
        what = f"; skipped {len(read.skipped)} file(s), the first: {read.skipped[0].line()}" if read.skipped else ""
        raise CorpusError(f"{path}: no document to index{what}")

    t = time.perf_counter()
    records = _records(registry, docs, {d: writes.records[d] for d in todo}, states)
    outcome: dict[str, dict[str, Any]] = {}
    if writes.add or writes.delete:
        write_texts(root, [docs[d].text for d in todo])
        write_pending(root, {**records, **dict.fromkeys(plan.deleted)})
        outcome = _write(mw, writes.add, writes.delete)
    timings["index"] = time.perf_counter() - t

    t = time.perf_counter()
    for d in plan.deleted:
        registry.documents.pop(d, None)
    for d in kept:
        if d in registry.documents and d in writes.records:
            registry.documents[d]["shared"] = writes.records[d]["shared"]
    registry.documents.update(records)
    for d in plan.unchanged:
        if d in docs:  # re-read (its file changed) but the same: the source may have moved
            registry.documents[d]["source"] = docs[d].source
    registry.files = _complete_files(read)
    registry.settings = chunk_settings(config)
    save_registry(root, registry)
    timings["registry"] = time.perf_counter() - t
    counts = dict(mw.writer.manifest["counts"])
    foreign = {d for d in held.docs if d not in managed}
    counts["documents"] = (len({w.doc_id for w in wanted if w.passages or w.holds} | foreign)
                           + sum(1 for d in held.owner.values() if d is None))
    added = outcome.get("add", {}).get("passages", {})
    chunks = {"chunked": sum(len(w.passages) for w in wanted[: len(todo)]), "added": int(added.get("added", 0)),
              "updated": int(added.get("updated", 0)), "deleted": len(writes.delete), "shared": writes.shared}
    return _finish(root, plan, read.skipped, chunks, timings, outcome, counts, t0)


def _kept(kept: Sequence[str], registry: Registry, held: Held, mw: MemoryWriter) -> list[Wanted]:
    """The chunks of documents that are not re-chunked: those they hold stay as they are (no
    passage needed); those they share become passages with their own citation, in case the
    document holding them goes."""
    snap = mw.snapshot
    out = []
    for d in kept:
        rec = registry.documents.get(d)
        owned = held.docs.get(d, {})
        if rec is None or not consistent(rec, d, held):
            out.append(Wanted(d, [], list(owned), rechunked=False))
            continue
        shared = []
        for pid, meta in rec.get("shared", {}).items():
            row = held.rows.get(pid)
            if row is not None:
                shared.append(Passage(pid, snap.passage_contents[row], snap.passage_titles[row], meta))
        out.append(Wanted(d, shared, [str(c[0]) for c in rec["chunks"] if str(c[0]) in owned], rechunked=False))
    return out


def _records(registry: Registry, docs: Mapping[str, Document], chunked: Mapping[str, dict[str, Any]],
             states: Mapping[str, DocState]) -> dict[str, dict[str, Any]]:
    """New registry records of the re-chunked documents."""
    from hippo.store.documents import text_name

    out = {}
    for d, got in chunked.items():
        doc = docs[d]
        out[d] = {"source": doc.source, "title": doc.title, "kind": doc.kind, "file": states[d].file, "hash": states[d].hash,
                  "text": text_name(doc.text), "chunks": got["chunks"], "shared": got["shared"]}
    return out


def _complete_files(read: _Read) -> dict[str, str]:
    """The file hashes to record: a file is recorded once all of it was read (bad records and
    failed files are retried next time)."""
    partial = {item.file.id for item in read.loaded if item.skipped}
    return {f: h for f, h in read.found.items() if f not in read.failed and f not in partial}


def _write(mw: MemoryWriter, add: Sequence[Passage], delete: Sequence[str]) -> dict[str, dict[str, Any]]:
    """One ``delete`` (chunks no document has any more) then one ``add`` (new chunks, and chunks
    whose citation moved, replaced in place); each a segment. In this order every document's
    live passages between the two commits are a subset of one version of it (its old record's)."""
    out: dict[str, dict[str, Any]] = {}
    if delete:
        before = mw.writer.manifest["generation"]
        gone = mw.delete(list(delete), missing_ok=True)
        m = mw.writer.manifest
        out["delete"] = {"operation": "delete", "generation": m["generation"], "passages": {"removed": len(gone)},
                         "written": m["generation"] != before}
    if add:
        mw.add(list(add), update=True)
        out["add"] = mw.last_report.to_dict()
    return out


def _finish(root: Path, plan: DocumentPlan, skipped: list[Skipped], chunks: dict[str, int], timings: dict[str, float],
            writes: dict[str, dict[str, Any]], counts: dict[str, Any], t0: float) -> IngestReport:
    timings["total"] = time.perf_counter() - t0
    report = IngestReport(root, plan, skipped, chunks, {k: round(v, 3) for k, v in timings.items()}, writes, counts)
    write_report(root, report.to_dict())
    return report


def delete_documents(out: str | Path, keys: Sequence[str], config: Config | None = None) -> dict[str, Any]:
    """Delete documents (by id or source) and every chunk of theirs; a chunk another document
    shares is handed to it instead. Unknown keys delete nothing. A re-run of ``hippo index``
    over a folder that still holds a deleted document's file indexes it again."""
    root = Path(out)
    t0 = time.perf_counter()
    with writer_lock(root):
        mw = MemoryWriter.open(root, config=config)
        mw.background = False
        try:
            held = held_documents(mw.snapshot)
            registry, pending = load_registry(root), load_pending(root)
            recover(registry, pending, held)
            known = {d: {"source": (registry.documents.get(d) or next(iter(held.docs.get(d, {}).values()), {})).get("source", "")}
                     for d in set(held.docs) | {d for d, r in registry.documents.items() if consistent(r, d, held, complete=False)}}
            ids: list[str] = []
            unknown: list[str] = []
            for key in keys:
                found = find_document(known, key)
                (ids if found else unknown).append(found or key)
            if unknown:
                some = ", ".join(sorted(known)[:5]) or "none (this index has no documents)"
                raise HippoError(
                    f"{len(unknown)} document(s) are not in {root}: {', '.join(unknown)}; nothing was deleted "
                    f"(documents: {some}{' ...' if len(known) > 5 else ''}; `hippo show-doc {root}` lists them)"
                )
            gone = set(ids)
            kept = [d for d in known if d not in gone]
            writes = reconcile(_kept(sorted(kept), registry, held, mw), held, set(known))
            write_pending(root, dict.fromkeys(sorted(gone)))
            outcome = _write(mw, writes.add, writes.delete)
            for d in gone:
                rec = registry.documents.pop(d, None)
                if rec is not None:
                    registry.files.pop(rec["file"], None)
            for d in kept:
                if d in registry.documents and d in writes.records:
                    registry.documents[d]["shared"] = writes.records[d]["shared"]
            save_registry(root, registry)
            counts = dict(mw.writer.manifest["counts"])
        finally:
            mw.close()
    return {"path": str(root), "documents": sorted(gone), "chunks_deleted": len(writes.delete),
            "chunks_handed_over": len(writes.add), "writes": outcome, "counts": counts,
            "timings_s": {"total": round(time.perf_counter() - t0, 3)}}
