"""What the LangChain and LlamaIndex retrievers share: the source they query and the metadata
of a hit. Imports no framework."""

from __future__ import annotations

import asyncio
import inspect
import threading
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from hippo.errors import HippoError
from hippo.types import Hit, QueryResult


@runtime_checkable
class RetrievalSource(Protocol):
    """Anything that answers queries like :class:`hippo.Engine`: a local engine, or the
    ``hippo serve`` client (``hippo.Client``), whose methods have the same names."""

    def retrieve(self, query: str, k: int | None = None) -> QueryResult:
        """Top-``k`` passages for one query."""
        ...

    def retrieve_many(self, queries: Sequence[str], k: int | None = None) -> list[QueryResult]:
        """Top-``k`` passages for each query, in one call."""
        ...


HIPPO_KEYS = (
    "passage_id", "id", "title", "score", "rank", "document_id", "source", "headings", "span",
    "seeds", "facts", "retriever", "mode",
)
"""The metadata keys hippo sets on every framework document (see :func:`hit_metadata`)."""


def hit_metadata(hit: Hit, result: QueryResult) -> dict[str, Any]:
    """JSON-able metadata of one hit: the passage's own metadata, then hippo's keys over it.

    ``passage_id`` and ``id`` (the same), ``title``, ``score``, ``rank`` (0-based), the citation
    (``document_id``, ``source``, ``headings``, ``span``), and the query's evidence: ``seeds``
    (names of the PageRank's seed entities, by weight) and ``facts`` (the linked
    ``[subject, relation, object]`` triples), with the ``retriever`` and ``mode`` that ranked it.
    """
    return {
        **dict(hit.metadata),
        "passage_id": hit.passage_id,
        "id": hit.passage_id,
        "title": hit.title,
        "score": float(hit.score),
        "rank": int(hit.rank),
        "document_id": hit.document_id or hit.passage_id,
        "source": hit.source,
        "headings": list(hit.headings),
        "span": list(hit.span),
        "seeds": [s.name for s in result.seeds],
        "facts": [list(lf.fact.triple) for lf in result.facts],
        "retriever": result.retriever,
        "mode": result.mode,
    }


def config_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``{"retrieval__damping": 0.6}`` (keyword-friendly, as in ``HIPPO_RETRIEVAL__DAMPING``) or
    ``{"retrieval.damping": 0.6}`` to the dotted keys :func:`hippo.open_index` takes."""
    return {key.replace("__", ".", 1) if "." not in key else key: value for key, value in overrides.items()}


def open_source(path: str | Path, embedder: Any = None, **overrides: Any) -> RetrievalSource:
    """Open the local index at ``path`` with query-time ``overrides`` (see :func:`config_overrides`)."""
    from hippo.engine import open_index

    return open_index(path, config_overrides(overrides) or None, embedder=embedder)


def connect(url: str, key: str | None, namespace: str) -> RetrievalSource:
    """The ``hippo serve`` client for ``namespace`` at ``url`` (imported only here)."""
    try:
        from hippo.client import Client  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise HippoError(
            f"from_url needs hippo's HTTP client (hippo.client), which this installation lacks ({exc}); "
            "upgrade hippo, or open a local index with from_index(path)"
        ) from None
    client: RetrievalSource = Client(url, key, namespace=namespace)
    return client


_LOCKS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _lock_for(source: object) -> threading.Lock | None:
    """One lock per local engine: :class:`hippo.Engine` is not documented as thread-safe, and
    frameworks call retrievers from worker threads (``asyncio.to_thread``, ``Runnable.batch``).
    Other sources (the HTTP client) are called without a lock."""
    from hippo.engine import Engine

    if not isinstance(source, Engine):
        return None
    with _LOCKS_GUARD:
        lock = _LOCKS.get(source)
        if lock is None:
            lock = _LOCKS[source] = threading.Lock()
        return lock


def _kwargs(retriever: str | None) -> dict[str, Any]:
    return {"retriever": retriever} if retriever else {}


def run_one(source: RetrievalSource, query: str, k: int, retriever: str | None = None) -> QueryResult:
    """``source.retrieve(query, k)``, serialised per local engine."""
    call: Any = source.retrieve
    lock = _lock_for(source)
    if lock is None:
        return call(query, k=k, **_kwargs(retriever))  # type: ignore[no-any-return]
    with lock:
        return call(query, k=k, **_kwargs(retriever))  # type: ignore[no-any-return]


def run_many(source: RetrievalSource, queries: Sequence[str], k: int, retriever: str | None = None) -> list[QueryResult]:
    """``source.retrieve_many(queries, k)``: one embedding batch and one batched PageRank locally."""
    call: Any = source.retrieve_many
    lock = _lock_for(source)
    if lock is None:
        return list(call(list(queries), k=k, **_kwargs(retriever)))
    with lock:
        return list(call(list(queries), k=k, **_kwargs(retriever)))


async def arun_one(source: RetrievalSource, query: str, k: int, retriever: str | None = None) -> QueryResult:
    """The source's own ``aretrieve`` when it has one (the HTTP client), else :func:`run_one`
    in a worker thread, so the event loop never waits on the embedding or the PageRank."""
    native = getattr(source, "aretrieve", None)
    if native is not None and inspect.iscoroutinefunction(native):
        return await native(query, k=k, **_kwargs(retriever))  # type: ignore[no-any-return]
    return await asyncio.to_thread(run_one, source, query, k, retriever)


async def arun_many(
    source: RetrievalSource, queries: Sequence[str], k: int, retriever: str | None = None
) -> list[QueryResult]:
    """The source's own ``aretrieve_many`` when it has one, else :func:`run_many` in a worker thread."""
    native = getattr(source, "aretrieve_many", None)
    if native is not None and inspect.iscoroutinefunction(native):
        return list(await native(list(queries), k=k, **_kwargs(retriever)))
    return await asyncio.to_thread(run_many, source, queries, k, retriever)
