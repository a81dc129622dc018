"""The conversation schema: one :class:`Turn` per utterance, validated, and its passage.

A turn has an id, a speaker, a session id, a time (ISO 8601, normalised by
:func:`hippo.conversation.time.normalize_time`; may be empty), its text, and optional
metadata. :func:`validate_turns` refuses a turn with no text, an unparseable time or a
duplicate id with one :class:`ConversationError` naming the record.

:func:`turn_passages` makes the :class:`~hippo.types.Passage` objects that hippo indexes:
one per turn, in order, with ``metadata`` ``{speaker, session, time, ...}`` (the reserved
keys of :data:`hippo.types.META_KEYS`) and the title that the LoCoMo ablation kept:
``"<speaker>, session <n>, <date>"``, e.g. ``"Caroline, session 12, 8 May 2023"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hippo.conversation.time import normalize_time
from hippo.errors import CorpusError
from hippo.ids import content_id
from hippo.types import Passage

TURN_PREFIX = "t"
TITLE_STYLES = ("speaker-session-date", "speaker-date", "speaker", "none")
"""How a turn's passage is titled: ``speaker-session-date`` (the default: issue 23's title,
2.0 points of hippo's mean R@5/R@10 above ``speaker-date`` on LoCoMo's tuning split),
``speaker-date``, ``speaker``, ``none``."""
DEFAULT_TITLE = "speaker-session-date"
PREVIOUS_KEY = "previous"
"""Metadata key holding the preceding turn of the same session as ``"<speaker>: <text>"``
(read by :class:`~hippo.conversation.extractor.ConversationExtractor`)."""


class ConversationError(CorpusError):
    """A conversation file or turn record is malformed; the message names the record."""


@dataclass(frozen=True)
class Turn:
    """One utterance of a conversation.

    ``session`` is a string (numbers are kept as their decimal text); ``time`` is ISO 8601
    (``2023-05-08T13:56:00``, with an offset when one was given) or empty when unknown.
    """

    id: str
    speaker: str
    text: str
    session: str = ""
    time: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """Other facts kept with the turn (e.g. ``conversation``, ``img_url``); JSON-able."""

    @property
    def when(self) -> datetime | None:
        """:attr:`time` as a datetime, or None when unknown."""
        return datetime.fromisoformat(self.time) if self.time else None


def make_turn(record: Mapping[str, Any], where: str, default_id: str | None = None) -> Turn:
    """A turn from one ``{"id", "speaker", "session", "time", "text", "metadata"?}`` record.

    Unknown keys go to ``metadata``. ``where`` names the record in errors (file and line).
    Without an id, ``default_id`` or else a content hash (``t-<16 hex>``) is used.
    """
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        got = "no \"text\" field" if text is None else f"\"text\" {text!r}"
        raise ConversationError(f"{where}: turn has {got}; every turn needs non-empty text")
    speaker = record.get("speaker")
    if not isinstance(speaker, str) or not speaker.strip():
        raise ConversationError(f"{where}: turn has no \"speaker\" (got {speaker!r}); give the speaker's name")
    session = record.get("session", "")
    if session is None:
        session = ""
    if isinstance(session, bool) or not isinstance(session, (str, int)):
        raise ConversationError(f"{where}: \"session\" must be a string or an integer, got {session!r}")
    raw_time = record.get("time", "")
    try:
        time = normalize_time(raw_time)
    except ValueError as exc:
        raise ConversationError(f"{where}: {exc}") from None
    metadata = dict(record.get("metadata") or {})
    if not isinstance(record.get("metadata") or {}, Mapping):
        raise ConversationError(f"{where}: \"metadata\" must be an object")
    metadata.update({k: v for k, v in record.items() if k not in ("id", "speaker", "session", "time", "text", "metadata")})
    raw_id = record.get("id")
    if raw_id is None or raw_id == "":
        tid = default_id or content_id(TURN_PREFIX, "\x1f".join((speaker, str(session), time, text)))
    elif isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool):
        tid = str(raw_id)
    else:
        raise ConversationError(f"{where}: \"id\" must be a string or an integer, got {raw_id!r}")
    return Turn(tid, " ".join(speaker.split()), text.strip(), str(session), time, metadata)


def validate_turns(turns: Iterable[tuple[Turn, str]]) -> list[Turn]:
    """The turns, checked for duplicate ids; each comes with where it was read (for errors)."""
    seen: dict[str, str] = {}
    out = []
    for turn, where in turns:
        if turn.id in seen:
            raise ConversationError(
                f"{where}: duplicate turn id {turn.id!r} (first at {seen[turn.id]}); turn ids must be unique"
            )
        seen[turn.id] = where
        out.append(turn)
    if not out:
        raise ConversationError("the conversation has no turns")
    return out


def turn_title(turn: Turn, style: str = DEFAULT_TITLE) -> str:
    """The passage title of a turn in one of :data:`TITLE_STYLES`."""
    if style not in TITLE_STYLES:
        raise ValueError(f"unknown title style {style!r}; valid: {', '.join(TITLE_STYLES)}")
    if style == "none":
        return ""
    parts = [turn.speaker]
    if style == "speaker-session-date" and turn.session:
        parts.append(f"session {turn.session}")
    if style != "speaker" and turn.time:
        parts.append(human_date(turn.time))
    return ", ".join(parts)


def human_date(iso: str) -> str:
    """``2023-05-08T13:56:00`` -> ``8 May 2023`` (what an embedder and a reader understand)."""
    when = datetime.fromisoformat(iso)
    return f"{when.day} {when.strftime('%B')} {when.year}"


def turn_metadata(turn: Turn) -> dict[str, Any]:
    """The passage metadata of a turn: ``speaker``, ``session``, ``time`` and the turn's own."""
    return {**turn.metadata, "speaker": turn.speaker, "session": turn.session, "time": turn.time}


def turn_passage(turn: Turn, previous: Turn | None = None, title: str = DEFAULT_TITLE, context: bool = False) -> Passage:
    """The passage of one turn. ``previous`` (the turn before it in the same session) is kept in
    ``metadata["previous"]`` for the extractor; with ``context`` it is also part of the text
    that is embedded (``"<speaker>: <text>"`` above the turn)."""
    head = turn_title(turn, title)
    meta = turn_metadata(turn)
    text = turn.text
    if previous is not None:
        prev = f"{previous.speaker}: {previous.text}"
        meta[PREVIOUS_KEY] = prev
        if context:
            text = f"({prev})\n{text}"
    content = f"{head}\n{text}" if head else text
    return Passage(id=turn.id, content=content, title=head, metadata=meta)


def turn_passages(turns: Sequence[Turn], title: str = DEFAULT_TITLE, context: bool = False) -> list[Passage]:
    """Passages of turns in conversation order (see :func:`turn_passage`); a turn's
    predecessor is the turn before it when both belong to the same session."""
    out = []
    for i, turn in enumerate(turns):
        prev = turns[i - 1] if i and turns[i - 1].session == turn.session else None
        out.append(turn_passage(turn, prev, title, context))
    return out
