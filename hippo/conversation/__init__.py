"""Conversations as a first-class input: turns with speaker, session and time.

* :mod:`hippo.conversation.schema`: the :class:`Turn` record, its validation and its passage;
* :mod:`hippo.conversation.loaders`: LoCoMo JSON, JSON Lines turns, OpenAI chat messages;
* :mod:`hippo.conversation.time`: turn times, dates in questions, the time prior;
* :mod:`hippo.conversation.extractor`: the conversation-aware OpenIE wrapper.

See ``docs/conversations.md``.
"""

from __future__ import annotations

from typing import Any

from hippo.conversation.loaders import Conversation, read_conversations, read_turns, turns_from_records
from hippo.conversation.schema import ConversationError, Turn, make_turn, turn_passage, turn_passages, validate_turns

CONVERSATION_SETTINGS: dict[str, Any] = {}
"""Query-time settings a new conversation index records in its config (``hippo index
--format conversation``), chosen on LoCoMo's tuning conversations (``benchmarks/results/locomo.md``);
``--set`` still overrides them. Other corpora keep the defaults."""

__all__ = [
    "CONVERSATION_SETTINGS", "Conversation", "ConversationError", "Turn", "make_turn", "read_conversations", "read_turns",
    "turn_passage", "turn_passages", "turns_from_records", "validate_turns",
]
