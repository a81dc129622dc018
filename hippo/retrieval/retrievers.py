"""Retrievers as objects, found by name in one registry (pure, no IO).

A retriever ranks a :class:`QueryBatch` (queries embedded, their entities found) against the
index a :class:`RankContext` gives it. Four ship with hippo; a plugin adds one with
:func:`register`::

    @dataclass(frozen=True)
    class DenseOnly:
        name: str = "dense2"
        registry_name: str = "myplugin.retriever.dense2.v1"
        names_entities: bool = False
        filters_facts: bool = False
        multi_step: bool = False

        def rank(self, ctx, batch, k, config, linked=None, options=None):
            return ctx.ranker.rank_dense_many(batch.passage_vectors, k)

    register(DenseOnly())
    engine.retrieve("question", retriever="dense2")

Every name comparison lives here: the engine asks the retriever what it needs
(``names_entities``: find the question's entities; ``filters_facts``: takes the LLM recognition
filter's facts; ``multi_step``: runs the hypergraph memory).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from hippo.config import RetrievalConfig
from hippo.errors import ConfigError
from hippo.protocols import FloatArray
from hippo.retrieval.hipporag import GraphRanking, HippoRAG2Ranker


@dataclass(frozen=True)
class QueryBatch:
    """Queries made ready for ranking: vectors (B, d) and the entities each names."""

    queries: tuple[str, ...]
    fact_vectors: FloatArray
    passage_vectors: FloatArray
    entities: tuple[tuple[int, ...], ...]
    linked_facts: tuple[tuple[Any, Any], ...] | None = None
    """Each query's linked facts (:meth:`HippoRAG2Ranker.link_facts` with the config) when they were found
    while its entities were (a single question); None: the ranker finds them."""

    def __len__(self) -> int:
        return len(self.queries)

    def __getitem__(self, which: slice) -> QueryBatch:
        """A sub-batch, e.g. ``batch[i : i + 1]`` for one query."""
        if not isinstance(which, slice):
            raise TypeError("index a QueryBatch with a slice: batch[i : i + 1]")
        return QueryBatch(
            self.queries[which], self.fact_vectors[which], self.passage_vectors[which], self.entities[which],
            None if self.linked_facts is None else self.linked_facts[which],
        )


@dataclass(frozen=True)
class MemoryOptions:
    """What multi-step retrieval takes besides the batch: a memory per query (or None), the
    number of steps (None: ``retrieval.memory_steps``) and the reasoner (``offline``, ``llm``)."""

    memories: Sequence[Any] | None = None
    steps: int | None = None
    reasoner: str = "offline"


class RankContext(Protocol):
    """What a retriever ranks with: the ranker over the index an engine answers from, and the
    hypergraph-memory runner (multi-step retrieval)."""

    @property
    def ranker(self) -> HippoRAG2Ranker: ...

    def run_memory(self, batch: QueryBatch, k: int, options: MemoryOptions) -> list[GraphRanking]:
        """One multi-step ranking per query (``GraphRanking.memory`` holds each run)."""
        ...


class Retriever(Protocol):
    """A way of ranking passages; see the module docstring."""

    @property
    def name(self) -> str:
        """The short name (``hippo``)."""
        ...

    @property
    def registry_name(self) -> str:
        """The versioned name (``hippo.retriever.hippo.v1``)."""
        ...

    @property
    def names_entities(self) -> bool:
        """Whether the batch should carry the entities each question names."""
        ...

    @property
    def filters_facts(self) -> bool:
        """Whether it takes the facts the LLM recognition filter kept (``llm.filter``)."""
        ...

    @property
    def multi_step(self) -> bool:
        """Whether it runs the hypergraph memory (its results carry a memory report)."""
        ...

    def rank(
        self, ctx: RankContext, batch: QueryBatch, k: int, config: RetrievalConfig,
        linked: Sequence[tuple[Any, Any]] | None = None, options: MemoryOptions | None = None,
    ) -> list[GraphRanking]:
        """The top ``k`` passages of each query of ``batch``; ``linked`` replaces each query's
        linked facts (those the recognition filter kept)."""
        ...


@dataclass(frozen=True)
class Dense:
    """Cosine similarity of query and passage alone."""

    name: str = "dense"
    registry_name: str = "hippo.retriever.dense.v1"
    names_entities: bool = False
    filters_facts: bool = False
    multi_step: bool = False

    def rank(self, ctx: RankContext, batch: QueryBatch, k: int, config: RetrievalConfig,
             linked: Sequence[tuple[Any, Any]] | None = None, options: MemoryOptions | None = None) -> list[GraphRanking]:
        return ctx.ranker.rank_dense_many(batch.passage_vectors, k)


@dataclass(frozen=True)
class HippoRAG2:
    """The reference algorithm: fact-linked entity seeds, Personalized PageRank, no additions."""

    name: str = "hipporag2"
    registry_name: str = "hippo.retriever.hipporag2.v1"
    names_entities: bool = False
    filters_facts: bool = True
    multi_step: bool = False

    def rank(self, ctx: RankContext, batch: QueryBatch, k: int, config: RetrievalConfig,
             linked: Sequence[tuple[Any, Any]] | None = None, options: MemoryOptions | None = None) -> list[GraphRanking]:
        ref = dataclasses.replace(config, query_entity_weight=0.0, dense_fusion=0.0)
        return ctx.ranker.rank_many(batch.fact_vectors, batch.passage_vectors, k, ref, batch.entities, linked,
                                    found=batch.linked_facts)


@dataclass(frozen=True)
class Hippo:
    """HippoRAG 2 plus seeds for the entities the question names and dense fusion (the default)."""

    name: str = "hippo"
    registry_name: str = "hippo.retriever.hippo.v1"
    names_entities: bool = True
    filters_facts: bool = True
    multi_step: bool = False

    def rank(self, ctx: RankContext, batch: QueryBatch, k: int, config: RetrievalConfig,
             linked: Sequence[tuple[Any, Any]] | None = None, options: MemoryOptions | None = None) -> list[GraphRanking]:
        return ctx.ranker.rank_many(batch.fact_vectors, batch.passage_vectors, k, config, batch.entities, linked,
                                    found=batch.linked_facts)


@dataclass(frozen=True)
class HGMem:
    """Multi-step ``hippo`` with a hypergraph working memory (:mod:`hippo.hgmem`); it links facts
    per step itself, so it takes no recognition filter."""

    name: str = "hgmem"
    registry_name: str = "hippo.retriever.hgmem.v1"
    names_entities: bool = True
    filters_facts: bool = False
    multi_step: bool = True

    def rank(self, ctx: RankContext, batch: QueryBatch, k: int, config: RetrievalConfig,
             linked: Sequence[tuple[Any, Any]] | None = None, options: MemoryOptions | None = None) -> list[GraphRanking]:
        return ctx.run_memory(batch, k, options or MemoryOptions())


_REGISTRY: dict[str, Retriever] = {}


def register(retriever: Retriever) -> Retriever:
    """Make ``retriever`` findable by its short and its versioned name (a later registration
    of a name replaces the earlier one)."""
    _REGISTRY[retriever.name] = retriever
    _REGISTRY[retriever.registry_name] = retriever
    return retriever


def get_retriever(name: str) -> Retriever:
    """The retriever registered under ``name`` (short or versioned); a ConfigError lists the
    valid names otherwise."""
    got = _REGISTRY.get(name)
    if got is None:
        raise ConfigError(f"unknown retriever {name!r}; valid: {', '.join(retriever_names())}")
    return got


def retriever_names() -> tuple[str, ...]:
    """Short names of the registered retrievers, in registration order."""
    return tuple(dict.fromkeys(r.name for r in _REGISTRY.values()))


for _builtin in (Hippo(), HippoRAG2(), Dense(), HGMem()):
    register(_builtin)

DEFAULT_RETRIEVER = "hippo"
