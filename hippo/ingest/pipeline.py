"""Index a folder of documents, re-index what changed, delete documents.

PROVISIONAL write path: until the living index (issue 17) lands, the passages go through
today's ``hippo.indexer.build_index`` (new and changed chunks) and ``delete_passages``
(chunks no document has any more), and the documents through the registry beside the index
(:mod:`hippo.ingest.provisional`). TODO(lead, living index): one ``mem.add``/``mem.delete``
commit with passage metadata, and the registry in the store.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hippo.config import Config, load_config
from hippo.errors import ConfigError, CorpusError, HippoError
from hippo.ingest.chunking import Chunker
from hippo.ingest.collect import Loaded, Skipped, load, read_bytes, scan, unique_ids
from hippo.ingest.document import Document, SkipFile
from hippo.ingest.plan import DocState, DocumentPlan, document_hash, file_hash, files_to_read, plan_documents
from hippo.ingest.provisional import Registry, load_registry, save_registry, text_name, write_report
from hippo.protocols import Embedder, Extractor
from hippo.reuse import Progress
from hippo.store import check_writable, current_generation, read_index_files, writer_lock
from hippo.types import Passage


@dataclass
class IngestReport:
    """What a document run did: the plan, the chunks, the skipped files, and the index
    writes (``hippo index``'s report of each, ``build`` and ``delete``)."""

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


def _live_ids(root: Path) -> set[str]:
    if current_generation(root) is None:
        return set()
    files = read_index_files(root)
    try:
        return set(files.strings("passage_ids"))
    finally:
        files.close()


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
    check_writable(root)
    timings: dict[str, float] = {}
    with writer_lock(root):
        registry = Registry() if rebuild or current_generation(root) is None else load_registry(root)
        if not rebuild:
            _check_settings(registry, config, root)
        live = set() if rebuild else _live_ids(root)
        # a document whose chunks were deleted by id (hippo delete --ids) is read again and restored
        damaged = {rec["file"] for rec in registry.documents.values() if not {c["id"] for c in rec["chunks"]} <= live}
        files, skipped = scan(path, config.ingest.max_file_mb, exclude=root)
        single = Path(path).is_file()
        found: dict[str, str] = {}
        loaded: list[Loaded] = []
        failed: set[str] = set()
        for f in files:
            try:
                data = read_bytes(f)
                found[f.id] = file_hash(data)
                if f.id in damaged or files_to_read(registry.files, {f.id: found[f.id]}):
                    loaded.append(load(f, data))
            except SkipFile as exc:
                if single:
                    raise CorpusError(f"{f.source}: {exc}") from None
                failed.add(f.id)
                skipped.append(Skipped(f.source, str(exc)))
        reread = {item.file.id for item in loaded}
        taken = [d for d, rec in registry.documents.items() if rec["file"] not in reread and rec["file"] not in failed]
        loaded, dup = unique_ids(loaded, taken)
        skipped += dup + [s for item in loaded for s in item.skipped]
        docs: dict[str, Document] = {d.id: d for item in loaded for d in item.documents}
        states = {d.id: DocState(item.file.id, document_hash(d)) for item in loaded for d in item.documents}
        registered = {d: DocState(rec["file"], rec["hash"]) for d, rec in registry.documents.items()}
        plan = plan_documents(registered, found, reread, states, failed, sync)
        timings["read"] = time.perf_counter() - t0

        t = time.perf_counter()
        chunker = chunker or Chunker.from_config(config.ingest, config.embed)
        todo = plan.new + plan.changed
        chunk_passages = {d: chunker.passages(docs[d]) for d in todo}
        adding = [p for d in todo for p in chunk_passages[d]]
        timings["chunk"] = time.perf_counter() - t

        missing = [p for d in plan.unchanged if d in docs and not {c["id"] for c in registry.documents[d]["chunks"]} <= live
                   for p in chunker.passages(docs[d])]
        adding += missing
        remaining = set(registry.documents) - set(plan.changed) - set(plan.deleted)
        keep = registry.chunk_ids(remaining - set(plan.new)) | {p.id for p in adding}
        stale = sorted((registry.chunk_ids(set(plan.changed) | set(plan.deleted)) - keep) & live)
        if not adding and not live:
            what = f"; skipped {len(skipped)} file(s), the first: {skipped[0].line()}" if skipped else ""
            raise CorpusError(f"{path}: no document to index{what}")
        writes: dict[str, dict[str, Any]] = {}
        t = time.perf_counter()
        if adding or rebuild:
            from hippo.indexer import build_index

            writes["build"] = build_index(adding, root, config, extractor=extractor, embedder=embedder,
                                          progress=progress, rebuild=rebuild).to_dict()
        if stale:
            from hippo.indexer import delete_passages

            writes["delete"] = delete_passages(root, stale, config, progress=progress).to_dict()
        timings["index"] = time.perf_counter() - t

        t = time.perf_counter()
        texts = _update_registry(registry, plan, docs, chunk_passages, states, found, failed, loaded, config)
        save_registry(root, registry, texts)
        timings["registry"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        last = writes.get("delete") or writes.get("build")
        counts = dict(last["counts"]) if last else _live_counts(root)
        counts["documents"] = len(registry.documents)
        report = IngestReport(
            root, plan, skipped,
            {"chunked": len(adding) - len(missing), "added": len({p.id for p in adding} - live), "deleted": len(stale),
             "restored": len(missing)},
            {k: round(v, 3) for k, v in timings.items()}, writes, counts,
        )
        write_report(root, report.to_dict())
        return report


def _live_counts(root: Path) -> dict[str, Any]:
    files = read_index_files(root)
    try:
        return dict(files.manifest["counts"])
    finally:
        files.close()


def _update_registry(
    registry: Registry, plan: DocumentPlan, docs: dict[str, Document], chunk_passages: dict[str, list[Passage]],
    states: dict[str, DocState], found: dict[str, str], failed: set[str], loaded: Sequence[Loaded], config: Config,
) -> dict[str, str]:
    """Apply the plan to the registry in place; return the new texts to store (name -> text)."""
    texts: dict[str, str] = {}
    for d in plan.deleted:
        registry.documents.pop(d, None)
    for d in plan.new + plan.changed:
        doc = docs[d]
        name = text_name(doc.text)
        texts[name] = doc.text
        chunks = []
        for p in chunk_passages[d]:
            c = {k: p.metadata[k] for k in ("headings", "span", "chunk")}
            if "page" in p.metadata:
                c["page"] = p.metadata["page"]
            chunks.append({"id": p.id, **c})
        registry.documents[d] = {"source": doc.source, "title": doc.title, "kind": doc.kind, "file": states[d].file,
                                 "hash": states[d].hash, "text": name, "chunks": chunks}
    for d in plan.unchanged:
        if d in docs:  # re-read (its file changed) but the same: the source may have moved
            registry.documents[d]["source"] = docs[d].source
    partial = {item.file.id for item in loaded if item.skipped}
    # a file is recorded once all of it was read: bad records and failed files are retried next time
    registry.files = {f: h for f, h in found.items() if f not in failed and f not in partial}
    registry.settings = chunk_settings(config)
    return texts


def delete_documents(out: str | Path, keys: Sequence[str], config: Config | None = None) -> dict[str, Any]:
    """Delete documents (by id or source) and every chunk of theirs that no other document
    has. Unknown keys delete nothing. A re-run of ``hippo index`` over a folder that still
    holds a deleted document's file indexes it again."""
    root = Path(out)
    read_index_files(root).close()
    with writer_lock(root):
        registry = load_registry(root)
        ids: list[str] = []
        unknown: list[str] = []
        for key in keys:
            found = registry.find(key)
            (ids if found else unknown).append(found or key)
        if unknown:
            known = ", ".join(sorted(registry.documents)[:5]) or "none (this index has no documents)"
            raise HippoError(
                f"{len(unknown)} document(s) are not in {root}: {', '.join(unknown)}; nothing was deleted "
                f"(documents: {known}{' ...' if len(registry.documents) > 5 else ''}; `hippo show-doc {root}` lists them)"
            )
        gone = set(ids)
        live = _live_ids(root)
        stale = sorted((registry.chunk_ids(gone) - registry.chunk_ids(set(registry.documents) - gone)) & live)
        report: dict[str, Any] = {"documents": sorted(gone)}
        if stale:
            from hippo.indexer import delete_passages

            report.update(delete_passages(root, stale, config).to_dict())
        files = {registry.documents[d]["file"] for d in gone}
        for d in gone:
            del registry.documents[d]
        for f in files:
            registry.files.pop(f, None)
        save_registry(root, registry, {})
        report["chunks_deleted"] = len(stale)
        return report
