"""The one writer of each namespace: a writable engine behind a bounded queue.

A namespace's writer opens ``hippo.open_index(path, writable=True, create=True)`` on its first
write (an empty index when the namespace is new) and holds the index's writer lock until it
closes. Each ``add``/``delete`` is one segment of the living index (O(new)), durable when the
engine returns. The engine's merge policy runs in a background thread of this process;
:meth:`NamespaceWriter.close` waits for it. A writer idle for ``idle_seconds`` closes its
engine (releasing the lock, so ``hippo add`` or ``hippo compact`` from another process can
write) and reopens it on the next write.

Writes of one namespace run one at a time in order; a full queue answers 503 at once (a burst
cannot pile up); a write runs to the end even if its client goes away. Write threads keep the
normal CPU priority: they share the GIL with the readers, and a lower priority (nice 10)
starved them (measured before the living index: a one-passage write took 15 s instead of
1-3 s under 4 busy readers).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hippo.config import Config, from_dict
from hippo.engine import Engine, open_index
from hippo.errors import HippoError, IdConflictError, UnknownIdsError
from hippo.extract import make_extractor
from hippo.live.memory import to_passages
from hippo.protocols import Embedder, Extractor
from hippo.serve.problems import Problem
from hippo.store import is_format1, read_manifest
from hippo.types import Passage

log = logging.getLogger("hippo.serve")
Job = Callable[[Engine], list[str]]


def check_format(path: Path) -> None:
    """503 for a namespace whose index predates the living index (format 1): its operator must
    upgrade it (``hippo upgrade``) before it can be served."""
    if is_format1(path):
        raise Problem(503, "Upgrade Needed", f"namespace {path.name!r} holds an index written by an older hippo (format "
                      f"1); the server's operator must run `hippo upgrade` on its folder; nothing was read or written")


def _shown(ids: Sequence[str]) -> str:
    return ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")


def _meta_problem(meta: Mapping[str, Any]) -> str | None:
    """What is wrong with the reserved keys of passage metadata (hits read them), or None."""
    for key in ("document_id", "source", "speaker", "session", "time"):
        if key in meta and not isinstance(meta[key], str):
            return f'"{key}" must be a string'
    if "chunk" in meta and (not isinstance(meta["chunk"], int) or isinstance(meta["chunk"], bool)):
        return '"chunk" must be an integer'
    headings = meta.get("headings", [])
    if not isinstance(headings, list) or not all(isinstance(h, str) for h in headings):
        return '"headings" must be a list of strings'
    span = meta.get("span", [0, 0])
    if not (isinstance(span, list) and len(span) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in span)
            and 0 <= span[0] <= span[1]):
        return '"span" must be [start, end], two character offsets with 0 <= start <= end'
    return None


def passages_of(items: Sequence[Mapping[str, Any]]) -> list[Passage]:
    """Validated passages from ``{"text", "title"?, "id"?, "metadata"?}`` items (422 when one is
    bad, before anything is queued); an id given twice with different text is refused."""
    try:
        passages = to_passages(items)
    except HippoError as exc:
        raise Problem(422, "Invalid Passages", f"{exc}; nothing was written") from None
    for n, p in enumerate(passages):
        problem = _meta_problem(p.metadata)
        if problem is not None:
            raise Problem(422, "Invalid Passages", f"passage {n}: metadata {problem}; nothing was written")
    seen: dict[str, str] = {}
    for p in passages:
        if seen.setdefault(p.id, p.content) != p.content:
            raise Problem(422, "Invalid Passages", f"id {p.id!r} is given twice with different text; nothing was written")
    return passages


def add_job(passages: Sequence[Passage], update: bool) -> Job:
    """A write that adds (``update``: adds or replaces) ``passages`` and returns their ids."""

    def run(engine: Engine) -> list[str]:
        try:
            return engine.add(passages, update=update)
        except IdConflictError as exc:
            raise Problem(409, "Conflict", f"{len(exc.ids)} passage id(s) already hold other text, title or metadata: "
                          f"{_shown(exc.ids)}; send them with PUT (update) to replace them, or give new ids; nothing "
                          f"was written", ids=exc.ids) from None

    return run


def delete_job(ids: Sequence[str]) -> Job:
    """A write that deletes ``ids`` (all known, or nothing is deleted) and returns them."""
    wanted = list(dict.fromkeys(ids))

    def run(engine: Engine) -> list[str]:
        try:
            return engine.delete(wanted)
        except UnknownIdsError as exc:
            raise Problem(404, "Unknown Ids", f"{len(exc.ids)} of {len(wanted)} id(s) are not in this namespace: "
                          f"{_shown(exc.ids)}; nothing was deleted", ids=exc.ids) from None

    return run


_LIBC: Any = None


def trim_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim(0)``; a no-op
    where there is none). A writer runs it when its queue is empty after a write: on glibc the
    freed memory of each write (spaCy docs, embedding buffers, the superseded commit's arrays)
    otherwise stays in the process, and one-passage writes grew a writable engine's resident
    memory by 1.0 MiB each, 0.2 MiB with this (the rest is the index's own growth until a merge),
    at 2.1 ms per call (measured 300 writes into a 200-passage index)."""
    global _LIBC
    if _LIBC is None:
        import ctypes
        import ctypes.util

        try:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _LIBC = getattr(lib, "malloc_trim", False)
        except OSError:
            _LIBC = False
    if _LIBC:
        _LIBC(0)


