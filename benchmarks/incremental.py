"""Benchmark the living index: MuSiQue-100 in 4 batches vs one shot, and a SIGKILL campaign.

    python benchmarks/incremental.py                       # both parts, writes benchmarks/results/
    python benchmarks/incremental.py --part batches        # 4 batches vs one-shot build, equivalence
    python benchmarks/incremental.py --part kill --kills 40

``batches``: the shared MuSiQue-100 corpus (recorded gpt-3.5-turbo OpenIE, packaged MiniLM)
is indexed once in one shot and once as 4 consecutive ``hippo index`` runs, each a fresh
process (so each pays the model load, as a user would). Then: the two indexes are compared
(nodes, edges, weights, vectors, retrieval on the 100 questions); the synonymy step of the
4th batch is timed against a full recomputation on the same vectors; deleting the 4th
batch is checked to give back the 3-batch index; 20 passages are deleted and re-inserted.

``kill``: a real ``hippo index`` (spaCy OpenIE, MiniLM) inserting 150 MuSiQue passages into a
300-passage index is killed with SIGKILL at random moments of every stage, again and again.
After every kill the index must be intact and equal to the old index or to the uninterrupted
result; every job is then finished and must equal the uninterrupted result byte for byte.
Work lives in a temporary folder (``--work``) that is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))  # this checkout's hippo, whatever is installed
DATA = REPO.parent / "shared" / "data" / "musique100"
OPENIE = DATA / "openie_gpt-3.5-turbo-1106.json"
RESULTS = HERE / "results"
ENV = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
PROGRESS = """
import sys
from hippo.cli import index_cmd
index_cmd.progress_bar = lambda: (lambda s, d, t: print(f"@ {s} {d} {t}", file=sys.stderr, flush=True))
from hippo.cli.main import main
sys.exit(main(sys.argv[1:]))
"""
"""``hippo`` with stage lines on stderr, so the kill campaign knows where the writer is."""


CPU: dict[str, float] = {}
"""CPU seconds (user + system) of the last ``hippo`` child, by its first argument: on a shared
machine wall time moves with the load, CPU time much less."""


def hippo(*args: str) -> tuple[dict[str, Any], float]:
    """Run ``hippo ARGS --json`` in a fresh process; (its JSON, wall seconds). Its CPU seconds
    go to ``CPU["last"]``."""
    t = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "hippo.cli.main", *args, "--json"],
                                stdout=subprocess.PIPE, stderr=err, text=True, env=ENV)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            sys.exit(f"hippo {' '.join(args)} failed: {err.read().strip()}")
    CPU["last"] = usage.ru_utime + usage.ru_stime
    return json.loads(out), time.perf_counter() - t


def gen_files(root: Path) -> dict[str, bytes]:
    gen = root / (root / "CURRENT").read_text().strip()
    return {p.name: p.read_bytes() for p in sorted(gen.iterdir()) if p.name != "stats.json"}


# --------------------------------------------------------------------------- 4 batches


def compare(a: Path, b: Path) -> dict[str, Any]:
    """How far index ``a`` is from index ``b``: structure exactly, floats by max difference."""
    import numpy as np

    from hippo.store import read_index_files

    fa, fb = read_index_files(a), read_index_files(b)
    out: dict[str, Any] = {}
    for name, key in (("passages.jsonl", "id"), ("facts.jsonl", "id")):
        out[f"same_{name.split('.')[0]}"] = [r[key] for r in fa.jsonl(name)] == [r[key] for r in fb.jsonl(name)]
    out["same_entities"] = fa.json("entities.json") == fb.json("entities.json")
    names = ["passage_vectors.npy", "entity_vectors.npy", "fact_vectors.npy"]
    out["vectors_max_abs_diff"] = max(float(np.abs(fa.array(n) - fb.array(n)).max()) for n in names)

    def edges(f: Any) -> dict[tuple[int, int, int], float]:
        return {(int(k), int(s), int(d)): float(w) for s, d, w, k in
                zip(f.array("edge_src.npy"), f.array("edge_dst.npy"), f.array("edge_weight.npy"), f.array("edge_kind.npy"))}

    ea, eb = edges(fa), edges(fb)
    common = ea.keys() & eb.keys()
    out["edges"] = {"a": len(ea), "b": len(eb), "only_a": len(ea.keys() - common), "only_b": len(eb.keys() - common),
                    "weight_max_abs_diff": max((abs(ea[k] - eb[k]) for k in common), default=0.0)}
    files_a, files_b = gen_files(a), gen_files(b)
    out["byte_identical_files"] = sorted(n for n in files_a if files_a[n] == files_b.get(n))
    out["differing_files"] = sorted(n for n in files_a if files_a[n] != files_b.get(n))
    return out


def retrieval_agreement(a: Path, b: Path) -> dict[str, Any]:
    from hippo import open_index
    from hippo.evaluation import evaluate, load_questions

    questions = load_questions(DATA / "questions.json")
    ea, eb = open_index(a), open_index(b)
    out: dict[str, Any] = {}
    for retriever in ("hippo", "hipporag2"):
        ra, rb = evaluate(ea, questions, retriever), evaluate(eb, questions, retriever)
        texts = [q.question for q in questions]
        ha, hb = ea.retrieve_many(texts, k=10, retriever=retriever), eb.retrieve_many(texts, k=10, retriever=retriever)
        same = sum(x.passage_ids == y.passage_ids for x, y in zip(ha, hb))
        diff = max(abs(p.score - q.score) for x, y in zip(ha, hb) for p, q in zip(x.hits, y.hits))
        out[retriever] = {"recall_incremental": ra["recall"], "recall_one_shot": rb["recall"],
                          "same_top10": f"{same}/{len(texts)}", "score_max_abs_diff": diff}
    return out


def synonymy_cost(index: Path, before: Path) -> dict[str, Any]:
    """The 4th batch's synonymy step (new entities vs all) vs a full recomputation, same vectors."""
    import numpy as np

    from hippo.graph.build import accept_synonyms, synonymy_candidates
    from hippo.ids import alnum_count
    from hippo.store import read_index_files

    files = read_index_files(index)
    vecs = np.asarray(files.array("entity_vectors.npy"))
    names = files.json("entities.json")["names"]
    known = set(read_index_files(before).json("entities.json")["names"])
    new = np.array([n not in known for n in names])
    g = files.manifest["config"]["graph"]
    eligible = np.array([alnum_count(n) >= g["synonymy_min_chars"] for n in names])

    def timed(mask: Any) -> tuple[float, int, Any]:
        best, res = float("inf"), None
        for _ in range(3):
            t = time.perf_counter()
            i, j, cos, scored = synonymy_candidates(vecs, g["synonymy_threshold"], mask)
            accept_synonyms(i, j, cos, eligible, g["synonymy_max_neighbors"])
            best, res = min(best, time.perf_counter() - t), (scored, (i, j))
        assert res is not None
        return best, res[0], res[1]

    inc_s, inc_pairs, (ni, nj) = timed(new)
    full_s, full_pairs, (fi, fj) = timed(None)
    stored = np.asarray(files.array("synonym_candidates.npy"))
    return {
        "entities": len(names), "new_entities": int(new.sum()),
        "incremental_s": round(inc_s, 3), "full_s": round(full_s, 3),
        "pairs_scored_incremental": inc_pairs, "pairs_scored_full": full_pairs,
        "new_candidates": len(ni), "all_candidates": len(fi), "stored_candidates": len(stored),
    }


