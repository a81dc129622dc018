"""Request and response bodies of the REST API (they make its OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hippo.serve.settings import (
    MAX_ID_CHARS,
    MAX_K,
    MAX_PASSAGES,
    MAX_QUERIES,
    MAX_QUERY_CHARS,
    MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
)

Retriever = Literal["hippo", "hipporag2", "dense", "hgmem"]
NOT_BLANK = r"\S"
"""A string with at least one non-space character (JSON Schema patterns search, unanchored)."""
PassageId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
QueryText = Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS, pattern=NOT_BLANK)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PassageIn(_Strict):
    """One memory to store."""

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS, pattern=NOT_BLANK, description="The passage text (required).")
    title: str = Field("", max_length=MAX_TITLE_CHARS, description="Optional title; stored as the first line.")
    id: PassageId | None = Field(None,
                           description="Optional id; default: a hash of the content, so the same text gets the same id.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="JSON facts about the passage (source, date, "
                                     "...), stored with it and returned on its hits. The keys document_id, source, "
                                     "headings and span also fill the hit's citation fields.")


class PassagesIn(_Strict):
    """Passages to add (POST) or to add-or-replace by id (PUT)."""

    passages: list[PassageIn] = Field(min_length=1, max_length=MAX_PASSAGES)


class IdsIn(_Strict):
    """Passage ids to delete."""

    ids: list[PassageId] = Field(min_length=1, max_length=MAX_PASSAGES)


class IdsOut(BaseModel):
    """The ids the passages have in the namespace, in request order; durable when sent."""

    namespace: str
    ids: list[str]


class DeletedOut(BaseModel):
    """The ids deleted."""

    namespace: str
    deleted: list[str]


class QueriesIn(_Strict):
    """A batch of queries for one namespace."""

    queries: list[QueryText] = Field(min_length=1, max_length=MAX_QUERIES)
    k: int = Field(5, ge=1, le=MAX_K)
    retriever: Retriever = "hippo"


class AskIn(_Strict):
    """A question for the LLM reader."""

    question: QueryText
    k: int | None = Field(None, ge=1, le=MAX_K, description="Passages the reader sees (default llm.qa_top_k).")
    retriever: Retriever = "hippo"


class HitOut(BaseModel):
    """A retrieved passage: rank (0-based), id, score, text and citation."""

    rank: int
    passage_id: str
    score: float
    title: str
    content: str
    document_id: str = ""
    source: str = ""
    headings: list[str] = []
    span: list[int] = []
    metadata: dict[str, Any] = {}


class FactOut(BaseModel):
    """A fact the query linked to, with its normalised score."""

    id: str
    subject: str
    relation: str
    object: str
    score: float


class SeedOut(BaseModel):
    """A seed entity of the PageRank and its reset weight."""

    entity_id: str
    name: str
    weight: float
    source: str


class ResultOut(BaseModel):
    """The ranked passages for one query and the evidence behind them."""

    query: str
    retriever: str
    mode: str = Field(description="ppr (the graph ranked), dense, or empty (the namespace holds nothing yet).")
    hits: list[HitOut]
    facts: list[FactOut] = []
    seeds: list[SeedOut] = []
    timings_ms: dict[str, float] = {}
    filter: str | None = None
    rejected_facts: list[FactOut] | None = None
    memory: dict[str, Any] | None = None


class RetrieveOut(ResultOut):
    """``GET /v1/ns/{ns}/retrieve``: one result, with its namespace."""

    namespace: str


class BatchOut(BaseModel):
    """One result per query, in order."""

    namespace: str
    results: list[ResultOut]


class AnswerOut(BaseModel):
    """The LLM's answer and the passages it read."""

    namespace: str
    question: str
    answer: str
    passages: list[HitOut]
    reply: str
    retrieval: ResultOut
    error: str = ""


class NamespaceOut(BaseModel):
    """A namespace this key reaches."""

    name: str


class NamespacesOut(BaseModel):
    """The namespaces this key reaches that hold passages, and the key's rights."""

    namespaces: list[NamespaceOut]
    key: dict[str, Any]


class StatusOut(BaseModel):
    """Health and readiness."""

    status: str
    detail: dict[str, Any] = {}


class ProblemOut(BaseModel):
    """RFC 9457 problem details; 422 adds ``errors`` (where and what)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None
