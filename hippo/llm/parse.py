"""Defensive parsing of the JSON objects the prompts ask for. No ``eval``, ever.

Replies come from many models and servers, so the parser accepts: a code fence around the
JSON, text before or after it, Python-style literals (single quotes, parsed with
``ast.literal_eval``, which only reads literals), a bare list instead of the object, and a
reply cut off by the length limit (``finish_reason == "length"``), whose complete items are
kept and whose unfinished tail is dropped (:func:`close_truncated`).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from typing import Any

from hippo.extract.precomputed import _triples as _precomputed_triples
from hippo.llm.base import ParseError
from hippo.types import Triple

_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)```", re.S)


def _decode(text: str) -> Any:
    """json, then Python literals; ParseError when neither reads it."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        raise ParseError("not JSON") from None


def _candidates(text: str) -> Iterator[tuple[int, Any]]:
    """(start, value) of every JSON (or literal) value that starts at a ``{`` or ``[`` of ``text``, in order."""
    decoder = json.JSONDecoder()
    for m in re.finditer(r"[\[{]", text):
        start = m.start()
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            closer = "}" if text[start] == "{" else "]"
            end = text.rfind(closer)
            if end <= start:
                continue
            try:
                value = ast.literal_eval(text[start : end + 1])
            except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
                continue
        yield start, value


def close_truncated(text: str) -> Any:
    """Parse JSON cut off mid-way: cut back to the last complete item and close the brackets.

    ``{"triples": [["a", "b", "c"], ["d", "e`` becomes ``{"triples": [["a", "b", "c"]]}``.
    Raises ParseError when no prefix can be completed.
    """
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        raise ParseError("no JSON in a truncated reply")
    body = text[start:]
    stack: list[str] = []
    cuts: list[tuple[int, str]] = []  # (end of a complete prefix, the brackets it leaves open)
    in_str = esc = False
    for i, ch in enumerate(body):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "[{":
            stack.append("]" if ch == "[" else "}")
        elif ch in "]}":
            if not stack:
                break
            stack.pop()
            cuts.append((i + 1, "".join(reversed(stack))))
        elif ch == ",":
            cuts.append((i, "".join(reversed(stack))))
    for end, closers in reversed(cuts[-200:]):
        try:
            return json.loads(body[:end] + closers)
        except ValueError:
            continue
    raise ParseError("a truncated reply with no complete item")


def parse_object(content: str, key: str, truncated: bool = False) -> Any:
    """The value of ``key`` in the first JSON object of ``content`` that has it.

    A reply that is a bare JSON list is taken as the value. ``truncated`` (the reply hit the length limit)
    lets :func:`close_truncated` rescue the complete part.
    """
    if not content or not content.strip():
        raise ParseError("empty reply")
    texts = [m.group(1) for m in _FENCE.finditer(content)] + [content]
    bare: Any = None
    for text in texts:
        for start, value in _candidates(text):
            if isinstance(value, dict) and key in value:
                return value[key]
            if bare is None and isinstance(value, list) and not text[:start].strip():
                bare = value  # the whole reply is a list: take it as the value
    if truncated:
        value = close_truncated(content)
        if isinstance(value, dict):
            if key in value:
                return value[key]
            raise ParseError(f"truncated reply without {key!r}")
        return value
    if bare is not None:
        return bare
    raise ParseError(f"no JSON object with {key!r} in the reply")


def parse_entities(content: str, truncated: bool = False) -> tuple[str, ...]:
    """``{"named_entities": [...]}`` -> distinct entity strings in order (scalars cast to str)."""
    value = parse_object(content, "named_entities", truncated)
    if not isinstance(value, list):
        raise ParseError("named_entities is not a list")
    out = [str(x).strip() for x in value if isinstance(x, (str, int, float)) and not isinstance(x, bool)]
    return tuple(dict.fromkeys(x for x in out if x))


def valid_triples(raw: Any) -> tuple[tuple[Triple, ...], int]:
    """HippoRAG 2's ``filter_invalid_triples``: keep 3-item lists of scalars, cast to str,
    drop exact duplicates, keep order. Returns (triples, number of invalid items).

    The very function the precomputed importer applies to recorded files, so an LLM reply
    and the same triples read from a HippoRAG OpenIE file give the same extraction.
    """
    return _precomputed_triples(raw)


def parse_triples(content: str, truncated: bool = False) -> tuple[tuple[Triple, ...], int]:
    """``{"triples": [[s, p, o], ...]}`` -> (valid triples, invalid count); see :func:`valid_triples`."""
    value = parse_object(content, "triples", truncated)
    if not isinstance(value, list):
        raise ParseError("triples is not a list")
    return valid_triples(value)


def parse_facts(content: str) -> list[Triple]:
    """``{"fact": [[s, p, o], ...]}`` (the filter's reply) -> the 3-item facts, in order."""
    value = parse_object(content, "fact")
    if not isinstance(value, list):
        raise ParseError("fact is not a list")
    return list(valid_triples(value)[0])
