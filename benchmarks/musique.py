"""Benchmark hippo on the shared MuSiQue-100 data: quality, index time, graph size, latency, memory.

    python benchmarks/musique.py                      # both extractors, writes benchmarks/results/
    python benchmarks/musique.py --extractors openie  # only the recorded gpt-3.5-turbo OpenIE

Each stage runs in its own subprocess so its peak RSS is its own (os.wait4). Latency is
measured one query at a time on a warm engine: "rank" excludes query embedding (the
query vectors are computed first), "total" is ``engine.retrieve()`` end to end.
Indexes are cached under benchmarks/.cache/ unless --rebuild.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = REPO.parent / "shared" / "data" / "musique100"
CACHE = HERE / ".cache"
RESULTS = HERE / "results"
RETRIEVERS = ("hippo", "hipporag2", "dense")


def measure_child(cmd: list[str]) -> tuple[str, float, float]:
    """Like run_measured but reads the child's own peak RSS via wait4 before the pipe is reaped."""
    t = time.perf_counter()
    with open(os.devnull, "w") as devnull:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=devnull, text=True)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
    return out, time.perf_counter() - t, usage.ru_maxrss / 1e6


def build(name: str, extra: list[str], rebuild: bool) -> dict:
    out = CACHE / name
    report_file = CACHE / f"{name}.build.json"
    if out.exists() and report_file.exists() and not rebuild:
        return json.loads(report_file.read_text())
    cmd = [sys.executable, "-m", "hippo.cli.main", "index", str(DATA / "corpus.json"), "--out", str(out), "--json", *extra]
    if out.exists():
        cmd.append("--rebuild")  # `hippo index` into an existing index would add, not rebuild
    stdout, wall, rss = measure_child(cmd)
    report = json.loads(stdout)
    report["wall_s"] = round(wall, 1)
    report["peak_rss_gb"] = round(rss, 2)
    report_file.write_text(json.dumps(report, indent=1))
    return report


def query_stage(index: str, n_latency: int) -> None:
    """Run in a child process: evaluation and latency of one index, printed as JSON."""
    import numpy as np

    from hippo import open_index
    from hippo.evaluation import evaluate, load_questions

    t = time.perf_counter()
    engine = open_index(index)
    engine.retrieve("warm up", k=5)
    open_s = time.perf_counter() - t
    questions = load_questions(DATA / "questions.json")
    out: dict = {"open_s": round(open_s, 2)}
    for retriever in RETRIEVERS:
        report = evaluate(engine, questions, retriever)
        out[retriever] = {"recall": report["recall"], "gold_missing": report["gold_missing"]}
        texts = [q.question for q in questions][:n_latency]
        batch = engine.prepare(texts, retriever)
        rank_ms, total_ms = [], []
        for _ in range(3):
            for b in range(len(texts)):
                t = time.perf_counter()
                engine.rank_prepared(batch[b : b + 1], 10, retriever)
                rank_ms.append(1000 * (time.perf_counter() - t))
        for text in texts:
            t = time.perf_counter()
            engine.retrieve(text, k=10, retriever=retriever)
            total_ms.append(1000 * (time.perf_counter() - t))
        t = time.perf_counter()
        engine.retrieve_many(texts, k=10, retriever=retriever)
        batch_ms = 1000 * (time.perf_counter() - t) / len(texts)
        pct = lambda xs, p: round(float(np.percentile(xs, p)), 2)  # noqa: E731
        out[retriever]["latency_ms"] = {
            "rank_p50": pct(rank_ms, 50), "rank_p95": pct(rank_ms, 95),
            "total_p50": pct(total_ms, 50), "total_p95": pct(total_ms, 95),
            "batch_per_query": round(batch_ms, 2),
        }
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extractors", nargs="+", default=["openie", "spacy"], choices=["openie", "spacy"])
    parser.add_argument("--rebuild", action="store_true", help="ignore cached indexes")
    parser.add_argument("--latency-queries", type=int, default=100)
    parser.add_argument("--query-stage", metavar="INDEX", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.query_stage:
        query_stage(args.query_stage, args.latency_queries)
        return
    CACHE.mkdir(exist_ok=True)
    RESULTS.mkdir(exist_ok=True)
    setups = {
        "openie": ["--openie", str(DATA / "openie_gpt-3.5-turbo-1106.json")],
        "spacy": ["--extractor", "spacy"],
    }
    results = {}
    for name in args.extractors:
        print(f"[{name}] indexing ...", file=sys.stderr)
        build_report = build(f"musique100-{name}", setups[name], args.rebuild)
        print(f"[{name}] evaluating ...", file=sys.stderr)
        stdout, _, rss = measure_child([sys.executable, __file__, "--query-stage", str(CACHE / f"musique100-{name}"),
                                        "--latency-queries", str(args.latency_queries)])
        query = json.loads(stdout.strip().splitlines()[-1])
        query["peak_rss_gb"] = round(rss, 2)
        results[name] = {"index": build_report, "query": query}
    env = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "command": "python benchmarks/musique.py " + " ".join(sys.argv[1:]),
    }
    (RESULTS / "musique100.json").write_text(json.dumps({"env": env, "results": results}, indent=1) + "\n")
    md = render(env, results)
    (RESULTS / "musique100.md").write_text(md)
    print(md)


def render(env: dict, results: dict) -> str:
    lines = [
        "# MuSiQue-100 benchmark",
        "",
        f"`{env['command']}` on {env['date']}, {env['machine']}, Python {env['python']}.",
        "Data: `../shared/data/musique100` (1,890 passages, 100 questions). Embedder: packaged all-MiniLM-L6-v2.",
        "",
        "## Retrieval quality (Recall@k)",
        "",
        "| extractor | retriever | R@1 | R@2 | R@5 | R@10 | R@20 | gold missing |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        for retriever in RETRIEVERS:
            q = r["query"][retriever]
            rec = q["recall"]
            lines.append(f"| {name} | {retriever} | {rec['1']:.3f} | {rec['2']:.3f} | {rec['5']:.3f} | {rec['10']:.3f} | {rec['20']:.3f} | {q['gold_missing']} |")
    lines += [
        "",
        "## Indexing",
        "",
        "| extractor | extract s | embed s | graph s | write s | total s | peak RSS GB | strings embedded |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        t = r["index"]["timings_s"]
        lines.append(f"| {name} | {t['extract']:.1f} | {t['embed']:.1f} | {t['graph']:.2f} | {t['write']:.2f} | {t['total']:.1f} | {r['index']['peak_rss_gb']:.2f} | {r['index']['counts']['distinct_strings_embedded']} |")
    lines += [
        "",
        "## Graph size",
        "",
        "| extractor | passages | entities | facts | relation edges | context edges | synonym edges |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        c = r["index"]["counts"]
        e = c["edges"]
        lines.append(f"| {name} | {c['passages']} | {c['entities']} | {c['facts']} | {e['relation']} | {e['context']} | {e['synonym']} |")
    lines += [
        "",
        "## Retrieval latency per query (ms, k=10, one query at a time, warm)",
        "",
        "| extractor | retriever | rank p50 | rank p95 | end to end (embedding, NER) p50 | p95 | retrieve_many of 100, per query, end to end | query process peak RSS GB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        for retriever in RETRIEVERS:
            lat = r["query"][retriever]["latency_ms"]
            lines.append(f"| {name} | {retriever} | {lat['rank_p50']} | {lat['rank_p95']} | {lat['total_p50']} | {lat['total_p95']} | {lat['batch_per_query']} | {r['query']['peak_rss_gb']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
