"""PageRank by forward push or by conjugate gradients: latency and rankings (issue 22).

    python benchmarks/ppr_method.py musique=benchmarks/.cache/musique100-openie:/work/shared/data/musique100/questions.json
    python benchmarks/ppr_method.py synth10k=benchmarks/.cache/scale-10000:synthetic   # after scale.py --child build

For each index, the questions are prepared once (embedding, entities), then ranked by the
``hippo`` retriever (``Engine.rank_prepared``, k = 20) with each PageRank setting:

* ``cg``: conjugate gradients, every passage seeded (what ``auto`` chose below 200,000 nodes);
* ``push-all``: forward push from the same reset vector (``ppr_method=push``,
  ``passage_seed_top_k=0``);
* ``push-200``: forward push seeding the 200 most similar passages (what ``ppr_method=push`` with
  the default ``passage_seed_top_k=-1`` does, and ``auto`` from 200,000 nodes on); its exact
  reference seeds the same 200.

Each is timed one question at a time (``--rounds`` rounds, settings interleaved) and as one
batch of 1,000 questions (the questions repeated, as ``retrieve_many`` ranks them), and its top
10 is compared with the exact solution from the same reset vector (conjugate gradients to
1e-12). With gold passages (MuSiQue), Recall@1/2/5/10/20 too. ``synthetic`` questions are
those of ``benchmarks/scale.py`` (one per planted query; cost figures, not quality).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
KS = (1, 2, 5, 10, 20)
SETTINGS = {
    "cg": {"retrieval.ppr_method": "cg", "retrieval.passage_seed_top_k": -1},
    "push-all": {"retrieval.ppr_method": "push", "retrieval.passage_seed_top_k": 0},
    "push-200": {"retrieval.ppr_method": "push", "retrieval.passage_seed_top_k": 200},
}
EXACT = {"retrieval.ppr_method": "cg", "retrieval.ppr_tol": 1e-12, "retrieval.ppr_max_iter": 1000}


def pct(ms: list[float]) -> dict[str, float]:
    return {"p50": round(float(np.percentile(ms, 50)), 3), "p95": round(float(np.percentile(ms, 95)), 3)}


def synthetic_questions(engine: Any, index: Path) -> list[str]:
    sys.path.insert(0, str(HERE))
    from scale import query_texts  # noqa: PLC0415 - the benchmark next to this one

    n = int(engine.manifest["counts"]["passages"])
    folder = HERE / ".cache" / f"synth-{n}"
    rows = json.loads((folder / "queries.json").read_text())
    relations = json.loads((folder / "relations.json").read_text())
    return query_texts(engine, rows, relations)[:200]


def measure(index: str, questions: str, rounds: int, batch_n: int) -> dict[str, Any]:
    from hippo import open_index
    from hippo.evaluation import GoldMatcher, load_questions, recall_at
    from hippo.retrieval.hipporag import ppr_plan

    engine = open_index(index)
    golds = None
    if questions == "synthetic":
        texts = synthetic_questions(engine, Path(index))
    else:
        qs = load_questions(questions)
        texts = [q.question for q in qs]
        gm = GoldMatcher(engine.passage_ids, engine.passage_titles, engine.passage_contents)
        golds = [[gm.match(t, c)[0] or f"\x00missing{i}" for i, (t, c) in enumerate(q.gold)] for q in qs]
    prepared = engine.prepare(texts)
    engines = {name: engine.with_overrides(s) for name, s in SETTINGS.items()}
    exact = {name: engine.with_overrides({**s, **EXACT}) for name, s in SETTINGS.items()}
    for e in engines.values():
        e.rank_prepared(prepared[:2], 20)  # compile the push kernel, build the CG matrices
    times: dict[str, list[float]] = {name: [] for name in SETTINGS}
    order = list(SETTINGS)
    for r in range(rounds):
        for i in range(len(texts)):
            turn = order[(i + r) % len(order):] + order[: (i + r) % len(order)]
            for name in turn:
                s = time.perf_counter()
                engines[name].rank_prepared(prepared[i : i + 1], 20)
                times[name].append(1000 * (time.perf_counter() - s))
    reps = -(-batch_n // len(texts))
    from hippo.engine import QueryBatch

    big = QueryBatch(tuple((list(prepared.queries) * reps)[:batch_n]), np.tile(prepared.fact_vectors, (reps, 1))[:batch_n],
                     np.tile(prepared.passage_vectors, (reps, 1))[:batch_n], tuple((list(prepared.entities) * reps)[:batch_n]))
    out: dict[str, Any] = {"index": index, "questions": len(texts), "nodes": engine.solver.n,
                           "auto_today": ppr_plan(engine.config.retrieval, engine.solver.n)[0], "settings": {}}
    for name in SETTINGS:
        s = time.perf_counter()
        engines[name].rank_prepared(big, 20)
        batch_s = time.perf_counter() - s
        got = engines[name].rank_prepared(prepared, 20)
        ref = exact[name].rank_prepared(prepared, 20)
        same10 = float(np.mean([r.passages[:10].tolist() == g.passages[:10].tolist() for r, g in zip(ref, got)]))
        same10_set = float(np.mean([set(r.passages[:10].tolist()) == set(g.passages[:10].tolist()) for r, g in zip(ref, got)]))
        row: dict[str, Any] = {"rank_ms": pct(times[name]), "batch_qps": round(batch_n / batch_s, 1),
                               "top10_identical_to_exact": same10, "top10_same_set_as_exact": same10_set}
        if golds is not None:
            for label, rankings in (("recall", got), ("recall_exact", ref)):
                ranked = [[engine.passage_ids[i] for i in r.passages.tolist()] for r in rankings]
                row[label] = {str(k): round(float(np.mean([recall_at(rk, g, k) for rk, g in zip(ranked, golds)])), 4) for k in KS}
        out["settings"][name] = row
        print(f"{Path(index).name:22s} {name:9s} {json.dumps(row)}", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", nargs="+", help="NAME=INDEX_DIR:QUESTIONS_FILE (or :synthetic)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--out", default=str(HERE / "results" / "ppr_method.json"))
    args = ap.parse_args()
    result: dict[str, Any] = {"sets": {}, "command": " ".join(["python", "benchmarks/ppr_method.py", *sys.argv[1:]])}
    for item in args.sets:
        name, _, rest = item.partition("=")
        index, _, qfile = rest.partition(":")
        result["sets"][name] = measure(index, qfile, args.rounds, args.batch)
    Path(args.out).parent.mkdir(exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: {n: (r["rank_ms"]["p50"], r["batch_qps"], r["top10_identical_to_exact"]) for n, r in s["settings"].items()}
                      for k, s in result["sets"].items()}))


if __name__ == "__main__":
    main()