def run_batches(work: Path) -> dict[str, Any]:
    docs = json.loads((DATA / "corpus.json").read_text())
    bounds = [round(len(docs) * k / 4) for k in range(5)]
    batches = []
    for k in range(4):
        path = work / f"batch{k + 1}.json"
        path.write_text(json.dumps(docs[bounds[k] : bounds[k + 1]]))
        batches.append(path)
    print("one-shot build ...", file=sys.stderr)
    one, one_wall = hippo("index", str(DATA / "corpus.json"), "--out", str(work / "oneshot"), "--openie", str(OPENIE))
    one_cpu = CPU["last"]
    inc = work / "incremental"
    runs = []
    for k, path in enumerate(batches):
        print(f"batch {k + 1} ...", file=sys.stderr)
        report, wall = hippo("index", str(path), "--out", str(inc), "--openie", str(OPENIE))
        runs.append({"wall_s": round(wall, 1), "cpu_s": round(CPU["last"], 1), "timings_s": report["timings_s"],
                     "passages": report["counts"]["passages"],
                     "embedded": report["changes"]["embedded"], "synonymy": report["changes"]["synonymy"]})
        if k == 2:
            shutil.copytree(inc, work / "after3")
    print("comparing ...", file=sys.stderr)
    result: dict[str, Any] = {
        "one_shot": {"wall_s": round(one_wall, 1), "cpu_s": round(one_cpu, 1), "timings_s": one["timings_s"],
                     "embedded": one["changes"]["embedded"]},
        "batches": runs,
        "incremental_wall_s": round(sum(r["wall_s"] for r in runs), 1),
        "incremental_cpu_s": round(sum(r["cpu_s"] for r in runs), 1),
        "incremental_total_s": round(sum(r["timings_s"]["total"] for r in runs), 1),
        "equivalence": compare(inc, work / "oneshot"),
        "retrieval": retrieval_agreement(inc, work / "oneshot"),
        "synonymy_4th_batch": synonymy_cost(inc, work / "after3"),
    }
    # Deleting the 4th batch gives back the 3-batch index (its vectors are reused, so exactly).
    ids = [json.loads(line)["id"] for line in (inc / (inc / "CURRENT").read_text().strip() / "passages.jsonl").open()]
    fourth = ids[bounds[3]:]
    deleted = work / "deleted"
    shutil.copytree(inc, deleted)
    report, wall = hippo("delete", str(deleted), "--ids", ",".join(fourth))
    result["delete_4th_batch"] = {"wall_s": round(wall, 1), "timings_s": report["timings_s"],
                                  "equals_3_batch_index": gen_files(deleted) == gen_files(work / "after3")}
    # A small change: delete 20 passages, insert them again.
    few = work / "few.json"
    few.write_text(json.dumps(docs[-20:]))
    report_d, wall_d = hippo("delete", str(inc), "--corpus", str(few))
    report_i, wall_i = hippo("index", str(few), "--out", str(inc), "--openie", str(OPENIE))
    result["small_change"] = {
        "delete_20": {"wall_s": round(wall_d, 1), "total_s": report_d["timings_s"]["total"]},
        "insert_20": {"wall_s": round(wall_i, 1), "total_s": report_i["timings_s"]["total"], "timings_s": report_i["timings_s"],
                      "embedded": report_i["changes"]["embedded"], "synonymy": report_i["changes"]["synonymy"]},
        "back_to_one_shot": compare(inc, work / "oneshot")["edges"],
    }
    return result


