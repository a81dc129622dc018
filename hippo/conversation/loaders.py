"""Read conversations from files: LoCoMo JSON, JSON Lines turns, and OpenAI chat messages.

* **JSON Lines turns**, one ``{"id", "speaker", "session", "time", "text"}`` per line
  (``time`` ISO 8601, ``session`` a string or number; other keys become metadata).
* **LoCoMo JSON**: the release's ``locomo10.json`` (``{"sample_id", "conversation":
  {"speaker_a", "session_1": [{"speaker", "dia_id", "text", "blip_caption"?}],
  "session_1_date_time": ...}}``) and the flattened form ``{"conversation", "speakers",
  "turns": [{"id", "session", "date", "speaker", "text"}]}``; one object or a list.
* **OpenAI chat messages**: ``{"role", "content", "name"?}`` with a conversation id
  (``conversation_id``, ``session_id`` or ``thread_id``) and a time (``created_at``,
  ``created``, ``timestamp`` or ``time``; optional), as JSON Lines of messages, or JSON: a
  list of messages, an object ``{"id", "messages": [...]}``, or a list of such objects.
  The speaker is ``name``, else the role; ``system``, ``developer`` and ``tool`` messages
  and assistant messages that only call tools (no content) are not turns.

When several conversations of one file use the same turn ids (LoCoMo's ``"D3:7"``), ids are
prefixed with the conversation id (``"41/D3:7"``) so they stay unique. Messages without an id
get ``<conversation id>:<n>`` (n from 1 in each conversation).
Every error names the file and the record (line or item) and what to fix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hippo.conversation.schema import ConversationError, Turn, make_turn, validate_turns

SESSION_KEYS = ("conversation_id", "session_id", "thread_id", "session")
TIME_KEYS = ("created_at", "created", "timestamp", "time")
SKIPPED_ROLES = ("system", "developer", "tool", "function")
FORMATS = (
    "JSON Lines turns {id, speaker, session, time, text}, LoCoMo JSON, or OpenAI chat messages "
    "{role, content, conversation_id}"
)


@dataclass(frozen=True)
class Conversation:
    """The turns of one conversation, in order, and its id (empty when the file names none)."""

    id: str
    turns: tuple[Turn, ...]

    @property
    def speakers(self) -> tuple[str, ...]:
        """Speakers in order of first turn."""
        return tuple(dict.fromkeys(t.speaker for t in self.turns))


def read_conversations(path: str | Path) -> list[Conversation]:
    """Every conversation in ``path`` (``.json``, ``.jsonl`` or ``.ndjson``), validated."""
    src = Path(path)
    if not src.is_file():
        raise ConversationError(f"conversation file not found: {src}; give {FORMATS}")
    try:
        raw = src.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConversationError(f"{src}: not UTF-8 text") from None
    if src.suffix.lower() in (".jsonl", ".ndjson"):
        records = []
        for lineno, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append((json.loads(line), f"{src}:{lineno}"))
            except json.JSONDecodeError as exc:
                raise ConversationError(f"{src}:{lineno}: malformed JSON ({exc.msg} at column {exc.colno})") from None
        return _from_records(records, src)
    if src.suffix.lower() != ".json":
        raise ConversationError(f"{src}: unknown conversation format {src.suffix or '(no extension)'!r}; give {FORMATS}")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConversationError(f"{src}: malformed JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    items = data if isinstance(data, list) else [data]
    if items and all(isinstance(x, Mapping) and ("turns" in x or isinstance(x.get("conversation"), Mapping)) for x in items):
        return _prefixed([_locomo(x, f"{src}: item {i}") for i, x in enumerate(items)])
    if items and all(isinstance(x, Mapping) and isinstance(x.get("messages"), list) for x in items):
        convs = []
        for i, x in enumerate(items):
            cid = str(_first(x, ("id", *SESSION_KEYS)) or "")
            records = [(m, f"{src}: item {i}, message {j}") for j, m in enumerate(x["messages"])]
            convs.extend(_from_records(records, src, default_session=cid, prefix=False))
        return _prefixed(convs)
    if items and all(isinstance(x, Mapping) for x in items):
        return _from_records([(x, f"{src}: item {i}") for i, x in enumerate(items)], src)
    raise ConversationError(f"{src}: expected {FORMATS}; got JSON {type(data).__name__}")


def read_turns(path: str | Path) -> list[Turn]:
    """Every turn in ``path``, conversation after conversation (see :func:`read_conversations`)."""
    turns = [t for c in read_conversations(path) for t in c.turns]
    return validate_turns((t, f"{path}: turn {t.id!r}") for t in turns)


def turns_from_records(records: Sequence[Mapping[str, Any]], where: str = "turns") -> list[Turn]:
    """Turns from in-memory records (turn dicts or OpenAI messages), as ``add`` receives them."""
    convs = _from_records([(r, f"{where}[{i}]") for i, r in enumerate(records)], where, prefix=False)
    return [t for c in convs for t in c.turns]


def _first(record: Mapping[str, Any], keys: Sequence[str]) -> Any:
    return next((record[k] for k in keys if record.get(k) not in (None, "")), None)


def _from_records(
    records: Sequence[tuple[Any, str]], src: str | Path, default_session: str = "", prefix: bool = True
) -> list[Conversation]:
    """Turn records or OpenAI messages (not mixed), grouped into conversations by session for
    messages; turn records form one conversation (sessions are part of it)."""
    if not records:
        raise ConversationError(f"{src}: no turns; give {FORMATS}")
    kinds = set()
    for record, where in records:
        if not isinstance(record, Mapping):
            raise ConversationError(f"{where}: expected an object, got {type(record).__name__}")
        kinds.add("message" if "role" in record and "speaker" not in record else "turn")
    if len(kinds) > 1:
        raise ConversationError(f"{src}: mixes OpenAI messages (role, content) and turns (speaker, text); use one format")
    if kinds == {"turn"}:
        turns = validate_turns((make_turn(r, where), where) for r, where in records)
        return [Conversation("", tuple(turns))]
    by_conv: dict[str, list[tuple[Turn, str]]] = {}
    counts: dict[str, int] = {}
    for record, where in records:
        turn = _message_turn(record, where, default_session, counts)
        if turn is not None:
            by_conv.setdefault(turn.session, []).append((turn, where))
    if not by_conv:
        raise ConversationError(f"{src}: no user or assistant message with content; give {FORMATS}")
    convs = [Conversation(cid, tuple(validate_turns(ts))) for cid, ts in by_conv.items()]
    return _prefixed(convs) if prefix else convs


def _message_turn(record: Mapping[str, Any], where: str, default_session: str, counts: dict[str, int]) -> Turn | None:
    role = record.get("role")
    if not isinstance(role, str) or not role:
        raise ConversationError(f"{where}: message has no \"role\"")
    content = record.get("content")
    if role in SKIPPED_ROLES or (content is None and record.get("tool_calls")):
        return None
    if isinstance(content, list):  # content parts: keep the text ones
        content = "\n".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    session = _first(record, SESSION_KEYS)
    session = default_session if session is None else session
    key = str(session)
    counts[key] = counts.get(key, 0) + 1
    rest = {k: v for k, v in record.items() if k not in ("role", "content", "name", "id", *SESSION_KEYS, *TIME_KEYS)}
    turn_record = {
        "id": record.get("id") or f"{key + ':' if key else ''}{counts[key]}",
        "speaker": record.get("name") or role,
        "session": session,
        "time": _first(record, TIME_KEYS),
        "text": content,
        "metadata": {"role": role, **rest},
    }
    return make_turn(turn_record, where)


def _locomo(item: Mapping[str, Any], where: str) -> Conversation:
    """One LoCoMo conversation, flattened (``turns``) or as released (``conversation``)."""
    cid = str(item.get("sample_id", item.get("conversation", "")) if "turns" in item else item.get("sample_id", ""))
    records: list[tuple[dict[str, Any], str]] = []
    if "turns" in item:
        if not isinstance(item["turns"], list):
            raise ConversationError(f"{where}: \"turns\" must be a list")
        for j, t in enumerate(item["turns"]):
            if not isinstance(t, Mapping):
                raise ConversationError(f"{where}, turn {j}: expected an object")
            records.append(({"id": t.get("id"), "speaker": t.get("speaker"), "session": t.get("session"),
                             "time": t.get("date", t.get("time")), "text": t.get("text")}, f"{where}, turn {t.get('id', j)}"))
    else:
        conv = item["conversation"]
        for number, turns in _sessions(conv):
            date = conv.get(f"session_{number}_date_time")
            for j, t in enumerate(turns):
                if not isinstance(t, Mapping):
                    raise ConversationError(f"{where}, session_{number}[{j}]: expected an object")
                text = t.get("text")
                if isinstance(text, str) and t.get("blip_caption"):
                    text = f"{text} [shares a photo: {t['blip_caption']}]"
                extra = {k: t[k] for k in ("img_url", "query") if t.get(k)}
                records.append(({"id": t.get("dia_id"), "speaker": t.get("speaker"), "session": number,
                                 "time": date, "text": text, "metadata": extra},
                                f"{where}, session_{number}[{j}] ({t.get('dia_id', '?')})"))
    if not records:
        raise ConversationError(f"{where}: conversation has no turns")
    turns = validate_turns((make_turn(r, w), w) for r, w in records)
    return Conversation(cid, tuple(turns))


def _sessions(conv: Mapping[str, Any]) -> Iterator[tuple[int, list[Any]]]:
    numbers = sorted(int(k.split("_")[1]) for k, v in conv.items()
                     if k.startswith("session_") and k.count("_") == 1 and k.split("_")[1].isdigit() and isinstance(v, list))
    for n in numbers:
        yield n, conv[f"session_{n}"]


def _prefixed(convs: list[Conversation]) -> list[Conversation]:
    """Several conversations in one file whose turn ids collide: ids become ``<conversation>/<id>``."""
    all_ids = [t.id for c in convs for t in c.turns]
    if len(convs) <= 1 or len(set(all_ids)) == len(all_ids):
        return convs
    ids = [c.id for c in convs]
    if len(set(ids)) != len(ids) or not all(ids):
        ids = [c.id or str(i) for i, c in enumerate(convs)]
        if len(set(ids)) != len(ids):
            ids = [str(i) for i in range(len(convs))]
    out = []
    for cid, c in zip(ids, convs):
        turns = tuple(
            Turn(f"{cid}/{t.id}", t.speaker, t.text, t.session, t.time, {**t.metadata, "conversation": cid}) for t in c.turns
        )
        out.append(Conversation(cid, turns))
    return out
