"""Namespaces: one index directory each under the root, read by many, written by one.

* **Readers.** Engines are opened once per namespace and kept in an LRU cache bounded by a
  count and by the bytes of the generations they map. Every engine shares the server's one
  embedder (and spaCy's pipeline, which hippo loads once per process). A reader notices a
  commit made by another process within :data:`RECHECK_S`; this server's own writes swap the
  cached engine before they are acknowledged, so a client reads its own writes.
* **Writers.** Each namespace has one writer task behind a bounded queue: writes of one
  namespace run one at a time in order, a full queue answers 503 at once (a burst cannot pile
  up), and at most ``write_threads`` namespaces are written at once. Write threads keep the
  normal CPU priority: they share the GIL with the readers, and a lower priority (nice 10)
  starved them (measured: a one-passage write took 15 s instead of 1-3 s under 4 busy
  readers). A write runs to the end even if its client goes away; it is durable before it is
  acknowledged.
* **Shutdown.** :meth:`Namespaces.drain` refuses new writes, rejects the queued ones that have
  not started (503, nothing written) and waits for the running ones to finish.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hippo.config import Config
from hippo.engine import Engine, open_index
from hippo.protocols import Embedder, LLMClient
from hippo.serve.keys import check_namespace
from hippo.serve.problems import Problem
from hippo.serve.provisional import TRASH, ExtractorCache, ProvisionalMemory, empty_trash
from hippo.store import current_generation

log = logging.getLogger("hippo.serve")
T = TypeVar("T")
RECHECK_S = 1.0
"""Seconds between two checks of a namespace's ``CURRENT`` for commits of other processes."""


@dataclass
class _Cached:
    engine: Engine
    generation: str
    nbytes: int
    checked: float


def _generation_bytes(folder: Path) -> int:
    total = 0
    with os.scandir(folder) as it:
        for entry in it:
            if entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
    return total


class EngineCache:
    """Open engines by namespace, least recently used first out."""

    def __init__(self, opener: Callable[[Path], Engine], max_engines: int, max_bytes: int) -> None:
        self.opener = opener
        self.max_engines = max(1, max_engines)
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, _Cached] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        """Bytes of the generations the cached engines map."""
        return sum(c.nbytes for c in self._items.values())

    def passage_counts(self) -> dict[str, int]:
        """Passages of each open namespace."""
        with self._lock:
            return {n: len(c.engine.passage_ids) for n, c in self._items.items()}

    def get(self, name: str, path: Path) -> Engine | None:
        """The engine of namespace ``name``, reopened if its live generation changed; None when
        the namespace has no index."""
        now = time.monotonic()
        with self._lock:
            cached = self._items.get(name)
            if cached is not None:
                self._items.move_to_end(name)
                if now - cached.checked < RECHECK_S:
                    return cached.engine
        live = current_generation(path) if path.is_dir() else None
        if live is None:
            self.drop(name)
            return None
        if cached is not None and cached.generation == live:
            cached.checked = now
            return cached.engine
        return self.load(name, path, cached.engine if cached is not None else None)

    def load(self, name: str, path: Path, old: Engine | None = None) -> Engine:
        """Open the live generation of ``name`` and cache it. A previous engine of the namespace
        is reloaded on a copy (readers still holding it keep a consistent generation)."""
        if old is not None:
            engine = copy.copy(old)
            engine.reload()
        else:
            engine = self.opener(path)
        entry = _Cached(engine, engine.files.generation.name, _generation_bytes(engine.files.generation), time.monotonic())
        with self._lock:
            self._items[name] = entry
            self._items.move_to_end(name)
            while len(self._items) > 1 and (
                len(self._items) > self.max_engines or sum(c.nbytes for c in self._items.values()) > self.max_bytes
            ):
                gone, _ = self._items.popitem(last=False)
                log.info("engine evicted", extra={"event": "evict", "namespace": gone})
        return engine

    def peek(self, name: str) -> Engine | None:
        """The cached engine of ``name`` as it is (no check for newer commits)."""
        with self._lock:
            cached = self._items.get(name)
        return cached.engine if cached is not None else None

    def drop(self, name: str) -> None:
        """Forget the engine of ``name`` (its index is gone)."""
        with self._lock:
            self._items.pop(name, None)


