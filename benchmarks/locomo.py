"""Conversations: evidence recall on LoCoMo (8 conversations) for hippo, hipporag2 and dense.

    python benchmarks/locomo.py --ablation      # index-time and query-time options, tuning split, one-shot builds
    python benchmarks/locomo.py --diagnose      # why hippo loses: the issue's hypotheses, measured
    python benchmarks/locomo.py                 # the chosen pipeline, streamed per session, all 8 conversations

Each conversation is its own index (its questions are about it alone); a turn is a passage
(:func:`hippo.conversation.turn_passages`). Evidence recall@k of a question = the share of its
evidence turns in the top k; categories 1-4 (5, adversarial, has no evidence to find).
Tuning split: conversations 41, 42, 43, 44, 47, 48; held out (never looked at while
choosing): 49, 50. The final run streams turns in order, one ``build_index`` per session
(the write path before the living index; each adds to the existing index) and reports the
time of each add. Before the index stores passage metadata, the query-time time prior is
applied here from the metadata kept by passage id (the hook the lead is asked for:
``docs/conversations.md``). Results: ``benchmarks/results/locomo.{json,md}`` (each mode keeps
the others' results).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "locomo8" / "conversations.json"
CACHE = HERE / ".cache" / "locomo"
RESULTS = HERE / "results"
TUNING = ("41", "42", "43", "44", "47", "48")
HELD_OUT = ("49", "50")
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
KS = (2, 5, 10)

# Index-time variants: passage title and text, extractor. "spacy" = the plain spaCy extractor
# (issue 23's first measurement); otherwise ConversationExtractor options.
VARIANTS: dict[str, dict[str, Any]] = {
    "issue": {"title": "speaker-session-date", "context": False, "extractor": "spacy"},
    "title": {"title": "speaker-date", "context": False, "extractor": "spacy"},
    "wrap": {"title": "speaker-date", "context": False, "extractor": {"coref": False}},
    "coref": {"title": "speaker-date", "context": False, "extractor": {"coref": True}},
    "mentions": {"title": "speaker-date", "context": False, "extractor": {"coref": True, "mentions": True}},
    "speaker-session": {"title": "speaker-date", "context": False,
                        "extractor": {"coref": True, "mentions": True, "speakers": "session"}},
    "session-nodes": {"title": "speaker-date", "context": False,
                      "extractor": {"coref": True, "mentions": True, "speakers": "session", "session_nodes": True}},
    "previous": {"title": "speaker-date", "context": False,
                 "extractor": {"coref": True, "mentions": True, "speakers": "session", "previous": True}},
    "context": {"title": "speaker-date", "context": True,
                "extractor": {"coref": True, "mentions": True, "speakers": "session"}},
}
FINAL = "speaker-session"
"""The variant the final run streams (chosen by the ablation on the tuning split)."""
TIME_BOOST = 2.0
"""Query-time time prior: weight of turns dated in the window a question names."""


def load(conv_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Conversations with their turns and their category 1-4 questions (evidence as turn ids)."""
    from hippo.conversation import read_conversations

    raw = {str(c["conversation"]): c for c in json.loads(DATA.read_text())}
    convs = {c.id: c for c in read_conversations(DATA)}
    out = []
    for cid in conv_ids:
        known = {t.id for t in convs[cid].turns}
        questions = []
        for q in raw[cid]["qa"]:
            if q["category"] not in CATEGORIES:
                continue
            ev = [f"{cid}/{e.strip()}" for x in q["evidence"] for e in str(x).replace(",", ";").split(";") if e.strip()]
            questions.append({"question": q["question"], "category": q["category"], "evidence": ev,
                              "missing": sum(e not in known for e in ev)})
        out.append({"id": cid, "turns": convs[cid].turns, "questions": questions})
    return out


def passages_of(conv: dict[str, Any], variant: dict[str, Any]) -> list[Any]:
    from hippo.conversation import turn_passages

    return turn_passages(conv["turns"], title=variant["title"], context=variant["context"])


def make_extractor(variant: dict[str, Any]) -> Any:
    from hippo.conversation.extractor import ConversationExtractor
    from hippo.extract.spacy_ie import SpacyExtractor

    base = SpacyExtractor()
    if variant["extractor"] == "spacy":
        return base
    return ConversationExtractor(base, **variant["extractor"])


def build(name: str, conv: dict[str, Any], stream: bool) -> tuple[Path, dict[str, Any]]:
    """The index of one conversation under one variant (cached); with ``stream``, one write per
    session in order, timed."""
    from hippo.indexer import build_index

    variant = VARIANTS[name]
    out = CACHE / f"{name}{'-stream' if stream else ''}" / conv["id"]
    stats_file = out.parent / f"{conv['id']}.build.json"
    if (out / "CURRENT").exists() and stats_file.exists():
        return out, json.loads(stats_file.read_text())
    if out.exists():
        shutil.rmtree(out)
    passages = passages_of(conv, variant)
    extractor = make_extractor(variant)
    t0 = time.perf_counter()
    adds = []
    if stream:
        sessions: dict[str, list[Any]] = {}
        for p in passages:
            sessions.setdefault(str(p.metadata["session"]), []).append(p)
        for batch in sessions.values():
            t = time.perf_counter()
            build_index(batch, out, extractor=extractor)
            adds.append({"turns": len(batch), "seconds": time.perf_counter() - t})
    else:
        build_index(passages, out, extractor=extractor)
    stats = {"seconds": round(time.perf_counter() - t0, 2), "turns": len(passages), "adds": adds}
    stats_file.write_text(json.dumps(stats))
    return out, stats


