"""A LlamaIndex retriever over a hippo index: ``pip install 'hippo[llama-index]'``.

>>> from hippo.integrations.llama_index import HippoRetriever
>>> retriever = HippoRetriever.from_index("graphs/sample-index", k=5)      # doctest: +SKIP
>>> nodes = retriever.retrieve("Who founded the company that makes X?")   # doctest: +SKIP
>>> nodes[0].node.metadata["passage_id"], nodes[0].score                  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llama_index.core.callbacks import CallbackManager
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeRelationship, NodeWithScore, QueryBundle, RelatedNodeInfo, TextNode

from hippo.integrations.common import HIPPO_KEYS, RetrievalSource, arun_one, connect, hit_metadata, open_source, run_one
from hippo.types import QueryResult

__all__ = ["HippoRetriever", "to_nodes"]


def to_nodes(result: QueryResult) -> list[NodeWithScore]:
    """The hits of a result as scored LlamaIndex text nodes, best first (``id_`` = the passage id).

    hippo's own metadata keys are hidden from the LLM prompt and from embedding (the content
    already starts with the title); the passage's own metadata (a conversation's ``speaker``
    and ``time``, a document's ``source``) stays visible. A chunk of a document points to it
    as its source node (``node.ref_doc_id`` = ``document_id``).
    """
    nodes = []
    for hit in result.hits:
        meta = hit_metadata(hit, result)
        hidden = [k for k in HIPPO_KEYS if k != "source" or not hit.source]
        node = TextNode(
            text=hit.content, id_=hit.passage_id, metadata=meta,
            excluded_llm_metadata_keys=hidden, excluded_embed_metadata_keys=hidden,
        )
        if meta["document_id"] != hit.passage_id:
            node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=meta["document_id"])
        nodes.append(NodeWithScore(node=node, score=float(hit.score)))
    return nodes


class HippoRetriever(BaseRetriever):
    """Hippo's graph retrieval as a LlamaIndex retriever (``retrieve``/``aretrieve``, or a
    ``RetrieverQueryEngine``).

    ``source`` is a local engine (:meth:`from_index`) or a ``hippo serve`` client
    (:meth:`from_url`): anything with ``retrieve``/``retrieve_many``. Nodes carry the same
    metadata as the LangChain retriever's documents (:func:`hippo.integrations.common.hit_metadata`).
    """

    def __init__(
        self,
        source: RetrievalSource,
        k: int = 5,
        retriever: str | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        if not isinstance(source, RetrievalSource):
            raise TypeError(f"source must have retrieve() and retrieve_many() (a hippo engine or client), got {type(source).__name__}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.source = source
        self.k = k
        self.retriever = retriever
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    @classmethod
    def from_index(
        cls, path: str | Path, k: int = 5, *, retriever: str | None = None, embedder: Any = None, **overrides: Any
    ) -> HippoRetriever:
        """Open the local index at ``path``. ``overrides`` are query-time settings, spelled
        ``retrieval__damping=0.6`` or ``**{"retrieval.damping": 0.6}``."""
        return cls(open_source(path, embedder, **overrides), k=k, retriever=retriever)

    @classmethod
    def from_url(cls, url: str, key: str | None, namespace: str, k: int = 5) -> HippoRetriever:
        """Query the namespace ``namespace`` of a ``hippo serve`` endpoint with the API ``key``."""
        return cls(connect(url, key, namespace), k=k)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return to_nodes(run_one(self.source, query_bundle.query_str, self.k, self.retriever))

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return to_nodes(await arun_one(self.source, query_bundle.query_str, self.k, self.retriever))
