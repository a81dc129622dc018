"""Recall@k as HippoRAG 2 defines it, on MuSiQue- and HotpotQA/2Wiki-style question files,
and the answer metrics EM and F1 with HippoRAG 2's normalisation.

Recall@k of a question = |top-k ∩ gold| / |gold|; a question whose gold passages are
all missing still counts (with recall 0), and the macro average is reported. Gold
passages are matched to index passages by exact content, then by title (when the title
is unique in the index), then by whitespace-insensitive content. Gold passages that
match nothing are counted (``gold_missing``) and gold passages whose text differs but
whose title matched are counted too (``gold_matched_by_title``): nothing is silent.
"""

from __future__ import annotations

import json
import re
import string
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hippo.errors import QuestionsError

KS = (1, 2, 5, 10, 20)


@dataclass(frozen=True)
class Question:
    """A question and its gold passages as (title, content) pairs."""

    id: str
    question: str
    gold: tuple[tuple[str, str], ...]
    answers: tuple[str, ...] = ()


def _gold_of(item: Mapping[str, Any], where: str) -> tuple[tuple[str, str], ...]:
    gold: list[tuple[str, str]] = []
    if "supporting_facts" in item:
        titles = {str(sf[0]) for sf in item["supporting_facts"] if isinstance(sf, (list, tuple)) and sf}
        context = item.get("context") or []
        found = set()
        for entry in context:
            if isinstance(entry, (list, tuple)) and len(entry) == 2 and entry[0] in titles:
                sents = entry[1] if isinstance(entry[1], list) else [str(entry[1])]
                gold.append((entry[0], f"{entry[0]}\n{' '.join(s.strip() for s in sents)}"))
                found.add(entry[0])
        gold.extend((t, "") for t in sorted(titles - found))
    elif "paragraphs" in item or "contexts" in item:
        for para in item.get("paragraphs") or item.get("contexts") or []:
            if not isinstance(para, Mapping):
                raise QuestionsError(f"{where}: paragraphs must be objects")
            if para.get("is_supporting") is False or ("is_supporting" not in para and "contexts" in item):
                continue
            title = str(para.get("title", ""))
            text = str(para.get("paragraph_text", para.get("text", "")))
            gold.append((title, f"{title}\n{text}" if title else text))
    else:
        raise QuestionsError(
            f"{where}: no gold passages: expected \"paragraphs\" with is_supporting (MuSiQue) or "
            f"\"supporting_facts\" + \"context\" (HotpotQA/2Wiki)"
        )
    return tuple(dict.fromkeys(gold))


