"""Frozen value types shared by every stage of hippo."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Triple = tuple[str, str, str]

META_KEYS = ("document_id", "source", "headings", "span", "chunk", "speaker", "session", "time")
"""Passage metadata keys with a meaning hippo knows (:attr:`Passage.metadata`)."""


@dataclass(frozen=True)
class Passage:
    """One retrievable unit of text.

    ``content`` is what gets embedded and extracted: ``title + "\\n" + text`` when a
    title exists (the HippoRAG convention), else ``text``.
    """

    id: str
    content: str
    title: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """JSON-able facts about where the passage came from, stored with it and returned on its
    hits. Reserved keys (see :data:`META_KEYS`): documents set ``document_id``, ``source``,
    ``headings`` (list of str), ``span`` (``[start, end]`` character offsets into the
    document's extracted text) and ``chunk`` (index in the document); conversation turns set
    ``speaker``, ``session`` and ``time`` (ISO 8601). Other keys are kept as given."""

    @property
    def text(self) -> str:
        """The body without the title line."""
        if self.title and self.content.startswith(self.title + "\n"):
            return self.content[len(self.title) + 1 :]
        return self.content


@dataclass(frozen=True)
class Extraction:
    """OpenIE output for one passage, raw (not yet normalised)."""

    passage_id: str
    entities: tuple[str, ...] = ()
    triples: tuple[Triple, ...] = ()


@dataclass(frozen=True)
class Fact:
    """A normalised (subject, relation, object) triple in the index."""

    id: str
    subject: str
    relation: str
    object: str

    @property
    def triple(self) -> Triple:
        """``(subject, relation, object)``."""
        return (self.subject, self.relation, self.object)

    def as_text(self, fmt: str = "plain") -> str:
        """The string embedded for fact linking: ``plain`` "s r o" or HippoRAG 2's ``tuple`` repr."""
        if fmt == "tuple":
            return repr((self.subject, self.relation, self.object))
        return " ".join(x for x in (self.subject, self.relation, self.object) if x)


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with its score and rank (0-based)."""

    rank: int
    passage_id: str
    score: float
    title: str
    content: str
    document_id: str = ""
    """The document the passage is a chunk of; the passage id itself for a passage corpus."""
    source: str = ""
    """Where the document came from: the file path as given, or a JSON document's id."""
    headings: tuple[str, ...] = ()
    """The heading path above the chunk in its document, outermost first."""
    span: tuple[int, int] = (0, 0)
    """``[start, end)`` character offsets of the chunk in its document's extracted text."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """The passage's whole metadata (:attr:`Passage.metadata`), e.g. ``speaker``/``session``/``time``."""


@dataclass(frozen=True)
class LinkedFact:
    """A fact the query was linked to, with its min-max normalised score."""

    fact: Fact
    score: float


@dataclass(frozen=True)
class Seed:
    """A seed entity of the PageRank reset vector with its weight.

    ``source``: ``fact`` (a linked fact names it), ``query`` (the question names it) or both.
    """

    entity_id: str
    name: str
    weight: float
    source: str = "fact"


@dataclass(frozen=True)
class QueryResult:
    """What ``retrieve`` returns: ranked passages and the evidence behind them.

    ``mode`` is ``"ppr"`` when the graph ranked the passages, ``"dense"`` when dense
    retrieval did (the dense retriever, or hipporag2's fallback when no fact links
    into the graph, or when the recognition filter kept none).

    With the recognition filter on, ``facts`` are the facts it kept, ``rejected_facts``
    the linked facts it dropped, and ``filter`` says how it went: ``kept``, ``none kept``
    (dense fallback, as HippoRAG 2), or ``failed: <reason>`` (the linked facts were used
    unfiltered). Without it, ``filter`` is empty.
    """

    query: str
    retriever: str
    mode: str
    hits: tuple[Hit, ...]
    facts: tuple[LinkedFact, ...] = ()
    seeds: tuple[Seed, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    rejected_facts: tuple[LinkedFact, ...] = ()
    filter: str = ""
    memory: dict[str, Any] | None = None
    """``hgmem`` only: the memory points and, per step, its mode, seeds, passages and operations."""
    prior: str = ""
    """What the time and speaker prior of a conversation index did for this question (e.g.
    ``time "in June 2023" -> in 2023-06-01..2023-07-01; 41 turns weighted``); empty when off or
    when the question names no date and no speaker."""

    @property
    def passage_ids(self) -> list[str]:
        """Ids of the hits, best first."""
        return [h.passage_id for h in self.hits]


@dataclass(frozen=True)
class Answer:
    """What ``Engine.answer`` returns: the reader's answer and the passages it read.

    ``passages`` are the hits given to the reader, in prompt order; ``reply`` is the
    reader's whole reply (its reasoning, then ``Answer: ...``). ``error`` says why
    ``answer`` is empty when the reader gave no usable reply.
    """

    question: str
    answer: str
    passages: tuple[Hit, ...]
    reply: str
    retrieval: QueryResult
    error: str = ""
