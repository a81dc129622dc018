"""``retrieve()`` end to end on a real index, two revisions side by side (issue 22).

    python benchmarks/query_latency.py --before 16a81e8
    python benchmarks/query_latency.py --before 16a81e8 --index DIR --questions FILE --runs 3
    python benchmarks/query_latency.py --before 16a81e8 --index DIR2 --index-before DIR1   # format 2 / format 1

Like ``benchmarks/ab.py``: the earlier revision is checked out in a temporary git worktree and
each measurement runs in a fresh process of one revision or the other, alternating, after one
untimed run of each. Both open the same index (MuSiQue-100 with the recorded OpenIE by default,
``benchmarks/.cache/musique100-openie``, built by ``hippo index ... --openie``), in the default
environment (no thread settings).

Children (each a fresh process):

* ``single``: open, ``warm()``, five untimed questions, then ``retrieve(q, k=10)`` for each
  question one at a time (``hippo`` retriever). The time of each call is split by wrapping the
  engine's parts: ``encode`` (every ``encode_queries`` call: the question and the NER mentions
  that match no name), ``ner`` (spaCy NER), ``prepare_other`` (name matching, nearest-entity
  search), ``rank`` (from the result's timings). ``peak_rss_mb`` is the process's VmHWM at the
  end: a query-only process;
* ``batch``: open, then ``retrieve_many`` of 1,000 questions (the questions repeated), twice;
  the second is timed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
INDEX = HERE / ".cache" / "musique100-openie"
QUESTIONS = REPO.parent / "shared" / "data" / "musique100" / "questions.json"


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, stdout=subprocess.PIPE, text=True).stdout.strip()


def vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(ms: list[float]) -> dict[str, float]:
    import numpy as np

    return {"p50": round(float(np.percentile(ms, 50)), 2), "p95": round(float(np.percentile(ms, 95)), 2),
            "mean": round(float(np.mean(ms)), 2)}


def child_single(index: str, questions: list[str]) -> dict[str, Any]:
    from hippo import open_index

    t = time.perf_counter()
    engine = open_index(index)
    engine.warm()
    open_s = time.perf_counter() - t
    spent: dict[str, float] = {"encode": 0.0, "ner": 0.0}

    def timed(part: str, fn: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            s = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[part] += time.perf_counter() - s
        return run

    engine.embedder.encode_queries = timed("encode", engine.embedder.encode_queries)  # type: ignore[method-assign]
    # where the NER recognizer lives moved with the living index (engine.queries); both revisions run this
    recognizer = engine.queries._recognizer if hasattr(engine, "queries") else engine._recognizer
    recognizer.mentions = timed("ner", recognizer.mentions)
    for q in questions[:5]:
        engine.retrieve(q, k=10)
    rows: dict[str, list[float]] = {"total": [], "encode": [], "ner": [], "prepare_other": [], "rank": []}
    for q in questions:
        spent.update(encode=0.0, ner=0.0)
        s = time.perf_counter()
        res = engine.retrieve(q, k=10)
        total = 1000 * (time.perf_counter() - s)
        enc, ner = 1000 * spent["encode"], 1000 * spent["ner"]
        rows["total"].append(total)
        rows["encode"].append(enc)
        rows["ner"].append(ner)
        rows["prepare_other"].append(res.timings_ms["embed"] - enc - ner)
        rows["rank"].append(res.timings_ms["rank"])
    return {"ms": {k: pct(v) for k, v in rows.items()}, "open_and_warm_s": round(open_s, 2), "peak_rss_mb": round(vm_hwm_mb(), 1)}


def child_batch(index: str, questions: list[str], n: int) -> dict[str, Any]:
    from hippo import open_index

    engine = open_index(index)
    batch = (questions * (n // len(questions) + 1))[:n]
    engine.retrieve_many(batch, k=10)
    s = time.perf_counter()
    engine.retrieve_many(batch, k=10)
    seconds = time.perf_counter() - s
    return {"batch_qps": round(n / seconds, 1), "batch_s": round(seconds, 2), "peak_rss_mb": round(vm_hwm_mb(), 1)}


def run_child(tree: Path, child: str, index: str, questions: str, batch: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, str(REPO / "benchmarks" / "query_latency.py"), "--child", child, "--index", index,
           "--questions", questions, "--batch", str(batch)]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, cwd=tree, env=env)
    row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", help="the earlier revision (commit)")
    ap.add_argument("--index", default=str(INDEX))
    ap.add_argument("--index-before", help="the index the earlier revision opens (default: --index); a revision "
                    "from before the living index reads only format 1, so give it a format-1 build of the same corpus")
    ap.add_argument("--questions", default=str(QUESTIONS))
    ap.add_argument("--runs", type=int, default=3, help="timed runs of each child and revision")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--tag", default="")
    ap.add_argument("--child", choices=["single", "batch"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        from hippo.evaluation import load_questions

        questions = [q.question for q in load_questions(args.questions)]
        row = child_single(args.index, questions) if args.child == "single" else child_batch(args.index, questions, args.batch)
        print(json.dumps(row))
        return
    if not args.before:
        ap.error("--before REV is required")
    index_before = args.index_before or args.index
    for path in {args.index, index_before}:
        if not Path(path, "CURRENT").exists():
            raise SystemExit(f"no index at {path}: build it with `hippo index CORPUS --out {path} --openie FILE`")
    before = git("rev-parse", "--short", args.before)
    after = git("rev-parse", "--short", "HEAD") + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {before: {"single": [], "batch": []}, after: {"single": [], "batch": []}}
    with tempfile.TemporaryDirectory(prefix="hippo-ql-") as tmp:
        old = Path(tmp) / f"hippo-{before}"
        git("worktree", "add", "--detach", str(old), before)
        try:
            trees = {before: old, after: REPO}
            index_of = {before: index_before, after: args.index}
            for rev, tree in trees.items():
                log(f"[query_latency] untimed run of {rev}")
                run_child(tree, "single", index_of[rev], args.questions, args.batch)
            for i in range(args.runs):
                for child in ("single", "batch"):
                    for rev, tree in (trees.items() if i % 2 == 0 else reversed(trees.items())):
                        rows[rev][child].append(run_child(tree, child, index_of[rev], args.questions, args.batch))
                        log(f"[query_latency] run {i + 1} {child} {rev}: {json.dumps(rows[rev][child][-1])}")
        finally:
            git("worktree", "remove", "--force", str(old))

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    summary = {
        rev: {
            "retrieve_p50_ms": median([r["ms"]["total"]["p50"] for r in rs["single"]]),
            "retrieve_p95_ms": median([r["ms"]["total"]["p95"] for r in rs["single"]]),
            "split_p50_ms": {part: median([r["ms"][part]["p50"] for r in rs["single"]]) for part in ("encode", "ner", "prepare_other", "rank")},
            "split_mean_ms": {part: median([r["ms"][part]["mean"] for r in rs["single"]]) for part in ("encode", "ner", "prepare_other", "rank")},
            "query_only_peak_rss_mb": median([r["peak_rss_mb"] for r in rs["single"]]),
            "open_and_warm_s": median([r["open_and_warm_s"] for r in rs["single"]]),
            "batch_qps": median([r["batch_qps"] for r in rs["batch"]]),
            "batch_peak_rss_mb": median([r["peak_rss_mb"] for r in rs["batch"]]),
        }
        for rev, rs in rows.items()
    }
    result = {"index": args.index, "index_before": index_before, "questions": args.questions, "runs": args.runs, "before": before, "after": after,
              "summary (median of runs)": summary, "rows": rows,
              "command": " ".join(["python", "benchmarks/query_latency.py", *sys.argv[1:]])}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"query_latency{'-' + args.tag if args.tag else ''}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    log(f"[saved] {path}")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
