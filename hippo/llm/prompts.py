"""The prompts: OpenIE (entities, then triples), the recognition filter, and the QA reader.

Written for hippo after HippoRAG 2's design (one-shot prompts, JSON replies); the wording
and the examples are hippo's own. Wire contract of the OpenIE prompts (other tools, such
as the replay server of the tests, rely on it):

* the passage text appears verbatim in the last user message of both steps;
* the entity step asks for ``{"named_entities": [...]}`` and never contains the word
  "triple";
* the triple step asks for ``{"triples": [[s, p, o], ...]}``.

:data:`PROMPT_VERSION` is recorded in the index; change it whenever a prompt changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from hippo.llm.base import Message
from hippo.types import Triple

PROMPT_VERSION = "hippo.prompts.v1"

# --------------------------------------------------------------------------- OpenIE: entities

NER_SYSTEM = (
    "You find the named entities in a paragraph: people, organisations, places, works, events, "
    "products, dates, numbers with their units, and other specific names. Copy each one exactly as it "
    "is written in the paragraph and list it once. Reply with one JSON object of the form "
    '{"named_entities": ["...", "..."]} and nothing else.'
)

_DEMO_PASSAGE = (
    "Lake Tanna Observatory\n"
    "Lake Tanna Observatory is an astronomical observatory in the Simien Mountains of Ethiopia. "
    "It was founded in 1987 by the astronomer Mekdes Alemu with funding from the University of Addis Ababa. "
    "Its main instrument, the 2.4-metre Harar Telescope, was built by Carl Zeiss Jena."
)
_DEMO_ENTITIES = [
    "Lake Tanna Observatory", "Simien Mountains", "Ethiopia", "1987", "Mekdes Alemu",
    "University of Addis Ababa", "2.4-metre", "Harar Telescope", "Carl Zeiss Jena",
]
_DEMO_TRIPLES = [
    ["Lake Tanna Observatory", "is", "astronomical observatory"],
    ["Lake Tanna Observatory", "located in", "Simien Mountains"],
    ["Simien Mountains", "located in", "Ethiopia"],
    ["Lake Tanna Observatory", "founded in", "1987"],
    ["Lake Tanna Observatory", "founded by", "Mekdes Alemu"],
    ["Mekdes Alemu", "is", "astronomer"],
    ["Lake Tanna Observatory", "funded by", "University of Addis Ababa"],
    ["Lake Tanna Observatory", "main instrument", "Harar Telescope"],
    ["Harar Telescope", "aperture", "2.4-metre"],
    ["Harar Telescope", "built by", "Carl Zeiss Jena"],
]


def _paragraph(passage: str) -> str:
    return f"Paragraph:\n```\n{passage}\n```"


def ner_messages(passage: str) -> tuple[Message, ...]:
    """Step 1 of OpenIE: the named entities of ``passage``."""
    return (
        {"role": "system", "content": NER_SYSTEM},
        {"role": "user", "content": _paragraph(_DEMO_PASSAGE)},
        {"role": "assistant", "content": json.dumps({"named_entities": _DEMO_ENTITIES}, ensure_ascii=False)},
        {"role": "user", "content": _paragraph(passage)},
    )


# --------------------------------------------------------------------------- OpenIE: triples

TRIPLE_SYSTEM = (
    "You turn a paragraph into a small knowledge graph of RDF-style triples [subject, predicate, object]. "
    "You are given the paragraph and its named entities. Every triple should contain at least one of the "
    "named entities, and preferably two. Write the subject and the object as they appear in the "
    "paragraph, and replace pronouns (he, she, it, they) by the names they stand for. Keep predicates "
    "short. Reply with one JSON object of the form "
    '{"triples": [["subject", "predicate", "object"], ...]} and nothing else.'
)


def _triple_user(passage: str, entities: Sequence[str]) -> str:
    names = json.dumps({"named_entities": list(entities)}, ensure_ascii=False)
    return f"{_paragraph(passage)}\n\nNamed entities: {names}"


def triple_messages(passage: str, entities: Sequence[str]) -> tuple[Message, ...]:
    """Step 2 of OpenIE: triples of ``passage`` conditioned on its named ``entities``."""
    return (
        {"role": "system", "content": TRIPLE_SYSTEM},
        {"role": "user", "content": _triple_user(_DEMO_PASSAGE, _DEMO_ENTITIES)},
        {"role": "assistant", "content": json.dumps({"triples": _DEMO_TRIPLES}, ensure_ascii=False)},
        {"role": "user", "content": _triple_user(passage, entities)},
    )


# --------------------------------------------------------------------------- recognition filter

FILTER_SYSTEM = (
    "You are the recognition memory of a retrieval system. You receive a question and candidate facts, "
    "each a [subject, predicate, object] list, that a search found for it. Keep only the facts that help "
    "answer the question, either directly or as a step of a multi-hop chain, at most 4 of them, most useful "
    "first. Copy the kept facts exactly as given; never change or invent a fact. If no fact helps, keep none. "
    'Reply with one JSON object {"fact": [[subject, predicate, object], ...]} and nothing else.'
)

_FILTER_DEMOS: list[tuple[str, list[list[str]], list[list[str]]]] = [
    (
        "Which university funded the observatory whose main instrument was built by Carl Zeiss Jena?",
        [
            ["harar telescope", "built by", "carl zeiss jena"],
            ["lake tanna observatory", "main instrument", "harar telescope"],
            ["carl zeiss jena", "located in", "jena"],
            ["lake tanna observatory", "funded by", "university of addis ababa"],
            ["simien mountains", "located in", "ethiopia"],
        ],
        [
            ["harar telescope", "built by", "carl zeiss jena"],
            ["lake tanna observatory", "main instrument", "harar telescope"],
            ["lake tanna observatory", "funded by", "university of addis ababa"],
        ],
    ),
    (
        "What is the national anthem of the country where the Blue Nile starts?",
        [
            ["nile", "longest river in", "africa"],
            ["white nile", "rises in", "great lakes region"],
            ["cairo", "located on", "nile"],
        ],
        [],
    ),
]


def _filter_user(question: str, facts: Sequence[Triple | Sequence[str]]) -> str:
    candidates = json.dumps({"fact": [list(f) for f in facts]}, ensure_ascii=False)
    return f"Question: {question}\n\nCandidate facts: {candidates}"


def filter_messages(question: str, facts: Sequence[Triple]) -> tuple[Message, ...]:
    """Recognition memory: which candidate ``facts`` help answer ``question``."""
    messages: list[Message] = [{"role": "system", "content": FILTER_SYSTEM}]
    for q, cands, kept in _FILTER_DEMOS:
        messages.append({"role": "user", "content": _filter_user(q, cands)})
        messages.append({"role": "assistant", "content": json.dumps({"fact": kept}, ensure_ascii=False)})
    messages.append({"role": "user", "content": _filter_user(question, facts)})
    return tuple(messages)


# --------------------------------------------------------------------------- QA reader

QA_SYSTEM = (
    "You answer questions by reading the passages given with them. Think it through step by step "
    "after \"Thought: \", using only what the passages say, following the chain of facts a multi-hop "
    "question needs. Then finish with a line \"Answer: \" followed by the shortest answer: a name, a "
    "date, a number or a short phrase, with no explanation."
)

_QA_DEMO_PASSAGES = [
    _DEMO_PASSAGE,
    "Mekdes Alemu\nMekdes Alemu (born 1949 in Gondar) is an Ethiopian astronomer. She studied at the "
    "University of Bologna and directed Lake Tanna Observatory until 2011.",
]
_QA_DEMO_QUESTION = "In which city was the founder of Lake Tanna Observatory born?"
_QA_DEMO_ANSWER = (
    "Lake Tanna Observatory was founded by Mekdes Alemu. Mekdes Alemu was born in 1949 in Gondar. "
    "So the founder was born in Gondar.\nAnswer: Gondar"
)


def qa_user(question: str, passages: Sequence[str]) -> str:
    """The reader's user turn: each passage (``title\\ntext``) as ``Wikipedia Title: <passage>``
    plus a blank line, then the question (HippoRAG 2's layout)."""
    blocks = "".join(f"Wikipedia Title: {content}\n\n" for content in passages)
    return f"{blocks}Question: {question}\nThought: "


def qa_messages(question: str, passages: Sequence[str]) -> tuple[Message, ...]:
    """The QA reader's prompt over ``passages`` (their full content, title line first)."""
    return (
        {"role": "system", "content": QA_SYSTEM},
        {"role": "user", "content": qa_user(_QA_DEMO_QUESTION, _QA_DEMO_PASSAGES)},
        {"role": "assistant", "content": _QA_DEMO_ANSWER},
        {"role": "user", "content": qa_user(question, passages)},
    )


def answer_of(reply: str) -> str:
    """The text after the first ``Answer:``, or the whole reply when there is none (as HippoRAG 2)."""
    head, sep, tail = reply.partition("Answer:")
    text = tail if sep else head
    return text.strip().splitlines()[0].strip() if text.strip() else ""


def prompts_hash() -> str:
    """Digest of every prompt text and example: recorded with an LLM index."""
    blob = json.dumps(
        [PROMPT_VERSION, ner_messages("{passage}"), triple_messages("{passage}", ["{entity}"]),
         filter_messages("{question}", []), qa_messages("{question}", [])],
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