def load_questions(path: str | Path) -> list[Question]:
    """Read a HippoRAG 2-format questions file (JSON list, or JSONL)."""
    src = Path(path)
    try:
        raw = src.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QuestionsError(f"questions file not found: {src}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionsError(f"cannot read questions file {src}: {exc}") from None
    data: Any
    if src.suffix == ".jsonl":
        data = []
        for lineno, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                data.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise QuestionsError(f"{src}:{lineno}: malformed JSON ({exc.msg} at column {exc.colno})") from None
    else:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise QuestionsError(f"{src}: malformed JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, list) or not data:
        raise QuestionsError(f"{src}: expected a non-empty JSON list of questions")
    out = []
    for i, item in enumerate(data):
        where = f"{src}: item {i}"
        if not isinstance(item, Mapping) or not isinstance(item.get("question"), str):
            raise QuestionsError(f"{where}: missing string field \"question\"")
        answers = [item["answer"]] if isinstance(item.get("answer"), str) else list(item.get("answer") or [])
        answers += list(item.get("answer_aliases") or [])
        out.append(Question(str(item.get("id", item.get("_id", i))), item["question"], _gold_of(item, where), tuple(map(str, answers))))
    return out


class GoldMatcher:
    """Maps gold (title, content) pairs to passage ids of an index."""

    def __init__(self, ids: Sequence[str], titles: Sequence[str], contents: Sequence[str]) -> None:
        self.by_content = {c: i for c, i in zip(contents, ids)}
        self.by_squashed = {" ".join(c.split()): i for c, i in zip(contents, ids)}
        by_title: dict[str, list[str]] = {}
        for t, i in zip(titles, ids):
            by_title.setdefault(t, []).append(i)
        self.by_title = {t: v[0] for t, v in by_title.items() if len(v) == 1}

    def match(self, title: str, content: str) -> tuple[str | None, str]:
        """(passage id or None, how: ``content``, ``title``, ``whitespace`` or ``missing``)."""
        if content and content in self.by_content:
            return self.by_content[content], "content"
        if title and title in self.by_title:
            return self.by_title[title], "title"
        found = self.by_squashed.get(" ".join(content.split())) if content else None
        return found, "whitespace" if found else "missing"


def recall_at(ranked: Sequence[str], gold: Sequence[str], k: int) -> float:
    """|top-k ∩ gold| / |gold| (0 when there is no gold)."""
    gold_set = set(gold)
    if not gold_set:
        return 0.0
    return len(set(ranked[:k]) & gold_set) / len(gold_set)


def evaluate(
    engine: Any,
    questions: Sequence[Question],
    retriever: str = "hippo",
    ks: Sequence[int] = KS,
    batch_size: int = 1,
) -> dict[str, Any]:
    """Recall@k over ``questions``; latency per query measured one query at a time by default.

    Returns the ``hippo eval --json`` shape plus ``per_question``.
    """
    matcher = GoldMatcher(engine.passage_ids, engine.passage_titles, engine.passage_contents)
    depth = max(ks)
    per_question = []
    latencies = []
    gold_missing = 0
    by_title = 0
    for start in range(0, len(questions), batch_size):
        batch = questions[start : start + batch_size]
        t = time.perf_counter()
        results = engine.retrieve_many([q.question for q in batch], k=depth, retriever=retriever)
        latencies.append(1000 * (time.perf_counter() - t) / len(batch))
        for q, res in zip(batch, results):
            gold_ids: list[str] = []
            missing: list[str] = []
            for title, content in q.gold:
                pid, how = matcher.match(title, content)
                if pid is None:
                    missing.append(title)
                else:
                    gold_ids.append(pid)
                    by_title += how == "title" and bool(content)
            gold_missing += len(missing)
            ranked = res.passage_ids
            # Unfound gold passages stay in the denominator: they can never be retrieved.
            gold = gold_ids + [f"\x00missing:{i}" for i in range(len(missing))]
            recalls = {str(k): recall_at(ranked, gold, k) for k in ks}
            per_question.append({
                "id": q.id, "question": q.question, "gold": gold_ids, "gold_missing": missing,
                "retrieved": ranked, "recall": recalls, "mode": res.mode,
            })
    recall = {str(k): round(float(np.mean([p["recall"][str(k)] for p in per_question])), 4) for k in ks}
    lat = np.asarray(latencies)
    return {
        "retriever": retriever,
        "questions": len(questions),
        "recall": recall,
        "gold_missing": gold_missing,
        "gold_matched_by_title": by_title,
        "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 2), "p95": round(float(np.percentile(lat, 95)), 2)},
        "per_question": per_question,
    }


# --------------------------------------------------------------------------- answers: EM / F1

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """HippoRAG 2's (and SQuAD's) ``normalize_answer``: lower-case, drop punctuation, drop
    the articles a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer, else 0.0."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in gold))


def token_f1(prediction: str, gold: Sequence[str]) -> float:
    """Best token-overlap F1 of the normalised prediction against any gold answer."""
    pred = normalize_answer(prediction).split()
    best = 0.0
    for g in gold:
        ref = normalize_answer(g).split()
        common = sum((Counter(pred) & Counter(ref)).values())
        if common == 0:
            continue
        precision, recall = common / len(pred), common / len(ref)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def qa_metrics(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean EM and F1 over questions (each the max over its gold answers), as HippoRAG 2."""
    if len(predictions) != len(golds):
        raise ValueError("one prediction per question is required")
    if not predictions:
        return {"em": 0.0, "f1": 0.0}
    em = [exact_match(p, g) for p, g in zip(predictions, golds)]
    f1 = [token_f1(p, g) for p, g in zip(predictions, golds)]
    return {"em": round(float(np.mean(em)), 4), "f1": round(float(np.mean(f1)), 4)}