class _Writer:
    """The one writer of a namespace: a bounded queue drained by one task."""

    def __init__(self, name: str, maxsize: int, executor: concurrent.futures.Executor) -> None:
        self.name = name
        self.queue: asyncio.Queue[tuple[Callable[[], Any], asyncio.Future[Any]]] = asyncio.Queue(maxsize)
        self.executor = executor
        self.running = 0
        self.task = asyncio.get_running_loop().create_task(self._loop(), name=f"writer-{name}")

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            job, fut = await self.queue.get()
            if fut.done():  # rejected by drain()
                continue
            self.running = 1
            try:
                result = await asyncio.shield(loop.run_in_executor(self.executor, job))
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

    def depth(self) -> int:
        """Writes queued or running."""
        return self.queue.qsize() + self.running


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
    ) -> None:
        self.root = root
        self.config = config
        self.embedder = embedder
        self.llm = llm
        self.overrides = dict(query_overrides or {})
        self.write_queue = write_queue
        self.extractors = ExtractorCache()
        self.trash = root / TRASH
        self.engines = EngineCache(self._open, max_engines, max_bytes)
        self._writers: dict[str, _Writer] = {}
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max(1, write_threads), thread_name_prefix="hippo-write"
        )
        self.draining = False
        empty_trash(self.trash)

    def _open(self, path: Path) -> Engine:
        return open_index(path, self.overrides or None, embedder=self.embedder, llm=self.llm)

    def path(self, name: str) -> Path:
        """The index folder of namespace ``name`` (validated: always a direct child of the root)."""
        path = self.root / check_namespace(name)
        if path.parent != self.root:  # pragma: no cover - the name rule already excludes it
            raise Problem(404, "Not Found", f"{name!r} is not a namespace")
        return path

    def names(self) -> list[str]:
        """Namespaces that hold an index, sorted."""
        out = []
        for p in self.root.iterdir():
            if p.is_dir() and not p.name.startswith(".") and (p / "CURRENT").exists():
                try:
                    out.append(check_namespace(p.name))
                except Exception:  # a folder that is not a namespace (e.g. upper case): not served
                    continue
        return sorted(out)

    def reader(self, name: str) -> Engine | None:
        """The engine of ``name`` for reading; None when it holds no passages yet (blocking: call
        it from a worker thread)."""
        return self.engines.get(name, self.path(name))

    def queue_depth(self) -> dict[str, int]:
        """Writes queued or running, per namespace."""
        return {n: w.depth() for n, w in self._writers.items()}

    async def write(self, name: str, op: str, payload: Sequence[Any], update: bool = False) -> list[str]:
        """Run ``op`` (``add`` or ``delete``) through the namespace's writer and return the ids;
        durable and visible to this server's readers when it returns."""
        path = self.path(name)
        if self.draining:
            raise Problem(503, "Shutting Down", "the server is shutting down; nothing was written, retry on its successor",
                          {"Retry-After": "5"})
        writer = self._writers.get(name)
        if writer is None:
            writer = self._writers[name] = _Writer(name, self.write_queue, self._executor)

        def job() -> list[str]:
            t0 = time.perf_counter()
            memory = ProvisionalMemory(path, self.config, self.embedder, self.extractors, self.trash)
            if op == "add":
                ids = memory.add(payload, update=update)
            else:
                ids = memory.delete(payload)
            t1 = time.perf_counter()
            if path.is_dir() and current_generation(path) is not None:
                self.engines.load(name, path, self.engines.peek(name))
            else:
                self.engines.drop(name)
            log.info("write", extra={"event": "write", "namespace": name, "op": "update" if update else op,
                                     "items": len(payload), "write_ms": round(1000 * (t1 - t0), 1),
                                     "reopen_ms": round(1000 * (time.perf_counter() - t1), 1)})
            return ids

        fut: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        try:
            writer.queue.put_nowait((job, fut))
        except asyncio.QueueFull:
            raise Problem(503, "Busy", f"{self.write_queue} writes are already queued for namespace {name!r}; "
                          f"nothing was written, retry shortly", {"Retry-After": "2"}) from None
        return await asyncio.shield(fut)  # a client that goes away does not cancel its write

    async def drain(self, timeout: float = 60.0) -> dict[str, int]:
        """Refuse new writes, reject queued ones that have not started, finish running ones."""
        self.draining = True
        rejected = 0
        for w in self._writers.values():
            while not w.queue.empty():
                _, fut = w.queue.get_nowait()
                if not fut.done():
                    fut.set_exception(Problem(503, "Shutting Down",
                                              "the server is shutting down; this write was not started and nothing was "
                                              "written, retry on its successor", {"Retry-After": "5"}))
                    rejected += 1
        deadline = time.monotonic() + timeout
        while any(w.running for w in self._writers.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        unfinished = sum(w.running for w in self._writers.values())
        for w in self._writers.values():
            w.task.cancel()
        self._executor.shutdown(wait=unfinished == 0)
        return {"rejected": rejected, "unfinished": unfinished}
