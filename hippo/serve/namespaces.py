"""Namespaces: one living index each under the root, read by many, written by one.

* **Readers.** Engines are opened once per namespace (``hippo.open_index(path)``) and kept in an
  LRU cache bounded by a count and by the bytes of the segments they map. Every engine shares
  the server's one embedder (and spaCy's pipeline, which hippo loads once per process). Before
  each read the cache compares the namespace's ``CURRENT`` with the commit its engine answers
  from (at most every ``runtime.refresh_seconds``, default 0: before every read) and moves to a
  newer commit on a copy of the engine: only the new segments are opened, and requests still
  running on the old commit finish on it (an engine is shared by concurrent reads, so it never
  changes under one). Commits of this server's writer and of other processes (``hippo add``)
  are seen alike; a write is acknowledged once committed, so a client reads its own writes.
* **Writers.** Each namespace has one writer (:mod:`hippo.serve.writers`): a writable engine
  behind a bounded queue. At most ``write_threads`` namespaces are written at once.
* **Shutdown.** :meth:`Namespaces.drain` refuses new writes, rejects the queued ones that have
  not started (503, nothing written), waits for the running ones, then closes every writer
  (each waits for its background merge).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hippo.config import Config
from hippo.engine import Engine, open_index
from hippo.protocols import Embedder, LLMClient
from hippo.serve.keys import check_namespace
from hippo.serve.problems import Problem
from hippo.store import is_format1
from hippo.serve.writers import (
    ExtractorCache,
    NamespaceWriter,
    add_job,
    check_format,
    delete_job,
    passages_of,
    write_opener,
)

log = logging.getLogger("hippo.serve")
FOLLOW_OVERRIDE = {"runtime.refresh_seconds": float("inf")}
"""Cached readers do not look for commits themselves: the cache does, on a copy (see above)."""


@dataclass
class _Cached:
    engine: Engine
    checked: float


def _nbytes(engine: Engine) -> int:
    return int(sum(int(e["bytes"]) for e in engine.snapshot.manifest["segments"]))


class EngineCache:
    """Open reader engines by namespace, least recently used first out."""

    def __init__(self, opener: Callable[[Path], Engine], max_engines: int, max_bytes: int,
                 refresh_seconds: float = 0.0) -> None:
        self.opener = opener
        self.max_engines = max(1, max_engines)
        self.max_bytes = max_bytes
        self.refresh_seconds = refresh_seconds
        self._items: OrderedDict[str, _Cached] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        """Bytes of the segments the cached engines map."""
        with self._lock:
            return sum(_nbytes(c.engine) for c in self._items.values())

    def passage_counts(self) -> dict[str, int]:
        """Live passages of each open namespace."""
        with self._lock:
            return {n: passages(c.engine) for n, c in self._items.items()}

    def get(self, name: str, path: Path) -> Engine | None:
        """The engine of namespace ``name`` at its newest commit; None when the namespace has
        no index (blocking: call it from a worker thread)."""
        now = time.monotonic()
        with self._lock:
            cached = self._items.get(name)
            if cached is not None:
                self._items.move_to_end(name)
                if now - cached.checked < self.refresh_seconds:
                    return cached.engine
        if cached is None:
            if not (path / "CURRENT").exists():
                return None
            check_format(path)
            return self._put(name, _Cached(self.opener(path), now))
        if not cached.engine.snapshot.changed():
            cached.checked = now
            return cached.engine
        twin = copy.copy(cached.engine)  # reads running on the old commit keep it
        twin.refresh()
        return self._put(name, _Cached(twin, now))

    def _put(self, name: str, entry: _Cached) -> Engine:
        with self._lock:
            self._items[name] = entry
            self._items.move_to_end(name)
            while len(self._items) > 1 and (
                len(self._items) > self.max_engines or sum(_nbytes(c.engine) for c in self._items.values()) > self.max_bytes
            ):
                gone, _ = self._items.popitem(last=False)
                log.info("engine evicted", extra={"event": "evict", "namespace": gone})
        return entry.engine

    def stale(self, name: str) -> None:
        """Make the next read of ``name`` look for a new commit (this server just made one)."""
        with self._lock:
            cached = self._items.get(name)
            if cached is not None:
                cached.checked = float("-inf")


def passages(engine: Engine) -> int:
    """Live passages of the commit ``engine`` answers from."""
    return int(engine.snapshot.manifest["counts"]["passages"])


class Namespaces:
    """The namespaces under ``root``: cached readers, one queued writer each."""

    def __init__(
        self,
        root: Path,
        config: Config,
        embedder: Embedder,
        *,
        llm: LLMClient | None = None,
        query_overrides: Mapping[str, Any] | None = None,
        max_engines: int = 32,
        max_bytes: int = 8 << 30,
        write_queue: int = 64,
        write_threads: int = 2,
        writer_idle: float = 60.0,
    ) -> None:
        self.root = root
        self.config = config
        self.embedder = embedder
        self.llm = llm
        self.overrides = {**dict(query_overrides or {}), **FOLLOW_OVERRIDE}
        self.write_queue = write_queue
        self.writer_idle = writer_idle
        self.extractors = ExtractorCache()
        self.engines = EngineCache(self._open, max_engines, max_bytes, config.runtime.refresh_seconds)
        self._open_writer = write_opener(config, embedder, self.extractors)
        self._writers: dict[str, NamespaceWriter] = {}
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max(1, write_threads), thread_name_prefix="hippo-write"
        )
        self.draining = False

    def _open(self, path: Path) -> Engine:
        return open_index(path, self.overrides, embedder=self.embedder, llm=self.llm)

    def path(self, name: str) -> Path:
        """The index folder of namespace ``name`` (validated: always a direct child of the root)."""
        path = self.root / check_namespace(name)
        if path.parent != self.root:  # pragma: no cover - the name rule already excludes it
            raise Problem(404, "Not Found", f"{name!r} is not a namespace")
        return path

    def names(self) -> list[str]:
        """Namespaces that hold an index (made by their first write), sorted."""
        out = []
        for p in self.root.iterdir():
            if p.is_dir() and not p.name.startswith(".") and (p / "CURRENT").exists():
                try:
                    out.append(check_namespace(p.name))
                except Exception:  # a folder that is not a namespace (e.g. upper case): not served
                    continue
        return sorted(out)

    def outdated(self) -> list[str]:
        """Namespaces whose index predates the living index (they need ``hippo upgrade``)."""
        return [n for n in self.names() if is_format1(self.root / n)]

    def reader(self, name: str) -> Engine | None:
        """The engine of ``name`` for reading; None when it has no index yet (blocking: call it
        from a worker thread)."""
        return self.engines.get(name, self.path(name))

    def queue_depth(self) -> dict[str, int]:
        """Writes queued or running, per namespace."""
        return {n: w.depth() for n, w in self._writers.items()}

    def open_writers(self) -> int:
        """Namespaces whose writer holds its index open."""
        return sum(w.engine is not None for w in self._writers.values())

    async def add(self, name: str, items: Sequence[Mapping[str, Any]], update: bool = False) -> list[str]:
        """Add (``update``: add or replace) passages through the namespace's writer; their ids,
        durable and visible to readers when it returns."""
        passages = passages_of(items)
        return await self._submit(name, add_job(passages, update), "update" if update else "add", len(passages))

    async def delete(self, name: str, ids: Sequence[str]) -> list[str]:
        """Delete passages by id through the namespace's writer (all known, or nothing)."""
        return await self._submit(name, delete_job(ids), "delete", len(ids))

    async def _submit(self, name: str, job: Callable[[Engine], list[str]], op: str, items: int) -> list[str]:
        path = self.path(name)
        if self.draining:
            raise Problem(503, "Shutting Down", "the server is shutting down; nothing was written, retry on its successor",
                          {"Retry-After": "5"})
        writer = self._writers.get(name)
        if writer is None:
            writer = self._writers[name] = NamespaceWriter(
                name, path, self.write_queue, self._executor, self._open_writer, self.writer_idle,
                self.engines.stale, self._writer_done,
            )
        fut: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        try:
            writer.queue.put_nowait((job, op, items, fut))
        except asyncio.QueueFull:
            raise Problem(503, "Busy", f"{self.write_queue} writes are already queued for namespace {name!r}; "
                          f"nothing was written, retry shortly", {"Retry-After": "2"}) from None
        return await asyncio.shield(fut)  # a client that goes away does not cancel its write

    def _writer_done(self, writer: NamespaceWriter) -> None:
        if self._writers.get(writer.name) is writer:
            del self._writers[writer.name]

    async def drain(self, timeout: float = 60.0) -> dict[str, int]:
        """Refuse new writes, reject queued ones that have not started, finish running ones,
        then close every writer (each waits for its background merge)."""
        self.draining = True
        rejected = 0
        for w in self._writers.values():
            while not w.queue.empty():
                _, _, _, fut = w.queue.get_nowait()
                if not fut.done():
                    fut.set_exception(Problem(503, "Shutting Down",
                                              "the server is shutting down; this write was not started and nothing was "
                                              "written, retry on its successor", {"Retry-After": "5"}))
                    rejected += 1
        deadline = time.monotonic() + timeout
        while any(w.running for w in self._writers.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        unfinished = sum(w.running for w in self._writers.values())
        writers = list(self._writers.values())
        for w in writers:
            w.task.cancel()
        closed = 0
        if not unfinished:
            loop = asyncio.get_running_loop()
            for w in writers:
                if w.engine is not None:
                    await loop.run_in_executor(self._executor, w.close_engine)
                    closed += 1
        self._executor.shutdown(wait=unfinished == 0)
        return {"rejected": rejected, "unfinished": unfinished, "closed": closed}
