"""JSON forms of retrieval results, shared by the server and :class:`hippo.Client`.

``result_json`` gives what ``GET /v1/ns/{ns}/retrieve`` returns (the whole explainable
:class:`~hippo.types.QueryResult`: hits, linked facts, seeds, timings); ``result_from_json``
turns it back into the same dataclasses, so remote and local code read results alike.
Imports nothing from the web stack.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from hippo.types import Answer, Fact, Hit, LinkedFact, QueryResult, Seed


def hit_json(hit: Hit) -> dict[str, Any]:
    """A hit as JSON (``span`` and ``headings`` as lists)."""
    data = dataclasses.asdict(hit)
    data["span"] = list(hit.span)
    data["headings"] = list(hit.headings)
    data["metadata"] = dict(hit.metadata)
    return data


def _linked_json(lf: LinkedFact) -> dict[str, Any]:
    f = lf.fact
    return {"id": f.id, "subject": f.subject, "relation": f.relation, "object": f.object, "score": lf.score}


def result_json(result: QueryResult) -> dict[str, Any]:
    """A query result as JSON: ``query, retriever, mode, hits, facts, seeds, timings_ms``
    (plus ``filter``/``rejected_facts`` with the recognition filter, ``memory`` for hgmem)."""
    out: dict[str, Any] = {
        "query": result.query,
        "retriever": result.retriever,
        "mode": result.mode,
        "hits": [hit_json(h) for h in result.hits],
        "facts": [_linked_json(f) for f in result.facts],
        "seeds": [dataclasses.asdict(s) for s in result.seeds],
        "timings_ms": dict(result.timings_ms),
    }
    if result.filter:
        out["filter"] = result.filter
        out["rejected_facts"] = [_linked_json(f) for f in result.rejected_facts]
    if result.memory is not None:
        out["memory"] = result.memory
    return out


def answer_json(answer: Answer) -> dict[str, Any]:
    """An LLM answer as JSON: ``question, answer, passages, reply, retrieval, error``."""
    return {
        "question": answer.question,
        "answer": answer.answer,
        "passages": [hit_json(h) for h in answer.passages],
        "reply": answer.reply,
        "retrieval": result_json(answer.retrieval),
        "error": answer.error,
    }


def hit_from_json(data: Mapping[str, Any]) -> Hit:
    """A :class:`Hit` from :func:`hit_json`'s form (unknown keys are ignored)."""
    span = data.get("span") or (0, 0)
    return Hit(
        int(data["rank"]), str(data["passage_id"]), float(data["score"]), str(data.get("title", "")),
        str(data.get("content", "")), document_id=str(data.get("document_id", "")), source=str(data.get("source", "")),
        headings=tuple(str(h) for h in data.get("headings", ())), span=(int(span[0]), int(span[1])),
        metadata=dict(data.get("metadata") or {}),
    )


def _linked_from_json(data: Mapping[str, Any]) -> LinkedFact:
    return LinkedFact(Fact(str(data["id"]), str(data["subject"]), str(data["relation"]), str(data["object"])),
                      float(data["score"]))


def result_from_json(data: Mapping[str, Any]) -> QueryResult:
    """A :class:`QueryResult` from :func:`result_json`'s form."""
    return QueryResult(
        str(data["query"]), str(data["retriever"]), str(data["mode"]),
        tuple(hit_from_json(h) for h in data["hits"]),
        tuple(_linked_from_json(f) for f in data.get("facts") or ()),
        tuple(Seed(str(s["entity_id"]), str(s["name"]), float(s["weight"]), str(s.get("source", "fact")))
              for s in data.get("seeds") or ()),
        {str(k): float(v) for k, v in (data.get("timings_ms") or {}).items()},
        tuple(_linked_from_json(f) for f in data.get("rejected_facts") or ()),
        str(data.get("filter") or ""),
        data.get("memory"),
    )


def answer_from_json(data: Mapping[str, Any]) -> Answer:
    """An :class:`Answer` from :func:`answer_json`'s form."""
    return Answer(str(data["question"]), str(data["answer"]), tuple(hit_from_json(h) for h in data["passages"]),
                  str(data.get("reply", "")), result_from_json(data["retrieval"]), str(data.get("error", "")))
