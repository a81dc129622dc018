"""The two LLM components of retrieval, handed to an engine through its ``llm`` client:
recognition memory (HippoRAG 2's filter over the linked facts) and the QA reader."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hippo.config import Config
from hippo.llm.base import ChatReply, ChatRequest, ParseError
from hippo.llm.parse import parse_facts
from hippo.llm.prompts import answer_of, filter_messages, qa_messages
from hippo.protocols import LLMClient
from hippo.retrieval.recognition import kept_facts, map_to_candidates
from hippo.types import Answer, QueryResult, Triple

DEFAULT = "hippo"

FILTER_STAGE = "filter"
QA_STAGE = "qa"


class RecognitionFilter:
    """Recognition memory (HippoRAG 2, step 4): the LLM keeps the linked facts that help.
    ``triple(f)`` gives fact ``f``'s (subject, relation, object)."""

    def __init__(self, llm: Callable[[], LLMClient], config: Config, triple: Callable[[int], Triple]) -> None:
        self.llm = llm
        self.config = config
        self.triple = triple

    def filter(
        self, queries: Sequence[str], linked: Sequence[tuple[Any, Any]]
    ) -> tuple[list[tuple[Any, Any]], list[tuple[Any, Any]], list[str]]:
        """``linked[b]`` are query ``b``'s candidate facts (indices, scores). Returns, per query,
        the kept facts, the dropped ones, and the status (``kept``, ``none kept``, or
        ``failed: <reason>``, when the reply was unusable: then every candidate is kept).
        Replies are mapped back strictly (:mod:`hippo.retrieval.recognition`)."""
        limit = self.config.retrieval.linking_top_k
        todo = [b for b, (idx, _) in enumerate(linked) if len(idx)]
        requests = [
            ChatRequest(
                filter_messages(queries[b], [self.triple(f) for f in linked[b][0].tolist()]),
                FILTER_STAGE, self.config.llm.filter_max_tokens,
            )
            for b in todo
        ]
        outcomes = self.llm().chat_many(requests, _filter_reply)
        kept: list[tuple[Any, Any]] = list(linked)
        dropped: list[tuple[Any, Any]] = [(np.zeros(0, np.int64), np.zeros(0))] * len(linked)
        status = ["none kept"] * len(linked)
        for b, outcome in zip(todo, outcomes):
            idx, scores = linked[b]
            if outcome.value is None:
                status[b] = f"failed: {outcome.error}"
                continue
            candidates = [self.triple(f) for f in idx.tolist()]
            positions = map_to_candidates(candidates, outcome.value, limit)
            rest = [i for i in range(len(idx)) if i not in positions]
            kept[b] = kept_facts(idx, scores, positions)
            dropped[b] = kept_facts(idx, scores, rest)
            status[b] = "kept" if positions else "none kept"
        return kept, dropped, status


class QAReader:
    """The reader: the LLM answers each question from the top ``k`` passages retrieved."""

    def __init__(self, llm: Callable[[], LLMClient]) -> None:
        self.llm = llm

    def read_many(self, results: Sequence[QueryResult], k: int) -> list[Answer]:
        """One answer per retrieval result, from its top ``k`` hits (concurrent calls)."""
        requests = [
            ChatRequest(qa_messages(r.query, [h.content for h in r.hits[:k]]), QA_STAGE, json=False) for r in results
        ]
        outcomes = self.llm().chat_many(requests, _qa_reply)
        return [
            Answer(r.query, answer_of(o.value) if o.value is not None else "", r.hits[:k], o.value or "", r, o.error or "")
            for r, o in zip(results, outcomes)
        ]


def _filter_reply(reply: ChatReply) -> list[tuple[str, str, str]]:
    return parse_facts(reply.content)


def _qa_reply(reply: ChatReply) -> str:
    if not reply.content.strip():
        raise ParseError("empty reply")
    return reply.content


class LLMMixin:
    """The LLM side of :class:`hippo.engine.Engine`: its client, the recognition filter and the
    reader (the engine provides the attributes annotated)."""

    config: Config
    _llm: LLMClient | None
    facts: Sequence[Any]
    retrieve_many: Callable[..., list[QueryResult]]

    @property
    def llm(self) -> LLMClient:
        """The LLM client of the filter, the reader and the LLM reasoner (``llm.*``; made on first
        use, so an engine that never asks the LLM needs no ``openai``)."""
        if self._llm is None:
            from hippo.llm import make_llm_client

            self._llm = make_llm_client(self.config.llm)
        return self._llm

    def recognize(self, queries: Sequence[str], linked: Sequence[tuple[Any, Any]]) -> tuple[list[Any], list[Any], list[str]]:
        """Recognition memory: per query, the facts the LLM kept, those it dropped, and the status."""
        return RecognitionFilter(lambda: self.llm, self.config, lambda f: self.facts[f].triple).filter(queries, linked)

    def answer(self, question: str, k: int | None = None, retriever: str = DEFAULT) -> Answer:
        """Retrieve for ``question``, then let the LLM reader answer from the top passages."""
        return self.answer_many([question], k, retriever)[0]

    def answer_many(self, questions: Sequence[str], k: int | None = None, retriever: str = DEFAULT) -> list[Answer]:
        """:meth:`answer` for many questions; ``k`` passages read (default ``llm.qa_top_k``, 5)."""
        if isinstance(questions, str):
            raise TypeError("answer_many takes a list of questions; use answer() for one")
        k = self.config.llm.qa_top_k if k is None else k
        return self.read_many(self.retrieve_many(questions, k, retriever), k)

    def read_many(self, results: Sequence[QueryResult], k: int | None = None) -> list[Answer]:
        """The reader over retrieval results already made: the top ``k`` hits of each."""
        return QAReader(lambda: self.llm).read_many(results, self.config.llm.qa_top_k if k is None else k)
