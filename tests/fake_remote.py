"""Stand-ins for the ``hippo serve`` client in the integration tests, until ``hippo.client`` is
merged: they implement :class:`hippo.integrations.common.RetrievalSource` over a local engine,
sending every result through JSON as a wire would."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Sequence
from typing import Any

from hippo.types import Fact, Hit, LinkedFact, QueryResult, Seed


def through_json(result: QueryResult) -> QueryResult:
    """The result after a JSON round trip (tuples become lists on the wire and back)."""
    d = json.loads(json.dumps(dataclasses.asdict(result)))
    return QueryResult(
        query=d["query"], retriever=d["retriever"], mode=d["mode"],
        hits=tuple(Hit(**{**h, "headings": tuple(h["headings"]), "span": tuple(h["span"])}) for h in d["hits"]),
        facts=tuple(LinkedFact(Fact(**f["fact"]), f["score"]) for f in d["facts"]),
        seeds=tuple(Seed(**s) for s in d["seeds"]),
        timings_ms=d["timings_ms"],
    )


class FakeClient:
    """``Client(url, key, namespace=...)`` answering from ``engine``; records every call."""

    def __init__(self, url: str, key: str | None, namespace: str = "default", engine: Any = None, delay: float = 0.0) -> None:
        self.url, self.key, self.namespace, self.engine, self.delay = url, key, namespace, engine, delay
        self.calls: list[tuple[str, Any, int | None]] = []

    def retrieve(self, query: str, k: int | None = None) -> QueryResult:
        self.calls.append(("retrieve", query, k))
        time.sleep(self.delay)
        return through_json(self.engine.retrieve(query, k=k))

    def retrieve_many(self, queries: Sequence[str], k: int | None = None) -> list[QueryResult]:
        self.calls.append(("retrieve_many", list(queries), k))
        time.sleep(self.delay)
        return [through_json(r) for r in self.engine.retrieve_many(list(queries), k=k)]


class AsyncFakeClient(FakeClient):
    """A client with its own async calls, as an httpx-based client would have."""

    async def aretrieve(self, query: str, k: int | None = None) -> QueryResult:
        self.calls.append(("aretrieve", query, k))
        await asyncio.sleep(self.delay)
        return through_json(self.engine.retrieve(query, k=k))

    async def aretrieve_many(self, queries: Sequence[str], k: int | None = None) -> list[QueryResult]:
        self.calls.append(("aretrieve_many", list(queries), k))
        await asyncio.sleep(self.delay)
        return [through_json(r) for r in self.engine.retrieve_many(list(queries), k=k)]


async def ticks_during(awaitable: Any) -> tuple[Any, int]:
    """Await ``awaitable`` while a ticker sleeps 10 ms at a time: (its result, how many ticks ran).
    A call that blocks the event loop lets the ticker run about zero times."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        return await awaitable, ticks
    finally:
        task.cancel()
