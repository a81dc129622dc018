"""Micro-batching of concurrent single-query reads.

Concurrent ``retrieve`` calls for the same namespace, ``k`` and retriever are answered by one
:meth:`hippo.Engine.retrieve_many` (one embedding batch, one batched PageRank), which costs
less per query than one call each. Nothing waits on purpose: up to ``drivers`` batches of a key
run at once, each taking every query queued when it starts, so a lone request runs at once and
requests that arrive while others are being answered share the next batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from hippo.types import QueryResult

Key = tuple[str, int, str]
Run = Callable[[str, list[str], int, str], Awaitable[list[QueryResult]]]


class ReadBatcher:
    """Coalesce concurrent single retrieves into ``retrieve_many`` calls of at most ``max_batch``."""

    def __init__(self, run: Run, max_batch: int, drivers: int) -> None:
        self._run = run
        self.max_batch = max(1, max_batch)
        self.drivers = max(1, drivers)
        self._pending: dict[Key, list[tuple[str, asyncio.Future[QueryResult]]]] = {}
        self._active: dict[Key, int] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.batches = 0
        self.queries = 0

    async def retrieve(self, namespace: str, query: str, k: int, retriever: str) -> QueryResult:
        """The result of ``query``, computed alone or with concurrent queries of the same key."""
        key = (namespace, k, retriever)
        fut: asyncio.Future[QueryResult] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(key, []).append((query, fut))
        if self._active.get(key, 0) < self.drivers:
            self._active[key] = self._active.get(key, 0) + 1
            task = asyncio.get_running_loop().create_task(self._drive(key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await fut

    async def _drive(self, key: Key) -> None:
        try:
            while self._pending.get(key):
                queue = self._pending[key]
                batch = [(q, f) for q, f in queue[: self.max_batch] if not f.done()]
                del queue[: self.max_batch]
                if not batch:
                    continue
                self.batches += 1
                self.queries += len(batch)
                try:
                    results = await self._run(key[0], [q for q, _ in batch], key[1], key[2])
                except Exception as exc:  # noqa: BLE001 - every waiting request gets it
                    for _, f in batch:
                        if not f.done():
                            f.set_exception(exc)
                else:
                    for (_, f), r in zip(batch, results):
                        if not f.done():
                            f.set_result(r)
        finally:
            self._active[key] -= 1
            if not self._active[key]:
                del self._active[key]
                if not self._pending.get(key):
                    self._pending.pop(key, None)