# --------------------------------------------------------------------------- kill campaign


def run_and_kill(corpus: Path, out: Path, stage: str, nth: int, delay: float, opts: list[str]) -> tuple[bool, list[tuple[str, int, int]]]:
    """Start ``hippo index``; SIGKILL it ``delay`` s after its ``nth`` ``stage`` line (``startup``:
    ``delay`` s after spawn). Returns (killed, the stage lines it printed)."""
    proc = subprocess.Popen([sys.executable, "-c", PROGRESS, "index", str(corpus), "--out", str(out), *opts],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    assert proc.stderr is not None
    lines: list[tuple[str, int, int]] = []
    if stage == "startup":
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    else:
        for raw in proc.stderr:
            if raw.startswith("@ "):
                s, d, t = raw.split()[1:]
                lines.append((s, int(d), int(t)))
                if s == stage and sum(1 for x in lines if x[0] == stage) >= nth:
                    time.sleep(delay)
                    proc.send_signal(signal.SIGKILL)
                    break
    _, rest = proc.communicate()
    lines += [(r.split()[1], int(r.split()[2]), int(r.split()[3])) for r in rest.splitlines() if r.startswith("@ ")]
    return proc.returncode == -signal.SIGKILL, lines


def run_kill(work: Path, kills: int, seed: int) -> dict[str, Any]:
    from hippo.store import read_index_files

    docs = json.loads((DATA / "corpus.json").read_text())
    base, extra = work / "base.json", work / "extra.json"
    base.write_text(json.dumps(docs[:300]))
    extra.write_text(json.dumps(docs[300:450]))
    opts = ["--extractor", "spacy", "--set", "runtime.checkpoint_passages=16", "--set", "runtime.checkpoint_strings=256"]
    print("base index (spaCy, MiniLM) ...", file=sys.stderr)
    hippo("index", str(base), "--out", str(work / "old"), *opts)
    shutil.copytree(work / "old", work / "new")
    print("uninterrupted insert ...", file=sys.stderr)
    clean, clean_wall = hippo("index", str(extra), "--out", str(work / "new"), *opts)
    old_files, new_files = gen_files(work / "old"), gen_files(work / "new")
    rng = random.Random(seed)
    step = {"extract": 16, "embed": 256}  # the checkpoint sizes set in opts
    delays = {"extract": 1.0, "embed": 0.5, "synonymy": 0.05, "graph": 0.01, "write": 0.01, "commit": 0.003, "startup": 4.0}
    reached: dict[str, int] = {}
    stats: dict[str, Any] = {"kills": 0, "runs_that_finished_first": 0, "readable": 0, "old": 0, "new": 0, "jobs": 0,
                             "jobs_equal_to_uninterrupted": 0, "reused_extractions": [], "reused_vectors": []}
    root: Path | None = None
    left: dict[str, int | None] = {}
    order: list[str] = []

    def lines_left(stage: str) -> int:
        """How many progress lines ``stage`` will still print (unknown: a guess)."""
        todo = left.get(stage)
        if todo is None:
            return {"extract": 10, "embed": 9, "write": 23}.get(stage, 1)
        return -(-todo // step[stage]) if stage in step else 1

    while stats["kills"] < kills:
        if root is None:
            stats["jobs"] += 1
            root = work / f"job{stats['jobs']}"
            shutil.copytree(work / "old", root)
            left = {}
            order = ["startup"] * (stats["jobs"] % 3 == 0) + ["extract", "extract", "embed", "embed"] + rng.sample(
                ["synonymy", "graph", "write", "commit"], 2)
        stage = order.pop(0)
        if lines_left(stage) < 1:
            continue  # that stage is already done for this job
        killed, lines = run_and_kill(extra, root, stage, rng.randint(1, lines_left(stage)), rng.uniform(0, delays[stage]), opts)
        for s, d, t in lines:
            if s in step:
                left[s] = t - d  # what the next run of this job still has to do
        if not killed:
            stats["runs_that_finished_first"] += 1
        else:
            stats["kills"] += 1
            last = lines[-1][0] if lines else "startup"
            reached[last] = reached.get(last, 0) + 1
        files = read_index_files(root)
        intact = files.verify() == []
        files.close()
        now = gen_files(root)
        stats["readable"] += intact and now in (old_files, new_files)
        stats["old"] += now == old_files
        stats["new"] += now == new_files
        if now == new_files or not order:
            report, _ = hippo("index", str(extra), "--out", str(root), *opts)
            if report["changes"]:
                stats["reused_extractions"].append(report["changes"]["reused"]["extractions"])
                stats["reused_vectors"].append(report["changes"]["reused"]["vectors"])
            stats["jobs_equal_to_uninterrupted"] += gen_files(root) == new_files
            shutil.rmtree(root)
            root = None
        print(f"  {stats['kills']} kills; last at {reached}", file=sys.stderr)
    if root is not None:
        hippo("index", str(extra), "--out", str(root), *opts)
        stats["jobs_equal_to_uninterrupted"] += gen_files(root) == new_files
    stats["after_kill_checks"] = stats["kills"] + stats["runs_that_finished_first"]
    return {"uninterrupted": {"wall_s": round(clean_wall, 1), "timings_s": clean["timings_s"],
                              "passages": 150, "strings_embedded": clean["changes"]["embedded"]},
            "stages_reached": reached, "distinct_stages": len(reached), **stats, "seed": seed}


# --------------------------------------------------------------------------- report


def render(env: dict[str, Any], res: dict[str, Any]) -> str:
    lines = ["# Incremental indexing benchmark", "", f"{env['machine']}, Python {env['python']}. The machine is shared: the load "
             "average (runnable processes on its 2 cores, sampled at the end of each part) says how busy it was.", ""]

    def ran(part: dict[str, Any]) -> list[str]:
        e = part.get("env", env)
        load = ", ".join(f"{x:.1f}" for x in e.get("load", ())) or "not recorded"
        return [f"`{e['command']}` on {e['date']}; load average {load}.", ""]

    b = res.get("batches")
    if b:
        one, runs = b["one_shot"], b["batches"]
        lines += ["## MuSiQue-100 in 4 batches vs one shot (recorded OpenIE, MiniLM)", "", *ran(b),
                  "| run | passages after | wall s | CPU s | total s | extract s | embed s | synonymy s | graph s | write s | strings embedded | new / all entities |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|",
                  f"| one shot | 1890 | {one['wall_s']} | {one['cpu_s']} | {one['timings_s']['total']} | {one['timings_s']['extract']} | {one['timings_s']['embed']} | "
                  f"{one['timings_s']['synonymy']} | {one['timings_s']['graph']} | {one['timings_s']['write']} | {one['embedded']} | all |"]
        for k, r in enumerate(runs, 1):
            t, s = r["timings_s"], r["synonymy"]
            lines.append(f"| batch {k} | {r['passages']} | {r['wall_s']} | {r['cpu_s']} | {t['total']} | {t['extract']} | {t['embed']} | {t['synonymy']} | "
                         f"{t['graph']} | {t['write']} | {r['embedded']} | {s['new_entities']} / {s['entities']} |")
        lines += ["", f"Incremental total: **{b['incremental_wall_s']} s** wall, {b['incremental_cpu_s']} CPU s over 4 processes "
                  f"({b['incremental_total_s']} s inside `build_index`), vs **{one['wall_s']} s** wall, {one['cpu_s']} CPU s for the "
                  f"one-shot build ({one['timings_s']['total']} s inside). \"total s\" is measured inside `build_index` (embed "
                  f"includes loading the model); wall and CPU add interpreter start-up and imports. Each of the 4 runs pays both, "
                  f"and CPU time is the fairer figure on a shared machine.", ""]
        s = b["synonymy_4th_batch"]
        lines += ["### Synonymy step of the 4th batch vs a full recomputation (same vectors, best of 3)", "",
                  "| | entities scored against all | pairs scored | seconds | candidates found |", "|---|---|---|---|---|",
                  f"| 4th batch (incremental) | {s['new_entities']} new of {s['entities']} | {s['pairs_scored_incremental']:,} | {s['incremental_s']} | {s['new_candidates']} |",
                  f"| full recomputation | all {s['entities']} | {s['pairs_scored_full']:,} | {s['full_s']} | {s['all_candidates']} |", "",
                  f"Stored candidates after the 4th batch: {s['stored_candidates']} (the full recomputation finds {s['all_candidates']}).", ""]
        e = b["equivalence"]
        lines += ["### Equivalence with the one-shot build", "",
                  f"- Same passages, entities and facts in the same order: {e['same_passages'] and e['same_entities'] and e['same_facts']}.",
                  f"- Edges: {e['edges']['a']} vs {e['edges']['b']}; only in the incremental index {e['edges']['only_a']}, only in the "
                  f"one-shot {e['edges']['only_b']}; largest weight difference {e['edges']['weight_max_abs_diff']:.2e}.",
                  f"- Vectors: largest difference {e['vectors_max_abs_diff']:.2e} (MiniLM batches strings differently when they "
                  f"arrive in 4 runs); byte-identical files: {', '.join(e['byte_identical_files'])}.", ""]
        lines += ["| retriever | same top-10 (100 questions) | largest score difference | R@2 / R@5 incremental | R@2 / R@5 one shot |", "|---|---|---|---|---|"]
        for name, r in b["retrieval"].items():
            ri, ro = r["recall_incremental"], r["recall_one_shot"]
            lines.append(f"| {name} | {r['same_top10']} | {r['score_max_abs_diff']:.2e} | {ri['2']:.3f} / {ri['5']:.3f} | {ro['2']:.3f} / {ro['5']:.3f} |")
        d, sc = b["delete_4th_batch"], b["small_change"]
        lines += ["", f"- Deleting the 4th batch ({d['wall_s']} s wall, {d['timings_s']['total']} s inside) gives back the 3-batch index "
                  f"byte for byte: {d['equals_3_batch_index']}.",
                  f"- Deleting 20 passages: {sc['delete_20']['wall_s']} s wall ({sc['delete_20']['total_s']} s inside); inserting them again: "
                  f"{sc['insert_20']['wall_s']} s wall ({sc['insert_20']['total_s']} s inside, of which embed {sc['insert_20'].get('timings_s', {}).get('embed', '?')} s "
                  f"with the model load; {sc['insert_20']['embedded']} strings embedded, synonymy {sc['insert_20']['synonymy']['seconds']} s for "
                  f"{sc['insert_20']['synonymy']['new_entities']} new of {sc['insert_20']['synonymy']['entities']} entities).", ""]
    k = res.get("kill")
    if k:
        u = k["uninterrupted"]
        lines += ["## SIGKILL campaign (spaCy OpenIE + MiniLM; insert 150 passages into a 300-passage index)", "", *ran(k),
                  f"Uninterrupted insert: {u['wall_s']} s wall ({u['timings_s']['extract']} s extract, {u['timings_s']['embed']} s embed).", "",
                  f"- Kills: **{k['kills']}** over {k['jobs']} jobs; runs that finished before their kill: {k['runs_that_finished_first']}.",
                  f"- Distinct stages reached at the kill: **{k['distinct_stages']}** ({', '.join(f'{s} {n}' for s, n in sorted(k['stages_reached'].items()))}).",
                  f"- Index intact and equal to the old or the new one after a kill: **{k['readable']}/{k['after_kill_checks']}** "
                  f"(old {k['old']}, new {k['new']}).",
                  f"- Jobs finished by a re-run and byte-identical to the uninterrupted insert: **{k['jobs_equal_to_uninterrupted']}/{k['jobs']}**.",
                  f"- Work reused by the finishing runs: extractions {k['reused_extractions']}, vectors {k['reused_vectors']}.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["batches", "kill", "all"], default="all")
    ap.add_argument("--kills", type=int, default=40)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--work", type=Path, help="work folder (default: a temporary one, deleted at the end)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not write benchmarks/results/")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="hippo-incremental-"))
    work.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {}
    previous = RESULTS / "incremental.json"
    if previous.exists() and args.part != "all":
        res = json.loads(previous.read_text()).get("results", {})  # keep the other part's numbers
    env = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "python": platform.python_version(), "command": "python benchmarks/incremental.py " + " ".join(sys.argv[1:])}
    try:
        if args.part in ("batches", "all"):
            (work / "b").mkdir(exist_ok=True)
            res["batches"] = {**run_batches(work / "b"), "env": {**env, "load": os.getloadavg()}}
        if args.part in ("kill", "all"):
            (work / "k").mkdir(exist_ok=True)
            res["kill"] = {**run_kill(work / "k", args.kills, args.seed), "env": {**env, "load": os.getloadavg()}}
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    md = render(env, res)
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        previous.write_text(json.dumps({"env": env, "results": res}, indent=1) + "\n")
        (RESULTS / "incremental.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
