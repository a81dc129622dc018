"""HGMem (hypergraph working memory, offline reasoner) against single-step retrieval on MuSiQue-100.

    python benchmarks/hgmem.py

Uses the indexes cached by ``benchmarks/musique.py`` (recorded OpenIE and spaCy). Reports
Recall@k overall and by hop count (the question id's prefix), and the latency per question of
1, 2 and 3 steps (query embedding and NER excluded, one question at a time). Writes
``benchmarks/results/hgmem.{md,json}``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "musique100"
CACHE = HERE / ".cache"
RESULTS = HERE / "results"
INDEXES = {"openie": "musique100-openie", "spacy": "musique100-spacy"}
ROWS = [("hipporag2 (1 step)", "hipporag2", None), ("hippo (1 step)", "hippo", None),
        ("hgmem, 2 steps", "hgmem", 2), ("hgmem, 3 steps", "hgmem", 3)]


def recall(ranked: list[list[str]], gold: list[list[str]], k: int) -> float:
    return float(np.mean([len(set(r[:k]) & set(g)) / len(g) for r, g in zip(ranked, gold)]))


def measure(index: Path) -> dict:
    from hippo import open_index
    from hippo.evaluation import GoldMatcher, load_questions

    engine = open_index(index)
    questions = load_questions(DATA / "questions.json")
    matcher = GoldMatcher(engine.passage_ids, engine.passage_titles, engine.passage_contents)
    gold = [[matcher.match(t, c)[0] for t, c in q.gold] for q in questions]
    hops = [q.id.split("__")[0] for q in questions]
    texts = [q.question for q in questions]
    out: dict = {"rows": {}, "latency_ms": {}}
    for label, retriever, steps in ROWS:
        results = engine.retrieve_many(texts, k=20, retriever=retriever, steps=steps)
        ranked = [r.passage_ids for r in results]
        row = {"recall": {str(k): round(recall(ranked, gold, k), 4) for k in (1, 2, 5, 10)}, "by_hops": {}}
        for h in sorted(set(hops)):
            idx = [i for i, x in enumerate(hops) if x == h]
            row["by_hops"][h] = {"questions": len(idx), **{
                str(k): round(recall([ranked[i] for i in idx], [gold[i] for i in idx], k), 4) for k in (2, 5)}}
        out["rows"][label] = row
        print(f"  {label:22s} " + " ".join(f"{v:.3f}" for v in row["recall"].values()), file=sys.stderr)
    batch = engine.prepare(texts, "hgmem")
    for steps in (1, 2, 3):
        times = []
        for b in range(len(texts)):
            t = time.perf_counter()
            engine.run_memory(batch[b : b + 1], 20, steps=steps)
            times.append(1000 * (time.perf_counter() - t))
        out["latency_ms"][str(steps)] = {"p50": round(float(np.percentile(times, 50)), 1), "p95": round(float(np.percentile(times, 95)), 1)}
    return out


def main() -> None:
    results = {}
    for name, folder in INDEXES.items():
        if not (CACHE / folder / "CURRENT").exists():
            sys.exit(f"no cached index {CACHE / folder}: run `python benchmarks/musique.py` first")
        print(f"[{name}]", file=sys.stderr)
        results[name] = measure(CACHE / folder)
    env = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "python": platform.python_version(), "load_1min": round(os.getloadavg()[0], 2)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hgmem.json").write_text(json.dumps({"env": env, "results": results}, indent=1) + "\n")
    lines = ["# HGMem (offline reasoner) on MuSiQue-100", "",
             f"`python benchmarks/hgmem.py` on {env['date']}, {env['machine']}, Python {env['python']} "
             f"(1-minute load average at the end: {env['load_1min']}).", ""]
    for name, res in results.items():
        lines += [f"## {name} index", "", "| retriever | R@1 | R@2 | R@5 | R@10 |", "|---|---|---|---|---|"]
        for label, row in res["rows"].items():
            r = row["recall"]
            lines.append(f"| {label} | {r['1']:.3f} | {r['2']:.3f} | {r['5']:.3f} | {r['10']:.3f} |")
        hop_names = list(next(iter(res["rows"].values()))["by_hops"])
        lines += ["", "By hop count (R@2 / R@5):", "",
                  "| retriever | " + " | ".join(f"{h} ({res['rows'][ROWS[0][0]]['by_hops'][h]['questions']} q)" for h in hop_names) + " |",
                  "|---|" + "---|" * len(hop_names)]
        for label, row in res["rows"].items():
            lines.append(f"| {label} | " + " | ".join(f"{row['by_hops'][h]['2']:.3f} / {row['by_hops'][h]['5']:.3f}" for h in hop_names) + " |")
        lat = res["latency_ms"]
        lines += ["", "Latency per question, ms (ranking only; embedding and NER excluded):", "",
                  "| steps | p50 | p95 |", "|---|---|---|"]
        lines += [f"| {s} | {v['p50']} | {v['p95']} |" for s, v in lat.items()]
        lines.append("")
    md = "\n".join(lines)
    (RESULTS / "hgmem.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
