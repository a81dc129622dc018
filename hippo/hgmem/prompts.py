"""Prompts of the LLM reasoner of HGMem: evolve the memory, merge points, judge sufficiency
(with concerns and subqueries), answer from the memory.

Written for hippo after the roles of HGMem's prompts (arXiv 2512.23959); the wording is
hippo's own and every reply is one JSON object (parsed strictly by
:mod:`hippo.hgmem.llm_reasoner`). Points are addressed by their number in the memory,
entities by the names the prompt shows, facts by their number in the evidence list.

:data:`HGMEM_PROMPT_VERSION` names the wording; change it whenever a prompt changes (replies
are cached by prompt text, so an old cache entry never answers a new prompt anyway).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from hippo.llm.base import Message

HGMEM_PROMPT_VERSION = "hippo.hgmem.prompts.v1"

PointView = tuple[Sequence[str], str]
"""A memory point as the prompts show it: entity names and description."""

EVOLVE_SYSTEM = (
    "You keep the working memory of a search that answers a question in several steps. The memory is a "
    "numbered list of memory points. A point ties a set of entities together with a short description of "
    "what the evidence says about them as a group.\n\n"
    "You receive the question, what this step searched for, the current memory, and new evidence: numbered "
    "facts written as subject | relation | object, and the passages they come from. Record what in the "
    "evidence helps answer the question:\n"
    "- \"update\" a point when the evidence adds to it or corrects it: give its number, its complete entity "
    "list and a rewritten description;\n"
    "- \"insert\" a point for information the memory lacks, usually a relation between two or more entities.\n"
    "Name entities exactly as the facts or the memory write them. An entity that appears in no fact or point "
    "(only in a passage) goes under \"new_entities\". Cite the numbers of the facts each point rests on. "
    "Keep descriptions short and factual; leave out what does not bear on the question. When nothing is "
    "worth keeping, reply with an empty list.\n\n"
    "Reply with one JSON object and nothing else:\n"
    '{"operations": [{"op": "update", "point": 0, "entities": ["..."], "new_entities": [], '
    '"description": "...", "facts": [1]}, {"op": "insert", "entities": ["...", "..."], '
    '"new_entities": [], "description": "...", "facts": [2, 3]}]}'
)

MERGE_SYSTEM = (
    "You tidy the working memory of a search that answers a question in several steps. The memory is a "
    "numbered list of points; each ties a set of entities to a description. Merge points that are parts of "
    "one larger piece of information the question needs, such as two links of the same chain, into one "
    "point whose description states the combined information. A group lists two or more point numbers and "
    "a point belongs to at most one group. Leave unrelated points alone; merging nothing is a fine answer.\n\n"
    "Reply with one JSON object and nothing else:\n"
    '{"merge": [{"points": [0, 2], "description": "..."}]}  or  {"merge": []}'
)

PLAN_SYSTEM = (
    "You judge whether the working memory of a multi-step search holds enough to answer a question. "
    'If it does, reply {{"sufficient": true, "concerns": []}}.\n\n'
    "If it does not, state at most {max_concerns} concerns: what is still missing or doubtful. For each "
    "concern give the numbers of the memory points it is about (an empty list when it is about something "
    "the memory does not touch yet), one short search query that would find what is missing (not a repeat "
    "of an earlier query), and the entities the next search should start from, taken from the memory or "
    "from the neighbouring entities listed (an empty list when none fits).\n\n"
    "Reply with one JSON object and nothing else:\n"
    '{{"sufficient": false, "concerns": [{{"concern": "...", "points": [0], "subquery": "...", '
    '"entities": ["..."]}}]}}'
)

ANSWER_SYSTEM = (
    "You answer a question from the working memory that a multi-step search built for it, and from the "
    "passages its points came from. Think it through after \"Thought: \", following the chain of facts the "
    "question needs and using only what the memory and the passages say. Then finish with a line "
    "\"Answer: \" followed by the shortest answer: a name, a date, a number or a short phrase."
)


def render_memory(points: Sequence[PointView]) -> str:
    """``#i ["entity", ...] description`` per point, or a note that the memory is empty."""
    if not points:
        return "(the memory is empty)"
    return "\n".join(
        f"#{i} {json.dumps(list(names), ensure_ascii=False)} {desc}" for i, (names, desc) in enumerate(points)
    )


def _queries(queries: Sequence[str]) -> str:
    return "\n".join(f"- {q}" for q in queries) or "- (none)"


def evolve_messages(
    question: str,
    queries: Sequence[str],
    memory: Sequence[PointView],
    facts: Sequence[tuple[str, str, str]],
    passages: Sequence[str],
) -> tuple[Message, ...]:
    """Evolve: which memory points to update or insert given this step's evidence.
    ``facts`` are numbered from 1 in the prompt; ``passages`` are ``title\\ntext``."""
    fact_lines = "\n".join(f"[{n}] {s} | {r} | {o}" for n, (s, r, o) in enumerate(facts, 1)) or "(no facts)"
    passage_blocks = "\n\n".join(passages) or "(no passages)"
    user = (
        f"Question: {question}\n\nThis step searched for:\n{_queries(queries)}\n\n"
        f"Memory:\n{render_memory(memory)}\n\nFacts:\n{fact_lines}\n\nPassages:\n{passage_blocks}"
    )
    return ({"role": "system", "content": EVOLVE_SYSTEM}, {"role": "user", "content": user})


def merge_messages(question: str, memory: Sequence[PointView]) -> tuple[Message, ...]:
    """Merge: which groups of points become one point."""
    user = f"Question: {question}\n\nMemory:\n{render_memory(memory)}"
    return ({"role": "system", "content": MERGE_SYSTEM}, {"role": "user", "content": user})


def plan_messages(
    question: str,
    memory: Sequence[PointView],
    neighbours: Sequence[str],
    previous_queries: Sequence[str],
    max_concerns: int = 3,
) -> tuple[Message, ...]:
    """Judge sufficiency; when not sufficient, concerns with subqueries and entities to start from."""
    user = (
        f"Question: {question}\n\nMemory:\n{render_memory(memory)}\n\n"
        f"Neighbouring entities not in the memory yet: {json.dumps(list(neighbours), ensure_ascii=False)}\n\n"
        f"Earlier queries:\n{_queries(previous_queries)}"
    )
    return (
        {"role": "system", "content": PLAN_SYSTEM.format(max_concerns=max_concerns)},
        {"role": "user", "content": user},
    )


def answer_messages(question: str, memory: Sequence[PointView], passages: Sequence[str]) -> tuple[Message, ...]:
    """Answer from the memory and the passages (``title\\ntext``) its points came from."""
    blocks = "".join(f"Wikipedia Title: {p}\n\n" for p in passages)
    user = f"Memory:\n{render_memory(memory)}\n\n{blocks}Question: {question}\nThought: "
    return ({"role": "system", "content": ANSWER_SYSTEM}, {"role": "user", "content": user})
