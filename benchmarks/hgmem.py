"""HGMem (hypergraph working memory, offline reasoner) against single-step retrieval on MuSiQue-100.

    python benchmarks/hgmem.py              # Recall@k on both cached indexes
    python benchmarks/hgmem.py --latency    # latency per question, recorded OpenIE index only

Uses the indexes cached by ``benchmarks/musique.py`` (recorded OpenIE and spaCy). The recall
part reports Recall@k overall and by hop count (the question id's prefix). The latency part
times ``engine.retrieve`` one question at a time for single-step ``hippo`` and ``hgmem`` with
1, 2 and 3 steps (offline reasoner), interleaved per question so load changes hit every row
alike, after a warm-up; it reports the whole call and its ranking part (embedding and NER
excluded), with the load average before and after. Each part keeps the other's results in
``benchmarks/results/hgmem.json`` and rewrites ``hgmem.md`` from it.
"""

from __future__ import annotations

import argparse
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
LATENCY_ROWS = [("hippo (1 step)", "hippo", None), ("hgmem, 1 step", "hgmem", 1),
                ("hgmem, 2 steps", "hgmem", 2), ("hgmem, 3 steps", "hgmem", 3)]
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
    return out


def percentiles(ms: list[float]) -> dict[str, float]:
    return {"p50": round(float(np.percentile(ms, 50)), 1), "p95": round(float(np.percentile(ms, 95)), 1),
            "mean": round(float(np.mean(ms)), 1)}


def measure_latency(index: Path, warmup: int = 5) -> dict:
    """Per question and row: wall time of ``engine.retrieve`` and its ranking part, in ms."""
    from hippo import open_index
    from hippo.evaluation import GoldMatcher, load_questions

    engine = open_index(index)
    questions = load_questions(DATA / "questions.json")
    matcher = GoldMatcher(engine.passage_ids, engine.passage_titles, engine.passage_contents)
    gold = [[matcher.match(t, c)[0] for t, c in q.gold] for q in questions]
    for q in questions[:warmup]:  # spaCy, the embedder and the memory view load here, not in the timings
        for _, retriever, steps in LATENCY_ROWS:
            engine.retrieve(q.question, k=20, retriever=retriever, steps=steps)
    total: dict[str, list[float]] = {label: [] for label, _, _ in LATENCY_ROWS}
    rank: dict[str, list[float]] = {label: [] for label, _, _ in LATENCY_ROWS}
    ranked: dict[str, list[list[str]]] = {label: [] for label, _, _ in LATENCY_ROWS}
    steps_run: dict[str, list[int]] = {label: [] for label, _, _ in LATENCY_ROWS}
    load_before = round(os.getloadavg()[0], 2)
    for q in questions:
        for label, retriever, steps in LATENCY_ROWS:
            t = time.perf_counter()
            r = engine.retrieve(q.question, k=20, retriever=retriever, steps=steps)
            total[label].append(1000 * (time.perf_counter() - t))
            rank[label].append(r.timings_ms["rank"])
            ranked[label].append(r.passage_ids)
            steps_run[label].append(len(r.memory["steps"]) if r.memory else 1)
    load_after = round(os.getloadavg()[0], 2)
    rows = {}
    for label, _, _ in LATENCY_ROWS:
        rows[label] = {"total_ms": percentiles(total[label]), "rank_ms": percentiles(rank[label]),
                       "steps_run_mean": round(float(np.mean(steps_run[label])), 2),
                       "recall_5": round(recall(ranked[label], gold, 5), 4)}
        print(f"  {label:16s} total p50 {rows[label]['total_ms']['p50']:7.1f} p95 {rows[label]['total_ms']['p95']:7.1f}"
              f"  rank p50 {rows[label]['rank_ms']['p50']:7.1f} p95 {rows[label]['rank_ms']['p95']:7.1f}", file=sys.stderr)
    return {"index": index.name, "questions": len(questions), "warmup_questions": warmup,
            "load_1min_before": load_before, "load_1min_after": load_after, "rows": rows}


def environment() -> dict:
    return {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "python": platform.python_version(), "load_1min": round(os.getloadavg()[0], 2),
            "threads": {v: os.environ.get(v, "") for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--latency", action="store_true", help="measure latency per question (OpenIE index) instead of recall")
    args = ap.parse_args()
    path = RESULTS / "hgmem.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    for res in data.get("results", {}).values():
        res.pop("latency_ms", None)  # an earlier layout, measured under heavy load: replaced by the latency part
    folders = {"openie": INDEXES["openie"]} if args.latency else INDEXES
    for folder in folders.values():
        if not (CACHE / folder / "CURRENT").exists():
            sys.exit(f"no cached index {CACHE / folder}: run `python benchmarks/musique.py` first")
    if args.latency:
        print(f"[latency, load {os.getloadavg()[0]:.2f}]", file=sys.stderr)
        data["latency"] = {"env": environment(), **measure_latency(CACHE / INDEXES["openie"])}
    else:
        results = {}
        for name, folder in INDEXES.items():
            print(f"[{name}]", file=sys.stderr)
            results[name] = measure(CACHE / folder)
        data.update({"env": environment(), "results": results})
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    md = render(data)
    (RESULTS / "hgmem.md").write_text(md)
    print(md)


def render(data: dict) -> str:
    """``hgmem.md`` from ``hgmem.json``."""
    lines = ["# HGMem (offline reasoner) on MuSiQue-100", ""]
    env = data.get("env")
    if env:
        lines += [f"Recall: `python benchmarks/hgmem.py` on {env['date']}, {env['machine']}, Python {env['python']} "
                  f"(1-minute load average at the end: {env['load_1min']}).", ""]
    for name, res in data.get("results", {}).items():
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
        lines.append("")
    lat = data.get("latency")
    if lat:
        e = lat["env"]
        lines += [
            f"## Latency per question ({lat['index']} index)", "",
            f"`python benchmarks/hgmem.py --latency` on {e['date']}, {e['machine']}, Python {e['python']}; "
            f"{lat['questions']} questions one at a time after {lat['warmup_questions']} warm-up questions, the rows "
            f"interleaved per question; 1-minute load average {lat['load_1min_before']} before and "
            f"{lat['load_1min_after']} after (the machine is shared)"
            + "".join(f", {k}={v}" for k, v in e.get("threads", {}).items() if v) + ".", "",
            "*Total* is the whole `engine.retrieve` call (query embedding, spaCy NER, ranking); *ranking* "
            "leaves out embedding and NER. R@5 checks the rows compute what the recall tables report.", "",
            "| retriever | total p50 | total p95 | ranking p50 | ranking p95 | steps run (mean) | R@5 |",
            "|---|---|---|---|---|---|---|",
        ]
        for label, row in lat["rows"].items():
            t, r = row["total_ms"], row["rank_ms"]
            lines.append(f"| {label} | {t['p50']} | {t['p95']} | {r['p50']} | {r['p95']} | {row['steps_run_mean']} | {row['recall_5']:.3f} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
