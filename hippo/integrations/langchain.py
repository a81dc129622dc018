"""A LangChain retriever over a hippo index: ``pip install 'hippo[langchain]'``.

>>> from hippo.integrations.langchain import HippoRetriever
>>> retriever = HippoRetriever.from_index("graphs/sample-index", k=5)      # doctest: +SKIP
>>> docs = retriever.invoke("Who founded the company that makes X?")      # doctest: +SKIP
>>> docs[0].metadata["passage_id"], docs[0].metadata["score"]             # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForRetrieverRun,
    CallbackManager,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import ensure_config, get_config_list
from pydantic import ConfigDict, Field

from hippo.integrations.common import (
    RetrievalSource,
    arun_many,
    arun_one,
    connect,
    hit_metadata,
    open_source,
    run_many,
    run_one,
)
from hippo.types import QueryResult

__all__ = ["HippoRetriever", "to_documents"]


def to_documents(result: QueryResult) -> list[Document]:
    """The hits of a result as LangChain documents, best first (``id`` = the passage id)."""
    return [
        Document(page_content=hit.content, metadata=hit_metadata(hit, result), id=hit.passage_id)
        for hit in result.hits
    ]


class HippoRetriever(BaseRetriever):
    """Hippo's graph retrieval as a LangChain retriever.

    ``source`` is a local engine (:meth:`from_index`) or a ``hippo serve`` client
    (:meth:`from_url`): anything with ``retrieve``/``retrieve_many``. Each
    :class:`~langchain_core.documents.Document` holds the passage's content, ``id`` = its
    passage id, and the metadata of :func:`hippo.integrations.common.hit_metadata`.
    ``invoke(query, k=3)`` overrides ``k`` per call; ``batch`` makes one ``retrieve_many`` call.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    source: RetrievalSource = Field(exclude=True)
    """The engine or client queried."""
    k: int = Field(default=5, ge=1)
    """Documents returned per query."""
    retriever: str | None = None
    """Which ranking a local engine uses (``hippo``, ``hipporag2``, ``dense``, ``hgmem``); None = its default."""

    @classmethod
    def from_index(
        cls, path: str | Path, k: int = 5, *, retriever: str | None = None, embedder: Any = None, **overrides: Any
    ) -> HippoRetriever:
        """Open the local index at ``path``. ``overrides`` are query-time settings, spelled
        ``retrieval__damping=0.6`` or ``**{"retrieval.damping": 0.6}``."""
        return cls(source=open_source(path, embedder, **overrides), k=k, retriever=retriever)

    @classmethod
    def from_url(cls, url: str, key: str | None, namespace: str, k: int = 5) -> HippoRetriever:
        """Query the namespace ``namespace`` of a ``hippo serve`` endpoint with the API ``key``."""
        return cls(source=connect(url, key, namespace), k=k)

    def _k(self, k: int | None) -> int:
        """The per-call ``k`` when given (checked like the field), else the field."""
        if k is None:
            return self.k
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        return k

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        return to_documents(run_one(self.source, query, self._k(k), self.retriever))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        return to_documents(await arun_one(self.source, query, self._k(k), self.retriever))

    def batch(
        self,
        inputs: list[str],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        """All queries in one ``retrieve_many`` call (one embedding batch, one batched
        PageRank), with one callback run per query as ``invoke`` would make."""
        if not inputs:
            return []
        runs = [self._start(q, c, kwargs) for q, c in zip(inputs, get_config_list(config, len(inputs)))]
        try:
            results = run_many(self.source, inputs, self._k(kwargs.get("k")), self.retriever)
        except Exception as exc:
            for run in runs:
                run.on_retriever_error(exc)
            if return_exceptions:
                return [exc for _ in inputs]
            raise
        docs = [to_documents(r) for r in results]
        for run, d in zip(runs, docs):
            run.on_retriever_end(d)
        return docs

    async def abatch(
        self,
        inputs: list[str],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        """:meth:`batch` without blocking the event loop."""
        if not inputs:
            return []
        runs = [await self._astart(q, c, kwargs) for q, c in zip(inputs, get_config_list(config, len(inputs)))]
        try:
            results = await arun_many(self.source, inputs, self._k(kwargs.get("k")), self.retriever)
        except Exception as exc:
            for arun in runs:
                await arun.on_retriever_error(exc)
            if return_exceptions:
                return [exc for _ in inputs]
            raise
        docs = [to_documents(r) for r in results]
        for arun, d in zip(runs, docs):
            await arun.on_retriever_end(d)
        return docs

    def _callback_args(self, config: RunnableConfig, kwargs: dict[str, Any]) -> dict[str, Any]:
        """What ``BaseRetriever.invoke`` configures its callback manager with."""
        return {
            "inheritable_callbacks": config.get("callbacks"),
            "local_callbacks": None,
            "verbose": kwargs.get("verbose", False),
            "inheritable_tags": config.get("tags"),
            "local_tags": self.tags,
            "inheritable_metadata": {**(config.get("metadata") or {}), **self._get_ls_params(**kwargs)},
            "local_metadata": self.metadata,
        }

    def _start(self, query: str, config: RunnableConfig | None, kwargs: dict[str, Any]) -> CallbackManagerForRetrieverRun:
        config = ensure_config(config)
        manager = CallbackManager.configure(**self._callback_args(config, kwargs))
        return manager.on_retriever_start(None, query, name=config.get("run_name") or self.get_name())

    async def _astart(
        self, query: str, config: RunnableConfig | None, kwargs: dict[str, Any]
    ) -> AsyncCallbackManagerForRetrieverRun:
        config = ensure_config(config)
        manager = AsyncCallbackManager.configure(**self._callback_args(config, kwargs))
        return await manager.on_retriever_start(None, query, name=config.get("run_name") or self.get_name())
