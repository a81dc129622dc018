"""LLM OpenIE as in HippoRAG 2: named entities first, then triples conditioned on them.

Each step is one batch of chat requests (at most ``llm.concurrency`` in flight), cached, with
retries. Replies are parsed defensively (:mod:`hippo.llm.parse`). A passage whose entity or
triple step still fails is a *failure*: it is recorded with its reason, never silently given
an empty extraction. :meth:`LLMExtractor.run` returns the failures next to the extractions
(``hippo index`` then indexes the rest and reports them); :meth:`LLMExtractor.extract`, the
:class:`~hippo.protocols.Extractor` method, raises on any failure so nothing is written.

A truncated reply (``finish_reason == "length"``) of the entity step keeps its complete
entities (they only condition the triple prompt); a truncated triple reply fails its
passage, since indexing a cut-off triple list could never be completed later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hippo.errors import ExtractionError
from hippo.llm.base import ChatReply, ChatRequest, ParseError
from hippo.llm.parse import parse_entities, parse_triples
from hippo.llm.prompts import PROMPT_VERSION, ner_messages, prompts_hash, triple_messages
from hippo.protocols import LLMClient
from hippo.types import Extraction, Passage, Triple

NER_STAGE = "openie.ner"
TRIPLE_STAGE = "openie.triples"


@dataclass(frozen=True)
class ExtractionFailure:
    """A passage OpenIE could not extract, and why."""

    passage_id: str
    title: str
    stage: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        """JSON shape of one failure-report entry."""
        return {"passage_id": self.passage_id, "title": self.title, "stage": self.stage, "reason": self.reason}


@dataclass
class ExtractionRun:
    """What one :meth:`LLMExtractor.run` produced."""

    extractions: dict[str, Extraction] = field(default_factory=dict)
    failures: list[ExtractionFailure] = field(default_factory=list)
    truncated_entities: list[str] = field(default_factory=list)
    """Passages whose entity reply hit the length limit (complete entities kept)."""


def _entities(reply: ChatReply) -> tuple[tuple[str, ...], bool]:
    return parse_entities(reply.content, reply.finish_reason == "length"), reply.finish_reason == "length"


def _triples(reply: ChatReply) -> tuple[tuple[Triple, ...], int]:
    if reply.finish_reason == "length":
        raise ParseError("the reply hit the length limit; raise --set llm.max_tokens", retry=False)
    return parse_triples(reply.content)


class LLMExtractor:
    """Two-step OpenIE through an :class:`~hippo.protocols.LLMClient`."""

    name = "hippo.extractor.llm.v1"

    def __init__(self, client: LLMClient, max_tokens: int | None = None) -> None:
        self.client = client
        self.max_tokens = max_tokens
        self.invalid_triples = 0
        self._done: dict[tuple[str, str], Extraction] = {}

    def settings(self) -> dict[str, Any]:
        """Model and prompt version: what shapes the extractions (not the server address)."""
        params = getattr(self.client, "params", {})
        return {
            "model": self.client.model, "prompts": PROMPT_VERSION, "prompts_hash": prompts_hash(),
            "temperature": params.get("temperature"), "max_tokens": self.max_tokens or params.get("max_tokens"),
        }

    def remember(self, passage: Passage, extraction: Extraction) -> None:
        """Take an extraction made earlier (e.g. from an existing index) instead of asking again."""
        self._done[(passage.id, passage.content)] = extraction

    def split_known(self, passages: Sequence[Passage]) -> tuple[ExtractionRun, list[Passage]]:
        """A run holding the extractions already made (remembered) of ``passages``, and the
        passages still to ask the LLM about."""
        out = ExtractionRun()
        todo = []
        for p in passages:
            known = self._done.get((p.id, p.content))
            if known is not None:
                out.extractions[p.id] = known
            else:
                todo.append(p)
        return out, todo

    def run(self, passages: Sequence[Passage], progress: Callable[[int, int], None] | None = None) -> ExtractionRun:
        """Extract ``passages``: every one ends in ``extractions`` or in ``failures``."""
        out, todo = self.split_known(passages)
        total = 2 * len(todo)

        def step(offset: int) -> Callable[[int, int], None] | None:
            return (lambda done, _n: progress(offset + done, total)) if progress else None

        ner = self.client.chat_many(
            [ChatRequest(ner_messages(p.content), NER_STAGE, self.max_tokens) for p in todo], _entities, step(0)
        )
        ready: list[tuple[Passage, tuple[str, ...]]] = []
        for p, o in zip(todo, ner):
            if o.value is None:
                out.failures.append(ExtractionFailure(p.id, p.title, "entities", o.error or "no reply"))
                continue
            entities, truncated = o.value
            if truncated:
                out.truncated_entities.append(p.id)
            ready.append((p, entities))
        skipped = len(todo) - len(ready)  # failed their entity step: no triple request
        triples = self.client.chat_many(
            [ChatRequest(triple_messages(p.content, ents), TRIPLE_STAGE, self.max_tokens) for p, ents in ready],
            _triples, step(len(todo) + skipped),
        )
        for (p, ents), t in zip(ready, triples):
            if t.value is None:
                out.failures.append(ExtractionFailure(p.id, p.title, "triples", t.error or "no reply"))
                continue
            found, invalid = t.value
            self.invalid_triples += invalid
            ex = Extraction(p.id, ents, found)
            self._done[(p.id, p.content)] = ex
            out.extractions[p.id] = ex
        order = {p.id: i for i, p in enumerate(passages)}
        out.failures.sort(key=lambda f: order[f.passage_id])
        return out

    def extract(
        self, passages: Sequence[Passage], progress: Callable[[int, int], None] | None = None
    ) -> list[Extraction]:
        """One extraction per passage, or ExtractionError naming the failed passages (their
        replies so far are cached: running again asks only for what failed)."""
        result = self.run(passages, progress)
        if result.failures:
            raise ExtractionError(failure_message(result.failures, len(passages)))
        return [result.extractions[p.id] for p in passages]


def failure_message(failures: Sequence[ExtractionFailure], total: int) -> str:
    """One line: how many failed, the first few with reasons, and what to do."""
    shown = "; ".join(f"{f.passage_id} ({f.title or 'untitled'}, {f.stage}: {f.reason})" for f in failures[:3])
    more = f"; and {len(failures) - 3} more" if len(failures) > 3 else ""
    return (
        f"LLM OpenIE failed for {len(failures)} of {total} passages: {shown}{more}; "
        f"run the command again to retry only those (replies already received are cached)"
    )
