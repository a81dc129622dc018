"""The interfaces backends implement. Implementations are swappable by config."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt

from hippo.types import Extraction, Passage

if TYPE_CHECKING:
    from hippo.llm.base import ChatReply, ChatRequest, Outcome

FloatArray = npt.NDArray[np.float32]
T = TypeVar("T")


@runtime_checkable
class Extractor(Protocol):
    """OpenIE: turns passages into entities and (subject, relation, object) triples."""

    name: str
    """Versioned registry name, e.g. ``hippo.extractor.spacy.v1``."""

    def settings(self) -> dict[str, Any]:
        """JSON-serialisable settings, saved into the index manifest."""
        ...

    def extract(
        self, passages: Sequence[Passage], progress: Callable[[int, int], None] | None = None
    ) -> list[Extraction]:
        """One ``Extraction`` per passage, in input order; ``progress(done, total)`` if given."""
        ...


@runtime_checkable
class Embedder(Protocol):
    """Text to L2-normalised float32 vectors; documents and queries encoded separately."""

    @property
    def id(self) -> str:
        """Identifies the model (name or path stem); recorded in the index."""
        ...

    @property
    def dim(self) -> int:
        """Vector dimension."""
        ...

    def encode_documents(self, texts: Sequence[str]) -> FloatArray:
        """Shape (len(texts), dim), rows L2-normalised."""
        ...

    def encode_queries(self, texts: Sequence[str], instruction: str = "") -> FloatArray:
        """Shape (len(texts), dim), rows L2-normalised; ``instruction`` prefixes each query."""
        ...


@runtime_checkable
class LLMClient(Protocol):
    """Chat completions, batch-first: concurrency, caching and retries live inside.

    Implementations: :class:`hippo.llm.client.OpenAIClient` (any OpenAI-compatible server)
    and :class:`hippo.llm.scripted.ScriptedLLMClient` (deterministic, in memory).
    """

    model: str
    """The model name requests are made with."""

    def chat_many(
        self,
        requests: Sequence[ChatRequest],
        parse: Callable[[ChatReply], T],
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Outcome[T]]:
        """One :class:`~hippo.llm.base.Outcome` per request, in order: the value ``parse``
        made of the reply, or the reason there is none."""
        ...

    def usage(self) -> dict[str, dict[str, Any]]:
        """Per stage: requests, cache hits, HTTP calls, retries, failures, tokens."""
        ...
