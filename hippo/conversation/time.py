"""Time in conversations: turn timestamps normalised to ISO 8601, date expressions in a
question, and the per-passage time prior they give (pure functions, no IO).

* :func:`normalize_time` reads a turn's time: ISO 8601 (exact, by the standard library), a
  Unix timestamp, or a human date such as LoCoMo's ``"1:56 pm on 8 May, 2023"`` (parsed by
  `dateparser <https://pypi.org/project/dateparser/>`_, BSD-3-Clause; the ``conversation``
  extra). It returns ``YYYY-MM-DDTHH:MM:SS`` (with the offset when one was given).
* :func:`question_dates` finds the dates a question names (``"on May 3, 2023"``,
  ``"in June 2023"``, ``"in 2022"``, ``"last June"``, ``"the week before August 3, 2023"``)
  as :class:`DateSpan` ranges; a small grammar finds the spans and their granularity,
  dateparser reads the span (relative ones against ``now``).
* :func:`time_prior` turns them into a weight per passage from the passages' ``time``
  metadata: passages whose session time falls in the window a question names (or a little
  after it, when a later session talks about it) get ``boost``; the rest 1. A question that
  names no date gives every passage 1. :mod:`hippo.conversation.prior` combines it with the
  speaker prior.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import numpy.typing as npt

MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
          "october", "november", "december")
_MONTH = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
_YEAR = r"(?:19|20)\d\d"
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_SEASONS = {"spring": (3, 5), "summer": (6, 8), "fall": (9, 11), "autumn": (9, 11), "winter": (12, 2)}
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # 3 June, 2023 / June 3, 2023 / June 3rd 2023
    ("day", re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}\.?,?\s+{_YEAR}\b", re.I)),
    ("day", re.compile(rf"\b{_MONTH}\.?\s+{_DAY},?\s+{_YEAR}\b", re.I)),
    ("day", re.compile(r"\b(?:19|20)\d\d-\d\d-\d\d\b")),
    # June 2023 / summer 2021
    ("month", re.compile(rf"\b{_MONTH}\.?,?\s+{_YEAR}\b", re.I)),
    ("season", re.compile(rf"\b(?:spring|summer|fall|autumn|winter)\s+(?:of\s+)?{_YEAR}\b", re.I)),
    # in 2023 (a bare year after a preposition: "2023" alone may be a number)
    ("year", re.compile(rf"\b(?:in|during|since|of|by|before|after|early|late|mid)\s+{_YEAR}\b", re.I)),
    # last June / in May (a bare month after "in"/"last"/"this": "may" alone is a verb)
    ("month", re.compile(rf"\b(?:in|last|this|during|early|late|mid|since)\s+{_MONTH}\b", re.I)),
)
_BEFORE = re.compile(r"\b(?:before|prior to|until|leading up to)\s*$", re.I)
_AFTER = re.compile(r"\b(?:after|since|following)\s*$", re.I)
_ISO_LIKE = re.compile(r"^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?)?(Z|[+-]\d\d:?\d\d)?$")
F64 = npt.NDArray[np.float64]


def _dateparser() -> Any:
    try:
        import dateparser
    except ImportError:  # pragma: no cover - dev installs have it
        raise ValueError(
            "reading human dates needs dateparser: pip install 'hippo[conversation]' (or give ISO 8601 times)"
        ) from None
    return dateparser


@functools.lru_cache(maxsize=4096)
def _parse_human(text: str) -> datetime | None:
    when: datetime | None = _dateparser().parse(
        text, languages=["en"], settings={"STRICT_PARSING": True, "REQUIRE_PARTS": ["day", "month", "year"]}
    )
    if when is None:  # "1:56 pm on 8 May, 2023": the "on" defeats strict parsing
        when = _dateparser().parse(
            re.sub(r"\s+on\s+", " ", text), languages=["en"],
            settings={"STRICT_PARSING": True, "REQUIRE_PARTS": ["day", "month", "year"]},
        )
    return when


def normalize_time(raw: Any) -> str:
    """ISO 8601 text of a turn time; ``""`` for none. Raises ``ValueError`` naming the value
    when it is not a time (an ISO 8601 string, a Unix timestamp, or a full human date)."""
    if raw is None or raw == "":
        return ""
    if isinstance(raw, bool):
        raise ValueError(f"unparseable time {raw!r}; give ISO 8601 such as 2023-05-08T13:56")
    if isinstance(raw, (int, float)):
        if not 0 <= raw < 1e11:
            raise ValueError(f"unparseable time {raw!r}: not a Unix timestamp in seconds; give ISO 8601")
        return datetime.fromtimestamp(raw, timezone.utc).replace(microsecond=0).isoformat()
    if not isinstance(raw, str):
        raise ValueError(f"unparseable time {raw!r}; give ISO 8601 such as 2023-05-08T13:56")
    text = " ".join(raw.split())
    if _ISO_LIKE.match(text):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(microsecond=0).isoformat()
        except ValueError:
            raise ValueError(f"unparseable time {raw!r}: not a valid ISO 8601 date") from None
    when = _parse_human(text) if re.search(r"\b\d{4}\b", text) else None  # "yesterday" is no turn time
    if when is None:
        raise ValueError(
            f"unparseable time {raw!r}; give ISO 8601 such as 2023-05-08T13:56 or a full date such as '8 May 2023'"
        )
    return when.replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class DateSpan:
    """A date range a question names: ``[start, end)`` as naive datetimes, the text it came
    from, and its ``relation``: ``in`` (the event is in the range), ``before`` or ``after`` it."""

    start: datetime
    end: datetime
    text: str
    relation: str = "in"


def _month_number(word: str) -> int:
    w = word.lower().rstrip(".")[:3]
    return next(i for i, m in enumerate(MONTHS, 1) if m.startswith(w))


def _span_of(kind: str, text: str, now: datetime | None) -> tuple[datetime, datetime] | None:
    """``[start, end)`` of one matched expression."""
    words = re.findall(r"[A-Za-z]+|\d+", text)
    years = [int(w) for w in words if re.fullmatch(_YEAR, w)]
    if kind == "day":
        settings: dict[str, Any] = {"STRICT_PARSING": True, "PREFER_DAY_OF_MONTH": "first"}
        when = _dateparser().parse(re.sub(r"\bof\b", " ", text), languages=["en"], settings=settings)
        if when is None:
            return None
        start = datetime(when.year, when.month, when.day)
        return start, start + timedelta(days=1)
    if kind == "season":
        first, last = _SEASONS[next(w.lower() for w in words if w.lower() in _SEASONS)]
        year = years[0]
        start = datetime(year, first, 1)
        end_year = year + 1 if last < first else year
        return start, _month_after(end_year, last)
    if kind == "year":
        return datetime(years[0], 1, 1), datetime(years[0] + 1, 1, 1)
    month_word = next((w for w in words if re.fullmatch(_MONTH, w, re.I)), None)
    if month_word is None:
        return None
    month = _month_number(month_word)
    if years:
        year = years[0]
    elif now is not None:  # "last June" / "in May": the latest such month not after now
        year = now.year if month <= now.month else now.year - 1
        if words[0].lower() == "last" and month == now.month:
            year -= 1
    else:
        return None
    return datetime(year, month, 1), _month_after(year, month)


def _month_after(year: int, month: int) -> datetime:
    return datetime(year + month // 12, month % 12 + 1, 1)


def question_dates(question: str, now: datetime | None = None) -> list[DateSpan]:
    """The date ranges ``question`` names, in order of appearance, each at its granularity
    (day, month, season, year). ``now`` (the time of the conversation's last turn) resolves
    month names without a year; without it they are ignored. ``before``/``after`` just
    before an expression set its ``relation``; "the week before X" widens ``[X-7d, X)``."""
    found: list[tuple[int, int, str]] = []
    for kind, pat in _PATTERNS:
        for m in pat.finditer(question):
            if any(s < m.end() and m.start() < e for s, e, _ in found):
                continue  # inside a longer expression found first
            found.append((m.start(), m.end(), kind))
    out = []
    for s, e, kind in sorted(found):
        text = question[s:e]
        bounds = _span_of(kind, text, None if now is None else now.replace(tzinfo=None))
        if bounds is None:
            continue
        start, end = bounds
        lead = question[max(0, s - 40) : s]
        relation = "in"
        if re.search(r"\b(?:the\s+)?(week|weekend|day|days|weeks)\s+before\s*$", lead, re.I):
            start = start - timedelta(days=8)
        elif _BEFORE.search(lead):
            relation = "before"
        elif _AFTER.search(lead):
            relation = "after"
        out.append(DateSpan(start, end, text, relation))
    return out


def _naive(iso: str) -> datetime | None:
    if not iso:
        return None
    return datetime.fromisoformat(iso).replace(tzinfo=None)


def time_prior(
    spans: Sequence[DateSpan], times: Sequence[str], boost: float = 2.0, slack_days: int = 14
) -> F64:
    """Weight per passage (shape ``(len(times),)``) from the question's date spans and the
    passages' ISO times: ``boost`` for a passage dated inside a span ``[start, end +
    slack_days)`` (a session soon after an event still talks about it; ``before``: any time
    before ``end``, ``after``: from ``start`` on), 1 for the rest and for undated passages.
    All ones when no span is given or no passage falls in a span (the prior then says nothing)."""
    weights = np.ones(len(times))
    if not spans:
        return weights
    hit = np.zeros(len(times), dtype=bool)
    when = [_naive(t) for t in times]
    for span in spans:
        lo, hi = span.start, span.end + timedelta(days=slack_days)
        if span.relation == "before":
            lo = datetime.min
        elif span.relation == "after":
            hi = datetime.max
        hit |= np.array([w is not None and lo <= w < hi for w in when], dtype=bool)
    if hit.any():
        weights[hit] = boost
    return weights


def conversation_now(times: Sequence[str]) -> datetime | None:
    """The latest time among ``times`` (the moment a question about them is asked), or None."""
    parsed = [w for w in (_naive(t) for t in times) if w is not None]
    return max(parsed) if parsed else None


def passage_times(metadata: Mapping[str, Mapping[str, Any]], ids: Sequence[str]) -> list[str]:
    """The ``time`` metadata of the passages ``ids`` (``""`` where there is none)."""
    return [str(metadata.get(i, {}).get("time", "")) for i in ids]
