"""The LLM reasoner of HGMem: an LLM decides what the memory keeps, what to merge, whether the
memory suffices (with concerns), which subqueries and entities the next step follows, and
answers from the memory.

Replies are parsed strictly (:func:`parse_evolve`, :func:`parse_merge`, :func:`parse_plan`):
one JSON object (a code fence or text around it is tolerated); a point is addressed by its
number in the memory, an entity by a name the prompt showed (compared after
:func:`hippo.ids.normalize`), a fact by its number in the evidence. Anything else (garbage,
a reply cut at the length limit, a point number out of range, an entity or fact the prompt
did not show, overlapping merge groups) raises :class:`~hippo.llm.base.ParseError` naming the
bad value. The client then asks once more (``parse_retries``), as for every LLM stage.

**When a reply stays unusable**, that step falls back to the :class:`OfflineReasoner`'s
decision: its evolve (or plan) runs instead, and the trace says so (an operation
``fallback to offline: <reason>``, or a plan reason starting with it). A merge reply that stays
unusable merges nothing (trace: ``merge skipped: <reason>``). An unreachable server is not a
step failure: :class:`~hippo.llm.base.LLMUnavailableError` stops the run with one error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hippo.hgmem.loop import Evidence, GraphView, OfflineReasoner, Plan
from hippo.hgmem.memory import HGMemError, HypergraphMemory
from hippo.hgmem.prompts import PointView, answer_messages, evolve_messages, merge_messages, plan_messages
from hippo.ids import normalize
from hippo.llm.base import ChatReply, ChatRequest, Outcome, ParseError
from hippo.llm.parse import parse_object
from hippo.llm.prompts import answer_of
from hippo.protocols import LLMClient
from hippo.retrieval.query_entities import name_index

EVOLVE_STAGE = "hgmem.evolve"
MERGE_STAGE = "hgmem.merge"
PLAN_STAGE = "hgmem.plan"
ANSWER_STAGE = "hgmem.answer"


@dataclass(frozen=True)
class PointOp:
    """A parsed ``insert`` or ``update`` (``point`` is None for an insert).

    ``vertices`` are ids the prompt showed (index entities, or provisional vertices already in
    the memory); ``new_names`` become provisional vertices; ``facts`` are 0-based positions in
    the evidence list the prompt numbered from 1."""

    op: str
    point: int | None
    vertices: tuple[int, ...]
    new_names: tuple[str, ...]
    description: str
    facts: tuple[int, ...] = ()


@dataclass(frozen=True)
class MergeGroup:
    """Parsed merge: the point numbers and the merged point's description."""

    points: tuple[int, ...]
    description: str


@dataclass(frozen=True)
class Concern:
    """What the memory lacks, the points it is about, a subquery and entities to start from."""

    text: str
    points: tuple[int, ...]
    subquery: str
    entities: tuple[int, ...]


@dataclass(frozen=True)
class Judgement:
    """Parsed sufficiency judgement: stop when ``sufficient``, else follow ``concerns``."""

    sufficient: bool
    concerns: tuple[Concern, ...] = ()


# --------------------------------------------------------------------------- parsers


def _reply(content: str, key: str, truncated: bool) -> Any:
    if truncated:
        raise ParseError("the reply was cut at the length limit (raise the stage's max_tokens)", retry=False)
    return parse_object(content, key)


