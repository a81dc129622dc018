"""Tokens, calls and cost of LLM OpenIE over a corpus, before spending anything.

Input tokens are counted on the exact prompts hippo would send (both steps, one-shot
examples included, plus 3 tokens per message and 3 to prime the reply, OpenAI's chat
format). The triple prompt also carries the entity reply, and replies are unknown before
they exist, so output tokens are *expected*: ``NER_OUTPUT_RATIO`` and
``TRIPLE_OUTPUT_RATIO`` tokens per passage token, measured on the recorded gpt-3.5-turbo
extractions of the 1,890 MuSiQue passages (o200k_base counts: 0.50 and 1.45). Other models
are more or less verbose; the figures are estimates, not quotes.

Token counter, in order of preference (:func:`make_counter`):

* ``tiktoken:<encoding>`` or ``auto`` with tiktoken installed and the model's encoding
  loadable (tiktoken downloads encodings on first use and caches them);
* a Hugging Face ``tokenizer.json`` path (the served model's own tokenizer, via ``tokenizers``);
* ``approx``: ``(characters / 4 + words-and-punctuation) / 2``. Against o200k_base on the
  MuSiQue prompts it is within 0.5% in total; per passage the median error is ~6%.

Requests already in the response cache are found and left out of the cost.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hippo.errors import ConfigError
from hippo.extract.llm_ie import NER_STAGE, TRIPLE_STAGE, _entities
from hippo.llm.base import ChatRequest, Message, ParseError
from hippo.llm.prompts import ner_messages, triple_messages
from hippo.types import Passage

NER_OUTPUT_RATIO = 0.50
TRIPLE_OUTPUT_RATIO = 1.45
PER_MESSAGE = 3
PER_REPLY = 3
_WORDS = re.compile(r"\w+|[^\w\s]")

Counter = Callable[[str], int]


def approx_tokens(text: str) -> int:
    """The documented approximation: mean of characters/4 and word-and-punctuation count."""
    return round((len(text) / 4 + len(_WORDS.findall(text))) / 2)


def make_counter(spec: str, model: str) -> tuple[Counter, str]:
    """(count function, description) for ``spec``: ``auto``, ``approx``, ``tiktoken:<enc>`` or a tokenizer.json path."""
    if spec == "approx":
        return approx_tokens, "approximation (chars/4 + words)/2"
    if spec.startswith("tiktoken:") or spec == "auto":
        try:
            import tiktoken

            enc = tiktoken.get_encoding(spec.split(":", 1)[1]) if spec != "auto" else tiktoken.encoding_for_model(model)
        except Exception as exc:  # not installed, unknown model, or the encoding cannot be fetched offline
            if spec != "auto":
                raise ConfigError(f"cannot load tokenizer {spec!r} ({type(exc).__name__}: {exc}); use --tokenizer approx") from None
            return approx_tokens, "approximation (chars/4 + words)/2; tiktoken not available for this model"
        return (lambda t: len(enc.encode(t, disallowed_special=()))), f"tiktoken {enc.name}"
    path = Path(spec)
    if path.is_file():
        try:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(path))
        except Exception as exc:
            raise ConfigError(f"cannot load the tokenizer file {path}: {exc}") from None
        return (lambda t: len(tok.encode(t, add_special_tokens=False).ids)), f"tokenizers {path.name}"
    raise ConfigError(f"unknown --tokenizer {spec!r}; valid: auto, approx, tiktoken:<encoding>, or a tokenizer.json path")


def prompt_tokens(messages: Sequence[Message], count: Counter) -> int:
    """Tokens of a chat prompt in OpenAI's format."""
    return sum(count(m["content"]) + PER_MESSAGE for m in messages) + PER_REPLY


@dataclass(frozen=True)
class Estimate:
    """Expected cost of LLM OpenIE over a corpus."""

    passages: int
    cached_passages: int
    calls: int
    input_tokens: dict[str, int]
    output_tokens: dict[str, int]
    tokenizer: str
    price_in: float | None
    price_out: float | None

    @property
    def cost(self) -> float | None:
        """USD (or the unit of the prices) for the calls not cached; None without prices."""
        if self.price_in is None or self.price_out is None:
            return None
        return (sum(self.input_tokens.values()) * self.price_in + sum(self.output_tokens.values()) * self.price_out) / 1e6

    def to_dict(self) -> dict[str, Any]:
        """JSON shape of ``hippo estimate --json``."""
        return {
            "passages": self.passages, "cached_passages": self.cached_passages, "calls": self.calls,
            "input_tokens": {**self.input_tokens, "total": sum(self.input_tokens.values())},
            "output_tokens_expected": {**self.output_tokens, "total": sum(self.output_tokens.values())},
            "tokenizer": self.tokenizer,
            "price_per_million": {"input": self.price_in, "output": self.price_out},
            "cost": None if self.cost is None else round(self.cost, 4),
        }


def estimate_openie(
    passages: Sequence[Passage],
    model: str,
    count: Counter,
    tokenizer: str,
    *,
    price_in: float | None = None,
    price_out: float | None = None,
    cache: Any = None,
    params: dict[str, Any] | None = None,
) -> Estimate:
    """Tokens and calls of two-step OpenIE for ``passages``; requests found in ``cache``
    (a :class:`~hippo.llm.cache.ResponseCache`, keyed as the client of ``model`` and
    ``params`` keys them) cost nothing."""
    from hippo.llm.cache import request_key

    params = params or {}
    tin = {"entities": 0, "triples": 0}
    tout = {"entities": 0, "triples": 0}
    calls = cached_passages = 0
    for p in passages:
        ner = ner_messages(p.content)
        entities: tuple[str, ...] | None = None
        ner_cached = False
        if cache is not None:
            hit = cache.get(request_key(model, ChatRequest(ner, NER_STAGE), params))
            if hit is not None:
                try:
                    entities = _entities(hit)[0]
                    ner_cached = True
                except ParseError:
                    entities = None
        body = count(p.content)
        ner_out = round(NER_OUTPUT_RATIO * body)
        if not ner_cached:
            calls += 1
            tin["entities"] += prompt_tokens(ner, count)
            tout["entities"] += ner_out
        if entities is not None:
            tri = triple_messages(p.content, entities)
            if cache is not None and cache.get(request_key(model, ChatRequest(tri, TRIPLE_STAGE), params)) is not None:
                cached_passages += ner_cached
                continue
            tin["triples"] += prompt_tokens(tri, count)
        else:
            tin["triples"] += prompt_tokens(triple_messages(p.content, []), count) + ner_out
        calls += 1
        tout["triples"] += round(TRIPLE_OUTPUT_RATIO * body)
    return Estimate(len(passages), cached_passages, calls, tin, tout, tokenizer, price_in, price_out)
