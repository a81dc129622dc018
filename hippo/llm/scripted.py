"""A deterministic in-memory :class:`~hippo.protocols.LLMClient` for tests and examples."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hippo.llm.base import BatchClient, ChatReply, ChatRequest, RetryPolicy


class ScriptedLLMClient(BatchClient):
    """Replies come from ``reply(request)`` (a string, or a full :class:`ChatReply`).

    It shares the batching, cache, parse-retry and usage code of the real client, so the
    conformance tests run against both. Token counts are whitespace word counts.
    """

    def __init__(
        self,
        reply: Callable[[ChatRequest], str | ChatReply],
        model: str = "scripted",
        *,
        concurrency: int = 1,
        cache: Any = None,
    ) -> None:
        super().__init__(concurrency=concurrency, retry=RetryPolicy(max_retries=0), cache=cache, params={"scripted": True})
        self.model = model
        self._reply = reply
        self.requests: list[ChatRequest] = []

    def _send(self, request: ChatRequest) -> ChatReply:
        with self._lock:
            self.requests.append(request)
        out = self._reply(request)
        if isinstance(out, ChatReply):
            return out
        words = sum(len(m["content"].split()) for m in request.messages)
        return ChatReply(out, "stop", words, len(out.split()))