class ExtractorCache:
    """One extractor per distinct extractor config, made once and shared by every namespace
    (spaCy's pipeline, an OpenIE file, ...)."""

    def __init__(self) -> None:
        self._made: dict[str, Extractor] = {}
        self._lock = threading.Lock()

    def get(self, config: Config) -> Extractor:
        """The extractor ``config.extract`` names."""
        key = json.dumps(config.to_dict()["extract"], sort_keys=True)
        with self._lock:
            if key not in self._made:
                self._made[key] = make_extractor(config.extract, config.llm)
            return self._made[key]


class NamespaceWriter:
    """The one writer of a namespace (see the module docstring). Made and driven on the event
    loop; the engine is opened, written and closed in the write executor."""

    def __init__(self, name: str, path: Path, maxsize: int, executor: concurrent.futures.Executor,
                 opener: Callable[[Path], Engine], idle_seconds: float,
                 on_write: Callable[[str], None], on_exit: Callable[[NamespaceWriter], None]) -> None:
        self.name = name
        self.path = path
        self.queue: asyncio.Queue[tuple[Job, str, int, asyncio.Future[list[str]]]] = asyncio.Queue(maxsize)
        self.executor = executor
        self.opener = opener
        self.idle_seconds = idle_seconds
        self.on_write = on_write
        self.on_exit = on_exit
        self.engine: Engine | None = None
        self.running = 0
        self.task = asyncio.get_running_loop().create_task(self._loop(), name=f"writer-{name}")

    def _write(self, job: Job, op: str, items: int) -> list[str]:
        t0 = time.perf_counter()
        if self.engine is None:
            self.engine = self.opener(self.path)
        t1 = time.perf_counter()
        ids = job(self.engine)
        self.on_write(self.name)
        log.info("write", extra={"event": "write", "namespace": self.name, "op": op, "items": items,
                                 "open_ms": round(1000 * (t1 - t0), 1), "write_ms": round(1000 * (time.perf_counter() - t1), 1)})
        return ids

    def close_engine(self) -> None:
        """Close the engine, if open: waits for its background merge, releases the writer lock
        (blocking: call it from a worker thread)."""
        engine, self.engine = self.engine, None
        if engine is not None:
            engine.close()
            log.info("writer closed", extra={"event": "writer-close", "namespace": self.name})

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                job, op, items, fut = await asyncio.wait_for(self.queue.get(), self.idle_seconds)
            except asyncio.TimeoutError:
                await asyncio.shield(loop.run_in_executor(self.executor, self.close_engine))
                if self.queue.empty():
                    self.on_exit(self)  # nothing arrived meanwhile: this writer is done
                    return
                continue
            if fut.done():  # rejected by drain()
                continue
            self.running = 1
            try:
                result = await asyncio.shield(loop.run_in_executor(self.executor, self._write, job, op, items))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting request
                if not fut.done():
                    fut.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
            else:
                if not fut.done():
                    fut.set_result(result)
            finally:
                self.running = 0
            if self.queue.empty():  # the request has its answer; nothing waits behind this
                await asyncio.shield(loop.run_in_executor(self.executor, trim_heap))

    def depth(self) -> int:
        """Writes queued or running."""
        return self.queue.qsize() + self.running


def write_opener(config: Config, embedder: Embedder, extractors: ExtractorCache) -> Callable[[Path], Engine]:
    """Opens a namespace's writable engine: a new one with the server's config, an existing one
    with its own (passages missing from a recorded OpenIE file are extracted with spaCy); the
    server's embedder and a shared extractor."""

    def open_writer(path: Path) -> Engine:
        check_format(path)
        manifest = read_manifest(path)
        if manifest is None:
            return open_index(path, writable=True, create=True, config=config, embedder=embedder,
                              extractor=extractors.get(config))
        saved = from_dict(manifest["config"], source=f"{path.name}/CURRENT")
        if saved.extract.extractor == "precomputed" and saved.extract.missing != "spacy":
            saved = saved.replace({"extract.missing": "spacy"})
        return open_index(path, writable=True, embedder=embedder, extractor=extractors.get(saved))

    return open_writer
