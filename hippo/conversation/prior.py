"""The query-time prior of a conversation index: a weight per passage from the question and
the passages' metadata (pure). The engine applies it with :func:`hippo.retrieval.prior.reweight` when
``retrieval.time_boost`` or ``retrieval.speaker_boost`` is not 1 (``docs/conversations.md``).

* **time**: turns dated in the window the question names (``"on May 3, 2023"``, ``"in June
  2023"``, ``"last June"``; :mod:`hippo.conversation.time`) weigh ``time_boost``;
* **speaker**: when the question names exactly one of the conversation's speakers, that
  speaker's turns weigh ``speaker_boost``.

Multiply each passage's final score by its weight (a dense cosine first becomes
``exp(dense_fusion * (cos - 1))``, as hippo fuses them) and re-sort the candidates.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from hippo.conversation.time import F64, DateSpan, conversation_now, question_dates, time_prior


def named_speaker(question: str, speakers: Sequence[str]) -> str:
    """The one speaker of ``speakers`` the question names as a word ("" for none or several)."""
    named = [s for s in sorted(set(speakers)) if s and re.search(rf"\b{re.escape(s)}\b", question)]
    return named[0] if len(named) == 1 else ""


def speaker_prior(question: str, speakers: Sequence[str], boost: float) -> F64:
    """Weight per passage: ``boost`` for the turns of the one speaker the question names, else 1."""
    weights = np.ones(len(speakers))
    who = named_speaker(question, speakers)
    if who and boost != 1.0:
        weights[np.array([s == who for s in speakers], dtype=bool)] = boost
    return weights


@dataclass(frozen=True)
class TurnPrior:
    """A question's prior over the passages: the weights (None: all ones, rank as usual) and
    what they came from, for ``--explain``."""

    weights: F64 | None
    spans: tuple[DateSpan, ...]
    speaker: str
    boosted: int

    def explain(self) -> str:
        """E.g. ``time "May 3, 2023" -> 2023-05-03..2023-05-04; speaker Maria; 41 turns weighted``."""
        parts = [f'time "{s.text}" -> {s.relation} {s.start.date()}..{s.end.date()}' for s in self.spans]
        if self.speaker:
            parts.append(f"speaker {self.speaker}")
        return "; ".join(parts) + (f"; {self.boosted} turns weighted" if parts else "")


def turn_prior(
    question: str,
    speakers: Sequence[str],
    times: Sequence[str],
    time_boost: float = 2.0,
    speaker_boost: float = 1.0,
    now: datetime | None = None,
    slack_days: int = 14,
) -> TurnPrior:
    """The prior of ``question`` over passages with these ``speakers`` and ISO ``times`` (one
    per passage, ``""`` where unknown); ``now`` defaults to the latest time."""
    spans = question_dates(question, now if now is not None else conversation_now(times)) if time_boost != 1.0 else []
    weights = time_prior(spans, times, time_boost, slack_days) * speaker_prior(question, speakers, speaker_boost)
    who = named_speaker(question, speakers) if speaker_boost != 1.0 else ""
    boosted = int((weights != 1.0).sum())
    return TurnPrior(weights if boosted else None, tuple(spans), who, boosted)


def prior_on(time_boost: float, speaker_boost: float) -> bool:
    """Whether either prior changes anything (a boost of 1 is off)."""
    return time_boost != 1.0 or speaker_boost != 1.0


def turn_priors(questions: Sequence[str], speakers: Sequence[str], times: Sequence[str],
                time_boost: float, speaker_boost: float) -> list[TurnPrior]:
    """:func:`turn_prior` of each question over the same passages ("now" is their latest time)."""
    now = conversation_now(times)
    return [turn_prior(q, speakers, times, time_boost, speaker_boost, now=now) for q in questions]