def _text(item: Mapping[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ParseError(f"{where}: {key!r} must be a non-empty string, got {value!r}")
    return " ".join(value.split())


def _ints(item: Mapping[str, Any], key: str, where: str, limit: int, what: str, base: int = 0) -> tuple[int, ...]:
    value = item.get(key, [])
    if not isinstance(value, list):
        raise ParseError(f"{where}: {key!r} must be a list of numbers, got {value!r}")
    out = []
    for x in value:
        if isinstance(x, bool) or not isinstance(x, int):
            raise ParseError(f"{where}: {key!r} must hold whole numbers, got {x!r}")
        if not base <= x < limit + base:
            valid = f"{base}..{limit + base - 1}" if limit else "none"
            raise ParseError(f"{where}: no {what} {x} (valid: {valid})")
        out.append(x - base)
    return tuple(dict.fromkeys(out))


def _names(item: Mapping[str, Any], key: str, where: str, names: Mapping[str, int]) -> tuple[int, ...]:
    value = item.get(key, [])
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise ParseError(f"{where}: {key!r} must be a list of names, got {value!r}")
    out = []
    for name in value:
        vid = names.get(normalize(name))
        if vid is None:
            shown = ", ".join(sorted(names)[:12]) + (", ..." if len(names) > 12 else "")
            raise ParseError(f"{where}: unknown entity {name!r}; the prompt showed: {shown or 'none'}")
        out.append(vid)
    return tuple(dict.fromkeys(out))


def parse_evolve(
    content: str, names: Mapping[str, int], n_points: int, n_facts: int, truncated: bool = False
) -> list[PointOp]:
    """``{"operations": [...]}`` -> validated operations. ``names``: normalised name -> vertex id
    of every entity the prompt showed; ``n_points``/``n_facts``: the memory's points and the
    evidence facts the prompt numbered (from 1)."""
    ops = _reply(content, "operations", truncated)
    if not isinstance(ops, list):
        raise ParseError("operations is not a list")
    out: list[PointOp] = []
    updated: set[int] = set()
    for n, item in enumerate(ops):
        where = f"operation {n}"
        if not isinstance(item, dict):
            raise ParseError(f"{where} is not an object: {item!r}")
        kind = item.get("op")
        if kind not in ("insert", "update"):
            raise ParseError(f"{where}: unknown op {kind!r} (valid: insert, update)")
        point: int | None = None
        if kind == "update":
            point = _ints({"point": [item.get("point")]}, "point", where, n_points, "memory point")[0]
            if point in updated:
                raise ParseError(f"{where}: point {point} is updated twice")
            updated.add(point)
        vertices = _names(item, "entities", where, names)
        raw_new = item.get("new_entities", [])
        if not isinstance(raw_new, list) or not all(isinstance(x, str) for x in raw_new):
            raise ParseError(f"{where}: 'new_entities' must be a list of names, got {raw_new!r}")
        new = tuple(dict.fromkeys(" ".join(x.split()) for x in raw_new if normalize(x)))
        if not vertices and not new:
            raise ParseError(f"{where}: a memory point needs at least one entity")
        facts = _ints(item, "facts", where, n_facts, "fact", base=1)
        out.append(PointOp(kind, point, vertices, new, _text(item, "description", where), facts))
    return out


def parse_merge(content: str, n_points: int, truncated: bool = False) -> list[MergeGroup]:
    """``{"merge": [{"points": [...], "description": ...}]}`` -> validated groups (2+ distinct
    points each, in range, no point in two groups)."""
    groups = _reply(content, "merge", truncated)
    if not isinstance(groups, list):
        raise ParseError("merge is not a list")
    out: list[MergeGroup] = []
    seen: set[int] = set()
    for n, item in enumerate(groups):
        where = f"merge group {n}"
        if not isinstance(item, dict):
            raise ParseError(f"{where} is not an object: {item!r}")
        points = _ints(item, "points", where, n_points, "memory point")
        if len(points) < 2:
            raise ParseError(f"{where}: needs at least two distinct points, got {item.get('points')!r}")
        if seen & set(points):
            raise ParseError(f"{where}: point(s) {sorted(seen & set(points))} are in more than one group")
        seen |= set(points)
        out.append(MergeGroup(points, _text(item, "description", where)))
    return out


def parse_plan(
    content: str, names: Mapping[str, int], n_points: int, max_concerns: int = 3, truncated: bool = False
) -> Judgement:
    """``{"sufficient": bool, "concerns": [...]}`` -> a :class:`Judgement`. Not sufficient needs at
    least one concern; concerns past ``max_concerns`` are dropped. ``names``: the entities the
    next step may start from (normalised name -> entity index)."""
    sufficient = _reply(content, "sufficient", truncated)
    if not isinstance(sufficient, bool):
        raise ParseError(f"'sufficient' must be true or false, got {sufficient!r}")
    if sufficient:
        return Judgement(True)
    concerns = parse_object(content, "concerns")
    if not isinstance(concerns, list) or not concerns:
        raise ParseError("not sufficient, but no concern: 'concerns' must be a non-empty list")
    out = []
    for n, item in enumerate(concerns[:max_concerns]):
        where = f"concern {n}"
        if not isinstance(item, dict):
            raise ParseError(f"{where} is not an object: {item!r}")
        out.append(Concern(
            _text(item, "concern", where), _ints(item, "points", where, n_points, "memory point"),
            _text(item, "subquery", where), _names(item, "entities", where, names),
        ))
    return Judgement(False, tuple(out))


# --------------------------------------------------------------------------- the reasoner


class LLMReasoner:
    """The :class:`~hippo.hgmem.loop.Reasoner` that asks an LLM (one per question: it keeps the
    question's query history and its offline fallback).

    Per step: one ``evolve`` call, one ``merge`` call from step 2 on when the memory holds two
    or more points, and one ``plan`` call (sufficiency, concerns, subqueries and entities in one
    reply). ``passage_text(p)`` gives a passage's ``title\\ntext``, ``fact_triple(f)`` a fact's
    (subject, relation, object). ``entity_index`` (normalised name -> entity index, e.g.
    :meth:`hippo.engine.Engine.name_index`) maps a ``new_entities`` name that is an index entity
    after all back to it.
    """

    def __init__(
        self,
        llm: LLMClient,
        view: GraphView,
        question_entities: Sequence[int],
        passage_text: Callable[[int], str],
        fact_triple: Callable[[int], tuple[str, str, str]],
        fallback: OfflineReasoner | None = None,
        max_facts: int = 20,
        passage_chars: int = 1500,
        max_concerns: int = 3,
        max_seeds: int = 4,
        max_tokens: int = 1024,
        entity_index: Mapping[str, int] | None = None,
    ) -> None:
        self.llm = llm
        self.view = view
        self.named = tuple(int(e) for e in question_entities)
        self.passage_text = passage_text
        self.fact_triple = fact_triple
        self.offline = fallback or OfflineReasoner(view, question_entities)
        self.max_facts = max_facts
        self.passage_chars = passage_chars
        self.max_concerns = max_concerns
        self.max_seeds = max_seeds
        self.max_tokens = max_tokens
        self.queries: list[str] = []
        """Every query a step ranked so far (the plan prompt asks for new ones)."""
        self.failures: list[str] = []
        """Why a stage fell back or was skipped, as ``stage: reason``."""
        self._entity_index = entity_index
        """normalised name -> entity index over the whole index (made on first use when not given)."""

    # ------------------------------------------------------------------ helpers

    def _name(self, memory: HypergraphMemory, v: int) -> str:
        if v >= 0:
            return self.view.entity_names[v]
        return next((n for n, i in memory.provisional.items() if i == v), str(v))

    def _points(self, memory: HypergraphMemory) -> list[PointView]:
        return [(sorted(self._name(memory, v) for v in p.vertices), p.description) for p in memory.points]

    def _names(self, memory: HypergraphMemory, ids: set[int]) -> dict[str, int]:
        """normalised name -> vertex id; an index entity wins over a provisional namesake, the
        lower id over a higher one."""
        out: dict[str, int] = {}
        for v in sorted(ids, key=lambda v: (v < 0, abs(v))):
            out.setdefault(normalize(self._name(memory, v)), v)
        return out

    def _ask(self, messages: Any, stage: str, parse: Callable[[ChatReply], Any]) -> Outcome[Any]:
        return self.llm.chat_many([ChatRequest(tuple(messages), stage, self.max_tokens)], parse)[0]

    def _fail(self, stage: str, error: str | None) -> str:
        self.failures.append(f"{stage}: {error}")
        return str(error)

    # ------------------------------------------------------------------ Reasoner

    def evolve(self, question: str, memory: HypergraphMemory, evidence: Evidence, step: int) -> list[str]:
        """Ask which points to update or insert; apply them; from step 2, ask which to merge."""
        self.offline.observe(evidence)
        self.queries.extend(q for q in evidence.queries if q not in self.queries)
        facts = list(evidence.facts[: self.max_facts])
        shown = {e for f in facts for e in (int(self.view.ranker.fact_subject[f]), int(self.view.ranker.fact_object[f]))}
        names = self._names(memory, shown | memory.vertices() | set(self.named))
        passages = [self.passage_text(p)[: self.passage_chars] for p in evidence.passages]
        messages = evolve_messages(
            question, evidence.queries or (question,), self._points(memory), [self.fact_triple(f) for f in facts], passages
        )
        n_points = len(memory.points)
        outcome = self._ask(
            messages, EVOLVE_STAGE,
            lambda r: parse_evolve(r.content, names, n_points, len(facts), r.finish_reason == "length"),
        )
        if outcome.value is None:
            reason = self._fail(EVOLVE_STAGE, outcome.error)
            return [f"fallback to offline: {reason}", *self.offline.evolve(question, memory, evidence, step)]
        ops = self._apply(memory, outcome.value, facts, evidence, step)
        if step >= 2 and len(memory.points) >= 2:
            ops += self._merge(question, memory, step)
        return ops

    def _apply(
        self, memory: HypergraphMemory, parsed: Sequence[PointOp], facts: Sequence[int], evidence: Evidence, step: int
    ) -> list[str]:
        """Apply parsed operations: updates in place, then inserts appended."""
        ops: list[str] = []
        ordered = sorted(parsed, key=lambda o: o.op != "update")
        for op in ordered:
            vertices = set(op.vertices) | {self._vertex(memory, n) for n in op.new_names}
            cited = [facts[i] for i in op.facts]
            # provenance: the cited facts' passages among this step's; all of them when none is cited
            passages = {p for p in evidence.passages if set(self.view.facts_of(p).tolist()) & set(cited)} or set(evidence.passages)
            label = ", ".join(sorted(self._name(memory, v) for v in vertices))
            if op.point is None:
                i = memory.insert(vertices, op.description, passages, cited, step)
                ops.append(f"insert #{i} {{{label}}}: {op.description}")
            else:
                memory.update(op.point, vertices, op.description, passages, cited, step)
                ops.append(f"update #{op.point} {{{label}}}: {op.description}")
        return ops

    def _vertex(self, memory: HypergraphMemory, name: str) -> int:
        """The index entity of that (normalised) name, else a provisional vertex."""
        if self._entity_index is None:
            self._entity_index = name_index(self.view.entity_names)
        hit = self._entity_index.get(normalize(name))
        return hit if hit is not None else memory.add_provisional(name)

    def _merge(self, question: str, memory: HypergraphMemory, step: int) -> list[str]:
        n_points = len(memory.points)
        outcome = self._ask(
            merge_messages(question, self._points(memory)), MERGE_STAGE,
            lambda r: parse_merge(r.content, n_points, r.finish_reason == "length"),
        )
        if outcome.value is None:
            return [f"merge skipped: {self._fail(MERGE_STAGE, outcome.error)}"]
        groups: list[MergeGroup] = outcome.value
        if not groups:
            return []
        try:
            new = memory.merge([list(g.points) for g in groups], [g.description for g in groups], step)
        except HGMemError as exc:  # parse_merge checks what merge checks: a bug if it happens
            return [f"merge skipped: {self._fail(MERGE_STAGE, str(exc))}"]
        return [f"merge {list(g.points)} -> #{n}: {g.description}" for g, n in zip(groups, new)]

    def plan(self, question: str, memory: HypergraphMemory, hints: Sequence[int], step: int) -> Plan:
        """Ask whether the memory suffices; if not, the concerns' subqueries and entities lead
        the next step (a concern that names no entity starts from its points' new vertices)."""
        index_vertices = {v for v in memory.vertices() if v >= 0}
        names = self._names(memory, index_vertices | set(hints))
        n_points = len(memory.points)
        outcome = self._ask(
            plan_messages(question, self._points(memory), [self._name(memory, h) for h in hints], self.queries, self.max_concerns),
            PLAN_STAGE,
            lambda r: parse_plan(r.content, names, n_points, self.max_concerns, r.finish_reason == "length"),
        )
        if outcome.value is None:
            reason = self._fail(PLAN_STAGE, outcome.error)
            plan = self.offline.plan(question, memory, hints, step)
            return dataclasses.replace(plan, reason=f"fallback to offline: {reason}; {plan.reason}")
        judgement: Judgement = outcome.value
        if judgement.sufficient:
            return Plan(True, reason="the LLM judged the memory sufficient")
        seeds: list[int] = []
        for c in judgement.concerns:
            start = list(c.entities) or sorted(
                v for i in c.points for v in memory.points[i].vertices if v >= 0 and v not in self.named
            )
            seeds += [v for v in start if v not in seeds]
        seeds = seeds[: self.max_seeds]
        self.offline.visited |= set(seeds)
        return Plan(
            False, tuple(seeds), tuple(dict.fromkeys(c.subquery for c in judgement.concerns)),
            reason=f"the LLM raised {len(judgement.concerns)} concern(s)", concerns=tuple(c.text for c in judgement.concerns),
        )

    # ------------------------------------------------------------------ answer

    def answer(
        self, question: str, memory: HypergraphMemory, ranking: Sequence[int] = (), max_passages: int = 8
    ) -> Outcome[str]:
        """Answer from the memory points and the passages they came from (best first by
        ``ranking``, e.g. the run's fused passages, then by index). ``value`` is the text after
        ``Answer:``; the full reply is ``outcome.reply``."""
        provenance = set().union(*(p.passages for p in memory.points)) if memory.points else set()
        rank = {p: i for i, p in enumerate(ranking)}
        chosen = sorted(provenance, key=lambda p: (rank.get(p, len(rank)), p))[:max_passages]
        messages = answer_messages(question, self._points(memory), [self.passage_text(p)[: self.passage_chars] for p in chosen])
        request = ChatRequest(messages, ANSWER_STAGE, json=False)
        return self.llm.chat_many([request], _answer_reply)[0]


def _answer_reply(reply: ChatReply) -> str:
    text = answer_of(reply.content)
    if not text:
        raise ParseError("empty reply")
    return text
