"""Conversations as a first-class input: turns with speaker, session and time.

* :mod:`hippo.conversation.schema`: the :class:`Turn` record, its validation and its passage;
* :mod:`hippo.conversation.loaders`: LoCoMo JSON, JSON Lines turns, OpenAI chat messages;
* :mod:`hippo.conversation.time`: turn times, dates in questions, the time prior;
* :mod:`hippo.conversation.extractor`: the conversation-aware OpenIE wrapper.

See ``docs/conversations.md``.
"""

from __future__ import annotations

from typing import Any

from hippo.config import Config
from hippo.conversation.loaders import Conversation, read_conversations, read_turns, turns_from_records
from hippo.conversation.schema import ConversationError, Turn, make_turn, turn_passage, turn_passages, validate_turns

CONVERSATION_SETTINGS: dict[str, Any] = {
    "retrieval.damping": 0.7,  # +0.45 points (mean of R@5 and R@10) over 0.5, coordinate ascent
    "retrieval.time_boost": 3.0,  # with speaker_boost: +4.95 points over no prior (4 x 4 grid)
    "retrieval.speaker_boost": 2.0,
}
"""Query-time settings a new conversation index records in its config (``hippo index
--format conversation``, :func:`conversation_config`), chosen on LoCoMo's tuning conversations
(41, 42, 43, 44, 47, 48) by ``python benchmarks/locomo.py --sweep``; figures in
``benchmarks/results/locomo.md``. ``--set`` still overrides them. Other corpora keep the defaults."""


def conversation_config(base: Config | None = None) -> Config:
    """``base`` (default: the defaults) as a new conversation index's config: the conversation
    extractor and :data:`CONVERSATION_SETTINGS`; what ``hippo index --format conversation``
    records. Give it to ``hippo.open_index(path, writable=True, create=True, config=...)``."""
    return (base or Config()).replace({"extract.extractor": "conversation", **CONVERSATION_SETTINGS}).validate()


__all__ = [
    "CONVERSATION_SETTINGS", "Conversation", "ConversationError", "Turn", "conversation_config", "make_turn",
    "read_conversations", "read_turns", "turn_passage", "turn_passages", "turns_from_records", "validate_turns",
]
