"""The LLM layer: an OpenAI-compatible chat client with a response cache, and the prompts.

Nothing here imports ``openai`` at module import time; :func:`make_llm_client` does, and
names the fix when the ``llm`` extra is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hippo.llm.base import ChatReply, ChatRequest, LLMUnavailableError, Outcome, ParseError

if TYPE_CHECKING:
    from hippo.config import LLMConfig
    from hippo.llm.client import OpenAIClient

__all__ = ["ChatReply", "ChatRequest", "LLMUnavailableError", "Outcome", "ParseError", "make_llm_client"]


def make_llm_client(config: LLMConfig, cache: Any = None, environ: dict[str, str] | None = None) -> OpenAIClient:
    """The OpenAI-compatible client ``config`` describes (see :mod:`hippo.llm.client`)."""
    from hippo.llm.client import make_llm_client as make

    return make(config, cache, environ)