def time_priors(conv: dict[str, Any], questions: Sequence[str], ids: Sequence[str], boost: float) -> list[Any]:
    """Per question, the time prior of every passage (``ids`` order), from the metadata kept aside."""
    from hippo.conversation.time import conversation_now, question_dates, time_prior

    times = {t.id: t.time for t in conv["turns"]}
    ordered = [times.get(i, "") for i in ids]
    now = conversation_now(ordered)
    return [time_prior(question_dates(q, now), ordered, boost) for q in questions]


def speaker_priors(conv: dict[str, Any], questions: Sequence[str], ids: Sequence[str], boost: float) -> list[Any]:
    """Per question: ``boost`` for the turns of the one speaker the question names (else all ones)."""
    import re

    speaker = {t.id: t.speaker for t in conv["turns"]}
    names = sorted(set(speaker.values()))
    out = []
    for q in questions:
        named = [n for n in names if re.search(rf"\b{re.escape(n)}\b", q)]
        w = np.ones(len(ids))
        if len(named) == 1:
            w[[speaker.get(i) == named[0] for i in ids]] = boost
        out.append(w)
    return out


def rankings(engine: Any, questions: Sequence[str], retriever: str, priors: Sequence[Any] | None) -> list[list[str]]:
    """Full rankings; with ``priors`` (per question, per passage in index order) each score is
    multiplied by its prior (dense: ``exp(1.5 cos)`` is, as hippo fuses cosines)."""
    n = len(engine.passage_ids)
    results = engine.retrieve_many(list(questions), k=n, retriever=retriever)
    if priors is None:
        return [r.passage_ids for r in results]
    pos = {pid: i for i, pid in enumerate(engine.passage_ids)}
    out = []
    for r, prior in zip(results, priors):
        ids = r.passage_ids
        scores = np.array([h.score for h in r.hits])
        if retriever == "dense" or r.mode == "dense":
            scores = np.exp(1.5 * (scores - 1.0))
        scores = scores * prior[[pos[i] for i in ids]]
        order = np.lexsort((np.arange(len(ids)), -scores))
        out.append([ids[i] for i in order])
    return out


def recall_table(ranked: Sequence[Sequence[str]], qs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Evidence recall@k overall and per category (and question counts)."""
    def rec(idx: list[int], k: int) -> float:
        vals = [len(set(ranked[i][:k]) & set(qs[i]["evidence"])) / max(1, len(set(qs[i]["evidence"]))) for i in idx]
        return round(float(np.mean(vals)), 4) if vals else 0.0

    everything = list(range(len(qs)))
    table = {"all": {"n": len(qs), **{str(k): rec(everything, k) for k in KS}}}
    for c in CATEGORIES:
        idx = [i for i, q in enumerate(qs) if q["category"] == c]
        table[str(c)] = {"n": len(idx), **{str(k): rec(idx, k) for k in KS}}
    return table


def evaluate(name: str, convs: Sequence[dict[str, Any]], rows: Sequence[tuple[str, str, float, float]],
             stream: bool = False, steps: int | None = None) -> dict[str, Any]:
    """Recall tables for ``rows`` (label, retriever, time boost, speaker boost) pooled over ``convs``."""
    from hippo import open_index

    ranked: dict[str, list[list[str]]] = {label: [] for label, *_ in rows}
    qs_all: list[dict[str, Any]] = []
    builds = {}
    for conv in convs:
        path, stats = build(name, conv, stream)
        builds[conv["id"]] = stats
        engine = open_index(path)
        questions = [q["question"] for q in conv["questions"]]
        for label, retriever, tboost, sboost in rows:
            priors = None
            if tboost != 1.0 or sboost != 1.0:
                t = time_priors(conv, questions, engine.passage_ids, tboost)
                s = speaker_priors(conv, questions, engine.passage_ids, sboost)
                priors = [a * b for a, b in zip(t, s)]
            if retriever == "hgmem":
                res = engine.retrieve_many(questions, k=10, retriever="hgmem", steps=steps)
                ranked[label] += [r.passage_ids for r in res]
            else:
                ranked[label] += rankings(engine, questions, retriever, priors)
        qs_all += conv["questions"]
    return {"questions": len(qs_all), "evidence_missing": sum(q["missing"] for q in qs_all),
            "rows": {label: recall_table(ranked[label], qs_all) for label in ranked}, "builds": builds}


def fmt(row: dict[str, Any], key: str = "all") -> str:
    return "/".join(f"{row[key][str(k)]:.3f}".lstrip("0") for k in KS)


BASE_ROWS = [("dense", "dense", 1.0, 1.0), ("hipporag2", "hipporag2", 1.0, 1.0), ("hippo", "hippo", 1.0, 1.0)]


def ablation() -> dict[str, Any]:
    convs = load(TUNING)
    out: dict[str, Any] = {}
    for name in VARIANTS:
        print(f"[{name}]", file=sys.stderr)
        res = evaluate(name, convs, BASE_ROWS)
        out[name] = res
        for label, row in res["rows"].items():
            print(f"  {label:10s} {fmt(row)}  " + " ".join(f"c{c} {fmt(row, str(c))}" for c in CATEGORIES), file=sys.stderr)
    return out


def environment() -> dict[str, Any]:
    return {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "python": platform.python_version(), "load_1min": round(os.getloadavg()[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ablation", action="store_true")
    ap.add_argument("--diagnose", action="store_true")
    args = ap.parse_args()
    path = RESULTS / "locomo.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    if args.ablation:
        data["ablation"] = {"env": environment(), "variants": ablation()}
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
