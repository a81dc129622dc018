"""What the REST routes and the MCP tools both call: checked, timed, off the event loop.

Every operation first checks the key's grant for the namespace (403 whether or not the
namespace exists, so a key learns nothing about namespaces it does not reach), then runs the
blocking engine call in a worker thread under a deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from hippo.engine import RETRIEVERS, Engine
from hippo.serve.batching import ReadBatcher
from hippo.serve.keys import Grant, check_namespace
from hippo.serve.namespaces import Namespaces, passages
from hippo.serve.problems import Problem, forbidden
from hippo.serve.settings import Limits
from hippo.types import Answer, QueryResult

T = TypeVar("T")


class Service:
    """Namespaced memory operations for one key's grant at a time."""

    def __init__(self, namespaces: Namespaces, limits: Limits, llm_configured: bool) -> None:
        self.ns = namespaces
        self.limits = limits
        self.llm_configured = llm_configured
        self.read_limiter = anyio.CapacityLimiter(limits.read_threads)
        self.batcher = ReadBatcher(self._retrieve_batch, limits.max_queries, limits.read_threads) \
            if limits.batch_reads else None
        self.started = time.time()
        self.ready = False

    def authorize(self, grant: Grant, namespace: str, write: bool = False) -> str:
        """``namespace`` if ``grant`` reaches it (and may write, for a write); else 404 for an
        invalid name, 403 otherwise."""
        check_namespace(namespace)
        if not grant.allows(namespace):
            raise forbidden(namespace)
        if write and not grant.write:
            raise Problem(403, "Forbidden", f"this key may read but not write the namespace {namespace!r}")
        return namespace

    async def _read(self, fn: Callable[[], T]) -> T:
        try:
            with anyio.fail_after(self.limits.read_timeout):
                return await anyio.to_thread.run_sync(fn, limiter=self.read_limiter, abandon_on_cancel=True)
        except TimeoutError:
            raise Problem(504, "Timeout", f"the request took longer than {self.limits.read_timeout:g} s; "
                          f"ask for fewer queries or a smaller k") from None

    def _check_k(self, k: int) -> None:
        if not 1 <= k <= self.limits.max_k:
            raise Problem(422, "Invalid K", f"k must be between 1 and {self.limits.max_k}, got {k}")

    async def retrieve_many(self, grant: Grant, namespace: str, queries: Sequence[str], k: int = 5,
                            retriever: str = "hippo") -> list[QueryResult]:
        """Retrieve for each query in one batch; an empty namespace gives no hits."""
        self.authorize(grant, namespace)
        self._check_k(k)
        if len(queries) > self.limits.max_queries:
            raise Problem(413, "Too Many Queries", f"{len(queries)} queries in one request; at most "
                          f"{self.limits.max_queries} (split the batch)")
        if retriever not in RETRIEVERS:
            raise Problem(422, "Invalid Retriever", f"unknown retriever {retriever!r}; valid: {', '.join(RETRIEVERS)}")

        return await self._retrieve_batch(namespace, list(queries), k, retriever)

    async def _retrieve_batch(self, namespace: str, queries: list[str], k: int, retriever: str) -> list[QueryResult]:
        def run() -> list[QueryResult]:
            engine = self.ns.reader(namespace)
            if engine is None or not passages(engine):
                return [QueryResult(q, retriever, "empty", ()) for q in queries]
            return engine.retrieve_many(queries, k, retriever)

        return await self._read(run)

    async def retrieve(self, grant: Grant, namespace: str, query: str, k: int = 5, retriever: str = "hippo") -> QueryResult:
        """Retrieve for one query (batched with concurrent queries of the namespace, see
        :mod:`hippo.serve.batching`)."""
        if self.batcher is None:
            return (await self.retrieve_many(grant, namespace, [query], k, retriever))[0]
        self.authorize(grant, namespace)
        self._check_k(k)
        if retriever not in RETRIEVERS:
            raise Problem(422, "Invalid Retriever", f"unknown retriever {retriever!r}; valid: {', '.join(RETRIEVERS)}")
        try:
            with anyio.fail_after(self.limits.read_timeout):
                return await self.batcher.retrieve(namespace, query, k, retriever)
        except TimeoutError:
            raise Problem(504, "Timeout", f"the request took longer than {self.limits.read_timeout:g} s") from None

    async def ask(self, grant: Grant, namespace: str, question: str, k: int | None = None,
                  retriever: str = "hippo") -> Answer:
        """Retrieve, then let the configured LLM answer from the top passages."""
        self.authorize(grant, namespace)
        if not self.llm_configured:
            raise Problem(501, "No LLM", "no LLM is configured on this server; start it with --llm-base-url URL "
                          "(any OpenAI-compatible server) to enable ask")
        if k is not None:
            self._check_k(k)
        if retriever not in RETRIEVERS:
            raise Problem(422, "Invalid Retriever", f"unknown retriever {retriever!r}; valid: {', '.join(RETRIEVERS)}")

        def run() -> Answer:
            engine = self.ns.reader(namespace)
            if engine is None or not passages(engine):
                raise Problem(404, "Empty Namespace", f"namespace {namespace!r} holds no passages")
            return engine.answer(question, k, retriever)

        return await self._read(run)

    async def info(self, grant: Grant, namespace: str) -> dict[str, Any]:
        """Counts, embedder, extractor, config and versions of the namespace's index."""
        self.authorize(grant, namespace)

        def run() -> dict[str, Any]:
            engine = self.ns.reader(namespace)
            if engine is None:
                raise Problem(404, "No Such Namespace", f"namespace {namespace!r} does not exist yet; "
                              f"its first write creates it")
            data = engine.info()
            data.pop("path", None)  # the server's file system is not the client's business
            return {"namespace": namespace, **data}

        return await self._read(run)

    def namespaces(self, grant: Grant) -> list[str]:
        """The namespaces (made by their first write) that ``grant`` reaches."""
        return grant.visible(self.ns.names())

    async def add(self, grant: Grant, namespace: str, passages: Sequence[Mapping[str, Any]],
                  update: bool = False) -> list[str]:
        """Add (or, with ``update``, replace) passages; the ids once durable."""
        self.authorize(grant, namespace, write=True)
        if not passages:
            raise Problem(422, "No Passages", "give at least one passage")
        if len(passages) > self.limits.max_passages:
            raise Problem(413, "Too Many Passages", f"{len(passages)} passages in one request; at most "
                          f"{self.limits.max_passages} (split the batch)")
        return await self._write(self.ns.add(namespace, passages, update))

    async def delete(self, grant: Grant, namespace: str, ids: Sequence[str]) -> list[str]:
        """Delete passages by id (all known, or nothing is deleted)."""
        self.authorize(grant, namespace, write=True)
        if not ids:
            raise Problem(422, "No Ids", "give at least one passage id")
        if len(ids) > self.limits.max_passages:
            raise Problem(413, "Too Many Ids", f"{len(ids)} ids in one request; at most {self.limits.max_passages}")
        return await self._write(self.ns.delete(namespace, ids))

    async def _write(self, write: Awaitable[list[str]]) -> list[str]:
        try:
            return await asyncio.wait_for(write, self.limits.write_timeout)
        except asyncio.TimeoutError:
            raise Problem(504, "Timeout", f"the write did not finish within {self.limits.write_timeout:g} s; it may "
                          f"still complete: read back, or send it again (adding the same ids twice is harmless)") from None
