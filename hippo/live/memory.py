"""The write side of a writable engine: the writer lock, item validation, writes and merges.

``hippo.open_index(path, writable=True)`` makes a :class:`MemoryWriter`: it takes the
index's writer lock (waiting up to ``wait`` seconds, then failing with the holder's PID) and
keeps it until :meth:`MemoryWriter.close`. Each :meth:`~MemoryWriter.add` or
:meth:`~MemoryWriter.delete` is one segment, durable when it returns, and the engine that
owns the writer answers from it at once. Merges (:mod:`hippo.live.compaction`) run in a
background thread and hold the writer's mutex only to swap the manifest.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hippo.config import Config, from_dict, load_config, with_query_overrides
from hippo.corpus import make_passage
from hippo.errors import HippoError, IndexFormatError
from hippo.live.build import empty_base, write_base
from hippo.live.snapshot import Snapshot
from hippo.live.writer import Writer
from hippo.protocols import Embedder, Extractor
from hippo.store import check_writable, read_manifest
from hippo.store.locks import WriterLock
from hippo.types import META_KEYS, Passage

ITEM_KEYS = ("text", "title", "id", "metadata")
MAX_CHARS = 1_000_000
"""Longest passage accepted (spaCy's default ``max_length``). The embedder reads only its first
``embed.max_seq_length`` tokens; long documents belong in ``hippo index``, which chunks them."""


def to_passages(items: Sequence[Mapping[str, Any] | Passage]) -> list[Passage]:
    """Validate ``add`` items (dicts or passages) into passages; the first bad item is an
    error naming it and the fix (nothing is written)."""
    if isinstance(items, (str, bytes)) or isinstance(items, Mapping):
        raise HippoError("add takes a list of items: [{\"text\": ...}, ...]")
    out: list[Passage] = []
    for n, item in enumerate(items):
        where = f"item {n}"
        if isinstance(item, Passage):
            p = item
        elif isinstance(item, Mapping):
            unknown = [k for k in item if k not in ITEM_KEYS and k not in META_KEYS]
            if unknown:
                raise HippoError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; valid keys: "
                                 f"{', '.join(ITEM_KEYS + META_KEYS)}")
            text, title, pid = item.get("text"), item.get("title") or "", item.get("id")
            if not isinstance(text, str):
                raise HippoError(f"{where}: \"text\" must be a string (got {type(text).__name__})")
            if not isinstance(title, str):
                raise HippoError(f"{where}: \"title\" must be a string")
            if pid is not None and (not isinstance(pid, (str, int)) or isinstance(pid, bool) or str(pid) == ""):
                raise HippoError(f"{where}: \"id\" must be a non-empty string")
            meta = dict(item.get("metadata") or {})
            if not isinstance(item.get("metadata") or {}, Mapping):
                raise HippoError(f"{where}: \"metadata\" must be an object")
            meta.update({k: item[k] for k in META_KEYS if k in item})
            if not text.strip():
                raise HippoError(f"{where}: empty text; give the passage some text")
            p = make_passage(text, title, str(pid) if pid is not None else None)
            p = Passage(p.id, p.content, p.title, meta)
        else:
            raise HippoError(f"{where}: expected a dict with \"text\" or a Passage, got {type(item).__name__}")
        if not p.content.strip():
            raise HippoError(f"{where}: empty passage; give it some text")
        if len(p.content) > MAX_CHARS:
            raise HippoError(
                f"{where} ({p.id}) has {len(p.content):,} characters, more than the {MAX_CHARS:,} a passage may have; "
                f"split it, or index the document as a file with `hippo index`, which chunks it"
            )
        try:
            json.dumps(dict(p.metadata), ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise HippoError(f"{where}: metadata is not JSON ({exc}); give strings, numbers, lists and objects") from None
        out.append(p)
    return out


def turn_items(items: Sequence[Mapping[str, Any] | Passage]) -> list[Mapping[str, Any] | Passage]:
    """In a conversation index, dict items are turns (``{id?, speaker, session?, time?, text}`` or
    OpenAI messages ``{role, content}``): they become the passages ``hippo index --format
    conversation`` makes of them (ids, titles, speaker/session/time metadata)."""
    from hippo.conversation import turn_passages, turns_from_records

    if isinstance(items, (str, bytes)) or isinstance(items, Mapping):
        return list(to_passages(items))  # the usual error
    records = [item for item in items if isinstance(item, Mapping)]
    if not records:
        return list(items)
    turns = iter(turn_passages(turns_from_records(records, where="add")))
    return [next(turns) if isinstance(item, Mapping) else item for item in items]


WRITE_SET = ("entity_vectors.npy", "entity_vectors.ivf")
"""What a long-lived writer reads once, in the background, after its first write to a base with
an entity IVF index: every write's synonymy search re-scores ~256 base entities per new entity
from these files (4.1 GB at 10^6 passages), one page fault at a time from a cold page cache
(commit p50 43-55 ms cold, 14 ms with them cached; ``benchmarks/living.py``). Read in order they
took 3.9 s from a cold cache here; ``posix_fadvise(WILLNEED)`` on them did not fill the cache."""


def _read_quietly(files: Any, names: Sequence[str]) -> None:
    """``files.prefetch(names)``; a segment a compaction removed meanwhile is no error."""
    try:
        files.prefetch(names)
    except OSError:
        pass


class MemoryWriter:
    """The writer of a writable engine (see the module docstring)."""

    def __init__(self, root: Path, lock: WriterLock, writer: Writer, make_embedder: Any) -> None:
        self.root = root
        self._lock = lock
        self.writer = writer
        self._make_embedder = make_embedder
        self.mutex = threading.RLock()
        self.background = True
        """Run the policy's merges in a background thread (a long-lived engine); False runs
        them before the write returns (``hippo add``)."""
        self._job: threading.Thread | None = None
        self.job_lock = threading.Lock()
        """Held by a merge or compaction for its whole run: they never overlap."""
        self.last_report: Any = None
        """The :class:`~hippo.live.writer.WriteReport` of the last add (timings of its stages)."""
        self.last_job: dict[str, Any] = {}
        """What the last merge or compaction did (or the error it met, under ``error``)."""
        self._warming: threading.Thread | None = None

    @classmethod
    def open(cls, root: Path, create: bool = False, config: Config | None = None, embedder: Embedder | None = None,
             wait: float = 0.0, extractor: Extractor | None = None,
             progress: Callable[[str, int, int], None] | None = None,
             overrides: Mapping[str, Any] | None = None, runner: Any = None) -> MemoryWriter:
        """Take the writer lock of ``root`` and open its writer (making an empty index first
        when ``create`` and there is none); ``overrides`` change query-time and runtime
        settings (e.g. the merge policy's ``runtime.*``); ``runner`` computes the extraction
        and embedding of large writes elsewhere (:class:`hippo.reuse.StageRunner`)."""
        from hippo.indexer import check_same_settings, model_factories

        check_writable(root)
        lock = WriterLock(root)
        lock.acquire(wait)
        try:
            manifest = read_manifest(root)
            if manifest is None:
                if not create:
                    raise IndexFormatError(
                        f"{root} is not a hippo index; build one with `hippo index CORPUS --out {root}`, or open it "
                        f"with create=True to start an empty one"
                    )
                write_base(root, empty_base(), config or load_config(), {}, "create", "create=True")
                manifest = read_manifest(root)
                assert manifest is not None
            saved = from_dict(manifest["config"], source=f"{root}/CURRENT")
            if config is not None:
                check_same_settings(saved, config, root)
                saved = config
            if overrides:
                saved = with_query_overrides(saved, overrides)
            make_x, make_e = model_factories(root, saved, manifest, extractor, embedder)
            writer = Writer(root, saved, make_x, make_e, progress, runner=runner)
        except BaseException:
            lock.release()
            raise
        return cls(root, lock, writer, make_e)

    @property
    def snapshot(self) -> Snapshot:
        """The last commit (this writer's own)."""
        return self.writer.snapshot

    def embedder_or(self, embedder: Embedder | None) -> Embedder:
        """The embedder the engine should use: the one given, else the writer's (one model)."""
        return embedder if embedder is not None else self._make_embedder()

    def attach(self, engine: Any) -> None:
        """The engine that answers from this writer's commits (it installs each new commit
        before its next call)."""

    def after_write(self) -> None:
        """Run (or start) what the merge policy asks for; a long-lived writer of a large base
        also starts reading :data:`WRITE_SET` into the page cache, once."""
        from hippo.live.compaction import due

        if self.background and self._warming is None:
            files = self._large_base()
            if files is not None:
                self._warming = threading.Thread(target=_read_quietly, args=(files, WRITE_SET), name="hippo-warm-writes", daemon=True)
                self._warming.start()
        if not self.writer.config.runtime.auto_compact or self.job_lock.locked():
            return
        what = due(self.writer.manifest, self.writer.config)
        if not what:
            return
        if not self.background:
            self._run(what)
            return
        self._job = threading.Thread(target=self._run, args=(what,), name=f"hippo-{what}", daemon=True)
        self._job.start()

    def _large_base(self) -> Any:
        """The base segment's files when its entities are searched through an IVF index (a
        large base), else None."""
        files = self.writer.snapshot.base.files
        return files if files.has("entity_vectors.ivf") else None

    def _run(self, what: str) -> None:
        from hippo.live.compaction import compact, merge

        if not self.job_lock.acquire(blocking=False):
            return  # another merge or compaction runs: the next write asks again
        try:
            self.last_job = compact(self) if what == "compact" else merge(self)
        except Exception as exc:  # a background job must not kill the process; the next write retries
            self.last_job = {"operation": what, "error": f"{type(exc).__name__}: {exc}"}
        finally:
            self.job_lock.release()

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait for a running background merge; returns what the last one did."""
        job = self._job
        if job is not None:
            job.join(timeout)
        return self.last_job

    def add(self, items: Sequence[Mapping[str, Any] | Passage], update: bool = False) -> list[str]:
        """See :meth:`hippo.engine.Engine.add`."""
        if self.writer.config.extract.extractor == "conversation":
            items = turn_items(items)
        passages = to_passages(items)
        with self.mutex:
            self.last_report = self.writer.add(passages, update=update, source=f"add: {len(passages)} items")
            state = self.writer.state
            out = []
            for p in passages:
                row = state.passage_row(p.id)
                if row is None:  # a duplicate of another id's text
                    row = state.content_row(p.content)
                out.append(state.passage(row)[0] if row is not None else p.id)
        self.after_write()
        return out

    def delete(self, ids: Sequence[str], missing_ok: bool = False) -> list[str]:
        """See :meth:`hippo.engine.Engine.delete`."""
        with self.mutex:
            report = self.writer.delete(list(ids), missing_ok=missing_ok)
        self.after_write()
        return report.ids

    def compact(self) -> dict[str, Any]:
        """Merge every segment into one base (see :mod:`hippo.live.compaction`)."""
        from hippo.live.compaction import compact

        with self.job_lock:
            report: dict[str, Any] = compact(self)
        self.last_job = report
        return report

    def close(self) -> None:
        """Release the writer lock and the segments the writer reads."""
        self.wait()
        with self.mutex:
            self.writer.close()
            self._lock.release()


class WritableMixin:
    """The writes of :class:`hippo.engine.Engine` opened with ``writable=True`` (it provides the
    attributes annotated)."""

    _writer: MemoryWriter | None
    path: Path
    _follow: Callable[[], None]

    def _writing(self) -> MemoryWriter:
        if self._writer is None:
            raise HippoError(f"this engine over {self.path} is read-only; open it with hippo.open_index(path, writable=True) to write")
        return self._writer

    def add(self, items: Sequence[Mapping[str, Any] | Passage], update: bool = False) -> list[str]:
        """Add passages (dicts ``{text, title?, id?, metadata?}`` or :class:`~hippo.types.Passage`;
        see :func:`to_passages`) and return, once durable, the id each has in the index: an id
        present with the same text is kept, with other text refused unless ``update``; a text
        present under another id returns that id. One new segment; the engine sees it at once."""
        ids = list(self._writing().add(items, update))
        self._follow()
        return ids

    def delete(self, ids: Sequence[str], missing_ok: bool = False) -> list[str]:
        """Tombstone passages by id and return the ids deleted (unknown ids: an error naming them,
        nothing deleted, unless ``missing_ok``)."""
        if isinstance(ids, str):
            raise TypeError("delete takes a list of ids")
        gone = list(self._writing().delete(ids, missing_ok))
        self._follow()
        return gone

    def compact(self) -> dict[str, Any]:
        """Merge every segment into the base a from-scratch build of the live passages writes."""
        report = dict(self._writing().compact())
        self._follow()
        return report

    def close(self) -> None:
        """Release the writer lock (a writable engine); a no-op for a reader."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
