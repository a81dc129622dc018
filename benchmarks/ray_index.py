"""Distributed indexing on Ray (issue 21): equivalence, faults, scaling, cost model.

Run each part under the shared CPU lock, e.g.::

    flock /tmp/hippo-cpu.lock python benchmarks/ray_index.py --equivalence   # MuSiQue-100 + 2Wiki, 1/2 workers
    flock /tmp/hippo-cpu.lock python benchmarks/ray_index.py --equivalence --corpora musique100 --only local-1thread,ray-1
                                                                              # the 1-worker overhead pair again
    flock /tmp/hippo-cpu.lock python benchmarks/ray_index.py --kills 10       # SIGKILL workers at random points
    flock /tmp/hippo-cpu.lock python benchmarks/ray_index.py --driver-kill    # SIGKILL the driver, then resume
    flock /tmp/hippo-cpu.lock python benchmarks/ray_index.py --assembly       # driver-side assembly at 1e5, 1e6
    python benchmarks/ray_index.py --report                                   # cost model + ray.md

Every build is ``hippo index`` in a child process (``--json``), with ``--ray local`` (a private
Ray instance on this machine) or without (today's single-process indexer). Indexes are compared
file by file (:func:`hippo.distributed.verify.index_differences`, ``stats.json`` aside).
Results: ``benchmarks/results/ray.json`` (one section per part) and ``ray.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
CACHE = HERE / ".cache" / "ray"
RESULTS = HERE / "results"
DATA = REPO.parent / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")
CORPORA = {"musique100": DATA / "musique100" / "corpus.json", "2wiki": DATA / "2wiki" / "corpus.json"}
QUESTIONS = {"musique100": DATA / "musique100" / "questions.json", "2wiki": HERE / "data" / "2wiki_handwritten.json"}
"""Gold questions per corpus: MuSiQue-100's own, and the 80 hand-written 2Wiki questions."""


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("HIPPO_")}
    e.update(PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return e


def index_cmd(corpus: Path, out: Path, ray_workers: int | None = None, threads: int | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "hippo.cli.main", "index", str(corpus), "--out", str(out), "--json"]
    if ray_workers is not None:
        cmd += ["--ray", "local", "--ray-workers", str(ray_workers)]
    if threads is not None:
        cmd += ["--set", f"runtime.threads={threads}"]
    return cmd


def build(corpus: Path, out: Path, ray_workers: int | None = None, threads: int | None = None) -> dict[str, Any]:
    """One ``hippo index`` in a child process, from scratch; its JSON plus the wall time."""
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    done = subprocess.run(index_cmd(corpus, out, ray_workers, threads), env=env(), capture_output=True, text=True)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"build failed: {done.stderr[-3000:]}")
    report = json.loads(done.stdout)
    report["wall_s"] = round(wall, 2)
    return report


def rates(report: dict[str, Any]) -> dict[str, Any]:
    """Rows and rows/s of the extract and embed stages (the indexer's own stage timings)."""
    t, ch = report["timings_s"], report["changes"]
    out = {
        "extract": {"rows": ch["extracted"], "seconds": t["extract"], "rows_per_s": round(ch["extracted"] / t["extract"], 2)},
        "embed": {"rows": ch["embedded"], "seconds": t["embed"], "rows_per_s": round(ch["embedded"] / t["embed"], 2)},
        "driver_s": {k: t[k] for k in ("synonymy", "graph", "write") if k in t},
        "total_s": t["total"], "wall_s": report["wall_s"],
    }
    if "ray" in report:
        r = report["ray"]
        out["ray"] = {"connect_s": r["cluster"]["connect_s"], **{s: r[s] for s in ("extract", "embed") if s in r}}
    return out


def differences(a: Path, b: Path) -> list[str]:
    from hippo.distributed.verify import index_differences

    return index_differences(a, b)


def file_count(root: Path) -> int:
    from hippo.distributed.verify import file_count as count

    return count(root)


def recall(index: Path, questions: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "hippo.cli.main", "eval", str(index), "--questions", str(questions), "--json"],
                          env=env(), capture_output=True, text=True, check=True)
    rep = json.loads(done.stdout)
    return {"recall": rep["recall"], "gold_missing": rep["gold_missing"]}


def same_hits(a: Path, b: Path, corpus: Path, n: int = 200) -> dict[str, Any]:
    """Top-10 passage ids and scores of ``n`` queries (passage titles) on both indexes."""
    import hippo

    items = json.loads(corpus.read_text())
    queries = [f"What is known about {x['title']}?" for x in items[:: max(1, len(items) // n)][:n]]
    ea, eb = hippo.open_index(a), hippo.open_index(b)
    ra, rb = ea.retrieve_many(queries, k=10), eb.retrieve_many(queries, k=10)
    same = sum(1 for x, y in zip(ra, rb) if [(h.passage_id, h.score) for h in x.hits] == [(h.passage_id, h.score) for h in y.hits])
    return {"queries": len(queries), "identical_top10_with_scores": same}


def save(section: str, data: dict[str, Any]) -> None:
    path = RESULTS / "ray.json"
    doc = json.loads(path.read_text()) if path.exists() else {}
    doc[section] = data
    doc.setdefault("machine", {"cores": os.cpu_count(), "note": "2-core shared VM; every part run under flock /tmp/hippo-cpu.lock"})
    path.write_text(json.dumps(doc, indent=1) + "\n")


# --------------------------------------------------------------------------- parts


def equivalence(names: list[str], only: list[str] | None = None) -> None:
    """Build each corpus single-process and on Ray, compare files, recall and hits. ``only``
    rebuilds just those labels and keeps the other builds (and their recorded rates) from the
    previous run: e.g. the scaling pair again on a quiet machine."""
    path = RESULTS / "ray.json"
    out: dict[str, Any] = json.loads(path.read_text()).get("equivalence", {}) if path.exists() else {}
    for name in names:
        corpus = CORPORA[name]
        base = CACHE / name
        runs: dict[str, Any] = dict(out.get(name, {}).get("runs", {})) if only else {}
        plan: list[tuple[str, int | None, int | None]] = [("local", None, None), ("ray-2", 2, None)]
        if name == "musique100":  # the scaling runs: same run, same corpus
            plan += [("local-1thread", None, 1), ("ray-1", 1, None)]
        for label, workers, threads in plan:
            if only and label not in only:
                if label not in runs or not (base / label).exists():
                    raise SystemExit(f"--only {','.join(only)}: no earlier {label} build of {name} to keep")
                continue
            log(f"{name}: {label} ...")
            rep = build(corpus, base / label, workers, threads)
            runs[label] = rates(rep)
            runs[label]["counts"] = {k: rep["counts"][k] for k in ("passages", "entities", "facts")}
            log(f"  {json.dumps(runs[label])[:400]}")
        res: dict[str, Any] = {"runs": runs, "files_compared": file_count(base / "local")}
        for label in runs:
            if label.startswith("ray"):
                res[f"differences_{label}"] = differences(base / "local", base / label)
        if name in QUESTIONS:
            res["recall"] = {label: recall(base / label, QUESTIONS[name]) for label in ("local", "ray-2", "ray-1") if label in runs}
            res["recall_identical"] = all(res["recall"][x] == res["recall"]["local"] for x in res["recall"])
        res["retrieval"] = same_hits(base / "local", base / "ray-2", corpus)
        if name == "musique100":
            r = runs
            res["overhead_1_worker"] = {
                stage: round(r["local-1thread"][stage]["rows_per_s"] / r["ray-1"][stage]["rows_per_s"] - 1, 4)
                for stage in ("extract", "embed")
            }
            res["speedup_2_workers_vs_local"] = {
                stage: round(r["ray-2"][stage]["rows_per_s"] / r["local"][stage]["rows_per_s"], 3) for stage in ("extract", "embed")
            }
        out[name] = res
        log(json.dumps({k: v for k, v in res.items() if k != "runs"}, indent=1))
        save("equivalence", out)


def _descendants(root: int) -> dict[int, str]:
    """pid -> command line of every process below ``root`` (from /proc)."""
    parent: dict[int, int] = {}
    cmd: dict[int, str] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            parent[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            cmd[int(d.name)] = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, ValueError, IndexError):
            continue
    out: dict[int, str] = {}
    todo = [root]
    while todo:
        p = todo.pop()
        for c, pp in parent.items():
            if pp == p and c not in out:
                out[c] = cmd.get(c, "")
                todo.append(c)
    return out


def kills(target: int, seed: int) -> None:
    """SIGKILL a random map worker every U(4, 14) s until ``target`` kills (the run recorded in
    ``ray.json`` went on killing until its job ended: the cap came after it); the job must
    finish with the local index's files."""
    corpus = CORPORA["musique100"]
    reference = CACHE / "musique100" / "local"
    if not reference.exists():
        build(corpus, reference)
    rng = random.Random(seed)
    jobs: list[dict[str, Any]] = []
    total = 0
    while total < target:
        out = CACHE / "musique100" / f"kills-{len(jobs)}"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        proc = subprocess.Popen(index_cmd(corpus, out, 2), env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        record: list[dict[str, Any]] = []
        stop = threading.Event()

        def killer() -> None:
            while len(record) < max(1, target - total) and not stop.wait(rng.uniform(4, 14)):
                workers = {p: c for p, c in _descendants(proc.pid).items() if c.startswith("ray::MapWorker")}
                if not workers:
                    continue
                pid = rng.choice(sorted(workers))
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                record.append({"t_s": round(time.perf_counter() - t0, 1), "pid": pid, "process": workers[pid][:90]})
                log(f"  killed {pid} at {record[-1]['t_s']} s: {workers[pid][:90]}")

        th = threading.Thread(target=killer, daemon=True)
        th.start()
        stdout, stderr = proc.communicate()
        stop.set()
        th.join()
        if proc.returncode != 0:
            raise SystemExit(f"job failed after kills: {stderr[-3000:]}")
        try:
            rep = json.loads(stdout)
        except ValueError:
            raise SystemExit(f"job exited 0 without its --json report; its stderr ends: {stderr[-3000:]}") from None
        diff = differences(reference, out)
        jobs.append({"kills": record, "wall_s": round(time.perf_counter() - t0, 1), "differences": diff,
                     "worker_processes": {s: rep["ray"][s]["worker_processes"] for s in ("extract", "embed")},
                     "workers": {s: rep["ray"][s]["workers"] for s in ("extract", "embed")}})
        total += len(record)
        log(f"job {len(jobs)}: {len(record)} kills, identical: {not diff}")
        save("worker_kills", {"target": target, "seed": seed, "total_kills": total, "jobs": jobs,
                              "all_identical": all(not j["differences"] for j in jobs)})


def _cache_rows(out: Path) -> dict[str, int]:
    work = out / ".work"
    ex = work / "extractions.jsonl"
    n_ex = sum(1 for line in ex.read_bytes().split(b"\n") if line.strip()) if ex.exists() else 0
    n_vec = 0
    for f in sorted((work / "vectors").glob("*.json")) if (work / "vectors").is_dir() else []:
        if f.with_suffix(".npy").exists():
            n_vec += len(json.loads(f.read_text()))
    return {"extractions": n_ex, "vectors": n_vec}


def driver_kill(seed: int) -> None:
    """SIGKILL the driver at a random point of the embed stage, stop its Ray processes, re-run."""
    corpus = CORPORA["musique100"]
    reference = CACHE / "musique100" / "local"
    if not reference.exists():
        build(corpus, reference)
    rng = random.Random(seed)
    out = CACHE / "musique100" / "driver-kill"
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.Popen(index_cmd(corpus, out, 2), env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    chunks_before_kill = rng.randint(2, 8)
    while proc.poll() is None:
        vec = out / ".work" / "vectors"
        if vec.is_dir() and len(list(vec.glob("*.npy"))) >= chunks_before_kill:
            break
        time.sleep(0.2)
    time.sleep(rng.uniform(0, 5))
    below = _descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for pid in below:  # the private Ray instance the killed driver had started
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    at_kill = _cache_rows(out)
    log(f"driver killed; resume cache holds {at_kill}")
    rep = build_resume(corpus, out)
    ch = rep["changes"]
    total_strings = rep["counts"]["distinct_strings"]
    res = {
        "killed_after_vector_chunks": chunks_before_kill, "resume_cache_at_kill": at_kill,
        "rerun": {"reused_extractions": ch["reused"]["extractions"], "reused_vectors": ch["reused"]["vectors"],
                  "extracted": ch["extracted"], "embedded": ch["embedded"], "wall_s": rep["wall_s"]},
        "passages": rep["counts"]["passages"], "distinct_strings": total_strings,
        "differences": differences(reference, out),
        "note": "rows recomputed = rows the re-run computed that the killed run had finished on its workers but "
                "not yet checkpointed: at most the parts in flight (2 workers x one checkpoint each)",
    }
    res["rows_recomputed_upper_bound"] = 2 * 2048
    log(json.dumps(res, indent=1))
    save("driver_kill", res)


def driver_kill_sample(seed: int) -> None:
    """The light variant (no CPU lock needed): ``graphs/sample`` with the hashing embedder, the
    driver SIGKILLed during extraction after a random number of 8-passage checkpoints."""
    corpus = REPO / "graphs" / "sample" / "corpus.json"
    sets = ["--set", "embed.model=hashing:64", "--set", "runtime.checkpoint_passages=8"]
    base = CACHE / "sample"
    shutil.rmtree(base, ignore_errors=True)
    subprocess.run(index_cmd(corpus, base / "local") + sets, env=env(), capture_output=True, check=True)
    rng = random.Random(seed)
    out = base / "driver-kill"
    proc = subprocess.Popen(index_cmd(corpus, out, 2) + sets, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    want = rng.randint(2, 10)
    lines = 0
    while proc.poll() is None and lines < want * 8:
        ex = out / ".work" / "extractions.jsonl"
        lines = sum(1 for x in ex.read_bytes().split(b"\n") if x.strip()) if ex.exists() else 0
        time.sleep(0.05)
    below = _descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for pid in below:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    at_kill = _cache_rows(out)
    done = subprocess.run(index_cmd(corpus, out, 2) + sets, env=env(), capture_output=True, text=True, check=True)
    rep = json.loads(done.stdout)
    ch = rep["changes"]
    res = {"corpus": "graphs/sample (119 passages), hashing embedder, 8-passage checkpoints",
           "resume_cache_at_kill": at_kill, "passages": rep["counts"]["passages"],
           "rerun": {"reused_extractions": ch["reused"]["extractions"], "extracted": ch["extracted"],
                     "embedded": ch["embedded"]},
           "computed_by_rerun_beyond_cache": ch["extracted"] - (rep["counts"]["passages"] - at_kill["extractions"]),
           "in_flight_bound": 2 * 8,
           "differences": differences(base / "local", out)}
    log(json.dumps(res, indent=1))
    save("driver_kill_sample", res)


def build_resume(corpus: Path, out: Path) -> dict[str, Any]:
    t = time.perf_counter()
    done = subprocess.run(index_cmd(corpus, out, 2), env=env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    rep = json.loads(done.stdout)
    rep["wall_s"] = round(time.perf_counter() - t, 2)
    return rep


def assembly(sizes: list[int]) -> None:
    """Driver-side work the Ray path keeps, on synthetic extractions: the knowledge base
    (entity and fact dedup across shards) and the gather of vectors into the index arrays.
    Synonymy, graph, strings, ANN and write are taken from ``scale-N.json`` (same code)."""
    import gc

    import numpy as np

    from hippo.kb import build_kb
    from hippo.types import Extraction, Passage

    out: dict[str, Any] = {}
    for n in sizes:
        rng = np.random.default_rng(0)
        vocab = 5 * n
        ents = rng.zipf(1.3, size=(n, 6)) % vocab
        rels = rng.integers(0, 2000, size=(n, 9))
        passages = [Passage(f"p{i}", f"text {i}", "") for i in range(n)]
        extractions = []
        for i in range(n):
            e = [f"entity {x}" for x in ents[i]]
            triples = tuple((e[j % 6], f"rel {rels[i, j]}", e[(j + 1) % 6]) for j in range(9))
            extractions.append(Extraction(f"p{i}", tuple(dict.fromkeys(e)), triples))
        gc.collect()
        t = time.perf_counter()
        kb = build_kb(passages, extractions)
        kb_s = time.perf_counter() - t
        texts = [p.content for p in passages] + kb.entity_names + [f.as_text("plain") for f in kb.facts]
        row: dict[str, Any] = {"passages": n, "entities": len(kb.entity_names), "facts": len(kb.facts),
                               "kb_s": round(kb_s, 2), "strings": len(texts)}
        if len(texts) * 384 * 4 * 2 < (4 << 30):
            # Stages.embed's gather: every string's vector from a dict into the index array
            # (both hold every vector: 2 x strings x 1.5 KB; measured only where that fits here)
            dim = 384
            block = np.zeros((len(texts), dim), dtype=np.float32)
            known = dict(zip(dict.fromkeys(texts), block))
            t = time.perf_counter()
            arr = np.zeros((len(texts), dim), dtype=np.float32)
            for r, s in enumerate(texts):
                arr[r] = known[s]
            row["vector_gather_s"] = round(time.perf_counter() - t, 2)
            del block, known, arr
        out[str(n)] = row
        log(out[str(n)])
        del passages, extractions, kb, texts
        gc.collect()
    save("assembly", out)


GPU_MINILM_PER_S = 14_200
"""all-MiniLM-L6-v2 encoding speed on one V100 GPU, sentences/s, as published in the
sentence-transformers model table (sbert.net, "Pretrained Models"; CPU: 750)."""
NODES = (1, 4, 16, 64, 256)


def fit(points: dict[int, float], n: int) -> float:
    """Power-law extrapolation through the two largest measured sizes."""
    import math

    (n1, t1), (n2, t2) = sorted(points.items())[-2:]
    b = math.log(t2 / t1) / math.log(n2 / n1) if t1 > 0 and t2 > 0 else 1.0
    return t2 * (n / n2) ** b


def cost_model(doc: dict[str, Any]) -> dict[str, Any]:
    """10^7 passages on N nodes of this kind (2 cores), stage by stage, from rates measured here."""
    mq = doc["equivalence"]["musique100"]["runs"]
    per_node_ex = mq["ray-2"]["extract"]["rows_per_s"]
    per_node_em = mq["ray-2"]["embed"]["rows_per_s"]
    strings_per_passage = mq["local"]["embed"]["rows"] / mq["local"]["counts"]["passages"]
    n = 10_000_000
    strings = n * strings_per_passage
    points: dict[str, dict[int, float]] = {}
    for size in (100_000, 1_000_000):
        scale = json.loads((RESULTS / f"scale-{size}.json").read_text())["detail"]["build"]["timings_s"]
        for stage in ("containment", "synonymy", "graph", "strings", "ann", "write"):
            points.setdefault(stage, {})[size] = float(scale[stage])
        asm = doc.get("assembly", {}).get(str(size))
        if asm:
            points.setdefault("knowledge base", {})[size] = asm["kb_s"]
    gathers = [a for a in doc.get("assembly", {}).values() if "vector_gather_s" in a]
    driver = {stage: round(fit(pts, n)) for stage, pts in points.items()}
    if gathers:  # linear in the strings: one dict lookup and one row copy each
        g = max(gathers, key=lambda a: a["strings"])
        driver["vector gather"] = round(g["vector_gather_s"] / g["strings"] * strings)
    driver_total = sum(driver.values())
    rows = []
    for nodes in NODES:
        ex = n / (per_node_ex * nodes)
        em_cpu = strings / (per_node_em * nodes)
        em_gpu = strings / (GPU_MINILM_PER_S * nodes)
        cpu_first = max(("extraction", ex), ("embedding", em_cpu), ("driver assembly", driver_total), key=lambda x: x[1])[0]
        gpu_first = max(("extraction", ex), ("embedding", em_gpu), ("driver assembly", driver_total), key=lambda x: x[1])[0]
        rows.append({"nodes": nodes, "extract_h": round(ex / 3600, 2), "embed_cpu_h": round(em_cpu / 3600, 2),
                     "embed_gpu_h": round(em_gpu / 3600, 2), "driver_h": round(driver_total / 3600, 2),
                     "bottleneck_cpu": cpu_first, "bottleneck_gpu": gpu_first})
    counts = mq["local"]["counts"]
    return {"passages": n, "strings_per_passage": round(strings_per_passage, 3),
            "entities_per_passage": round(counts["entities"] / counts["passages"], 1),
            "facts_per_passage": round(counts["facts"] / counts["passages"], 1), "node_extract_rows_per_s": per_node_ex,
            "node_embed_rows_per_s": per_node_em, "gpu_embed_rows_per_s": GPU_MINILM_PER_S,
            "driver_stage_s_at_1e7": driver, "driver_measured_s": {k: v for k, v in points.items()}, "by_nodes": rows}


def report() -> None:
    doc = json.loads((RESULTS / "ray.json").read_text())
    lines = ["# Distributed indexing on Ray (issue 21)", "",
             "Produced by `benchmarks/ray_index.py` (the heavy parts under `flock /tmp/hippo-cpu.lock`) on this 2-core "
             "shared machine, with a private local Ray instance (`hippo index ... --ray local`). Every build is "
             "`hippo index` in a child process from scratch, spaCy OpenIE, MiniLM embeddings.", ""]
    eq = doc.get("equivalence", {})
    if eq:
        lines += ["## Equivalence", "", "| corpus | files compared | differing files (Ray, 1 worker) | differing files (Ray, 2 workers) | "
                  "Recall@k identical | identical top-10 (ids and scores) |", "|---|---|---|---|---|---|"]
        for name, res in eq.items():
            rec = res.get("recall_identical")
            r = res["retrieval"]
            lines.append(f"| {name} ({res['runs']['local']['counts']['passages']} passages) | {res['files_compared']} | "
                         f"{len(res.get('differences_ray-1', [])) if 'differences_ray-1' in res else 'not run'} | "
                         f"{len(res['differences_ray-2'])} | {'yes' if rec else ('n/a (no questions)' if rec is None else 'NO')} | "
                         f"{r['identical_top10_with_scores']} / {r['queries']} |")
        missing = [c for c in CORPORA if c not in eq]
        if missing:
            lines += ["", f"Not run in this session: {', '.join(missing)} (the CPU lock stayed with other sessions' jobs); "
                      f"`flock /tmp/hippo-cpu.lock python benchmarks/ray_index.py --equivalence --corpora "
                      f"{','.join(missing)} --report` adds it."]
        mq = eq.get("musique100")
        if mq:
            rl = mq["recall"]["local"]["recall"]
            lines += ["", "MuSiQue-100 Recall@k (hippo retriever), single process and Ray: "
                      + ", ".join(f"R@{k} {v:.3f}" for k, v in rl.items()), ""]
            tw = eq.get("2wiki", {}).get("recall")
            if tw:
                lines += ["2Wiki (the 80 hand-written questions of `benchmarks/data/2wiki_handwritten.json`) Recall@k "
                          "(hippo retriever), single process and Ray: "
                          + ", ".join(f"R@{k} {v:.3f}" for k, v in tw["local"]["recall"].items()), ""]
            lines += ["## Rows per second (MuSiQue-100; each compared pair built in one job)", "",
                      "| build | extract rows/s | embed rows/s | extract s | embed s | wall s | Ray: sum of part compute s (extract / embed) |",
                      "|---|---|---|---|---|---|---|"]
            names = {"local": "single process (torch 2 threads)", "local-1thread": "single process, runtime.threads=1",
                     "ray-1": "Ray, 1 worker (1 CPU)", "ray-2": "Ray, 2 workers"}
            for label in ("local", "local-1thread", "ray-1", "ray-2"):
                r = mq["runs"][label]
                ray = r.get("ray")
                comp = f"{ray['extract']['compute_s']} / {ray['embed']['compute_s']}" if ray else ""
                lines.append(f"| {names[label]} | {r['extract']['rows_per_s']} | {r['embed']['rows_per_s']} | "
                             f"{r['extract']['seconds']} | {r['embed']['seconds']} | {r['wall_s']} | {comp} |")
            o = mq["overhead_1_worker"]
            sp = mq["speedup_2_workers_vs_local"]
            lines += ["", f"Ray's overhead at 1 worker against the single process on the same thread count: extraction "
                      f"{o['extract']:+.1%}, embedding {o['embed']:+.1%} (stage time, actor start and model load included; "
                      f"the Ray instance's start, {mq['runs']['ray-1']['ray']['connect_s']} s, is outside the stages). "
                      f"2 workers against today's default single process: extraction x{sp['extract']}, embedding x{sp['embed']}. "
                      f"Each pair compared here (1 thread against 1 worker; 2 threads against 2 workers) was built "
                      f"one after the other in one job under the CPU lock (`--only` rebuilds a pair). With 2 workers "
                      f"the parts' summed compute time exceeds the single process's stage time: the two worker "
                      f"processes share the 2 cores with Ray's own processes and each other.", ""]
    wk = doc.get("worker_kills")
    if wk:
        lines += ["## Worker kills", "", f"{wk['total_kills']} SIGKILLs of Ray map-worker processes at random points "
                  f"(U(4, 14) s apart) over {len(wk['jobs'])} job(s) indexing MuSiQue-100 with 2 workers: every job "
                  f"finished, and its index was {'identical to' if wk['all_identical'] else 'DIFFERENT from'} the "
                  f"single-process build's.", ""]
        for i, job in enumerate(wk["jobs"]):
            kinds = [("extract" if "Extract" in k["process"] else "embed" if "Embed" in k["process"] else "?") for k in job["kills"]]
            lines.append(f"- job {i + 1}: {len(job['kills'])} kills ({kinds.count('extract')} extraction, {kinds.count('embed')} "
                         f"embedding actors) at {', '.join(str(k['t_s']) for k in job['kills'])} s; wall {job['wall_s']} s; "
                         f"differing files: {len(job['differences'])}")
        lines += ["", wk["note"]] if wk.get("note") else []
        lines.append("")
    dk = doc.get("driver_kill")
    if dk:
        rr = dk["rerun"]
        lines += ["## Driver kill", "", f"The driver (`hippo index --ray local`) was SIGKILLed during the embedding stage "
                  f"(after {dk['killed_after_vector_chunks']}+ checkpoints); its Ray processes were stopped. The resume "
                  f"cache then held {dk['resume_cache_at_kill']['extractions']} extractions and "
                  f"{dk['resume_cache_at_kill']['vectors']} vectors. The re-run reused {rr['reused_extractions']} "
                  f"extractions and {rr['reused_vectors']} vectors, extracted {rr['extracted']} passages and embedded "
                  f"{rr['embedded']} of {dk['distinct_strings']} strings, and wrote an index with "
                  f"{len(dk['differences'])} differing files. Rows recomputed: the parts in flight at the kill, at most "
                  f"{dk['rows_recomputed_upper_bound']} strings (2 workers x 2,048).", ""]
    if eq.get("musique100") and (RESULTS / "scale-1000000.json").exists():
        cm = cost_model(doc)
        doc["cost_model"] = cm
        (RESULTS / "ray.json").write_text(json.dumps(doc, indent=1) + "\n")
        lines += ["## Cost model: 10^7 passages on N nodes like this one (2 cores)", "",
                  f"From the rates measured above with 2 workers on one node: extraction {cm['node_extract_rows_per_s']} "
                  f"passages/s, embedding {cm['node_embed_rows_per_s']} strings/s, {cm['strings_per_passage']} distinct "
                  f"strings per passage (MuSiQue-100: passages + entities + facts). GPU column: one GPU per node at "
                  f"{GPU_MINILM_PER_S:,} strings/s (all-MiniLM-L6-v2 on a V100, sentence-transformers' published "
                  f"model table; short sentences, so optimistic for passages). Driver: "
                  + ("knowledge base and vector gather measured here on synthetic extractions (`--assembly`), "
                     if "knowledge base" in cm["driver_stage_s_at_1e7"] else
                     "knowledge base and vector gather NOT included (the `--assembly` run did not get the CPU lock in "
                     "this session), ")
                  + f"synonymy/graph/strings/ANN/write from `scale-N.json` at "
                  f"10^5 and 10^6 passages, each extrapolated to 10^7 by the power law through those two sizes. The "
                  f"synthetic corpora have 5.0 entities and 9.1 facts per passage, MuSiQue-100 {cm['entities_per_passage']} and "
                  f"{cm['facts_per_passage']}: the driver figures are a floor for text like MuSiQue's.", "",
                  "| nodes | extraction h | embedding h (CPU) | embedding h (1 GPU/node) | driver assembly h | first bottleneck (CPU) | (GPU) |",
                  "|---|---|---|---|---|---|---|"]
        for r in cm["by_nodes"]:
            lines.append(f"| {r['nodes']} | {r['extract_h']} | {r['embed_cpu_h']} | {r['embed_gpu_h']} | {r['driver_h']} | "
                         f"{r['bottleneck_cpu']} | {r['bottleneck_gpu']} |")
        gb = cm["strings_per_passage"] * cm["passages"] * 384 * 4 / 1e9
        lines += ["", "Driver-side stages at 10^7 passages (seconds, extrapolated): "
                  + ", ".join(f"{k} {v:,}" for k, v in cm["driver_stage_s_at_1e7"].items()) + ".", "",
                  f"Memory, not time, stops the driver first: the indexer gathers every vector from a dict of all "
                  f"vectors into the index array, so it holds {gb:,.0f} GB twice at 10^7 passages "
                  f"({cm['strings_per_passage']} strings x 384 float32 per passage), and the resume cache holds them "
                  f"once more on disk. What moves next: (1) vectors go straight from the workers' results into "
                  f"memory-mapped segment files (the living index's segments), never into one dict; (2) synonymy, the "
                  f"largest driver stage, splits by IVF list across the cluster (each worker range-searches its lists "
                  f"for all new entities; the driver merges candidate pairs and applies the per-entity cap); (3) the "
                  f"ANN index is trained once on a sample on the driver and its shards encoded on the workers; (4) entity "
                  f"and fact dedup becomes a hash-partitioned Ray Data groupby.", ""]
    dks = doc.get("driver_kill_sample")
    if dks:
        rr = dks["rerun"]
        lines += ["## Driver kill, light variant (graphs/sample)", "",
                  f"`python benchmarks/ray_index.py --driver-kill-sample`: {dks['corpus']}; the driver SIGKILLed during "
                  f"extraction with {dks['resume_cache_at_kill']['extractions']} extractions in the resume cache. The re-run "
                  f"reused those {rr['reused_extractions']}, extracted {rr['extracted']} (= {dks['passages']} - "
                  f"{dks['resume_cache_at_kill']['extractions']}: {dks['computed_by_rerun_beyond_cache']} passage(s) beyond "
                  f"what the cache lacked), embedded {rr['embedded']} strings, and wrote an index with "
                  f"{len(dks['differences'])} differing files. Work done twice: only the parts the workers had in flight at "
                  f"the kill, which never reached the driver (at most {dks['in_flight_bound']} passages: 2 workers x 8).", ""]
    (RESULTS / "ray.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--equivalence", action="store_true")
    ap.add_argument("--corpora", default="musique100,2wiki")
    ap.add_argument("--only", default="", help="with --equivalence: rebuild only these labels (e.g. local-1thread,ray-1), "
                    "keeping the other builds of the last run")
    ap.add_argument("--kills", type=int, default=0, help="worker kills at random points (>= this many)")
    ap.add_argument("--driver-kill", action="store_true")
    ap.add_argument("--driver-kill-sample", action="store_true", help="the light variant on graphs/sample")
    ap.add_argument("--assembly", default="", help="sizes, e.g. 100000,1000000")
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--seed", type=int, default=21)
    args = ap.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    corpora = args.corpora.split(",") if args.equivalence else []
    only = [x for x in args.only.split(",") if x] or None
    if "musique100" in corpora:  # first: the kills, the cost model and the report build on it
        equivalence(["musique100"], only)
    if args.kills:
        kills(args.kills, args.seed)
    if args.driver_kill:
        driver_kill(args.seed)
    if args.driver_kill_sample:
        driver_kill_sample(args.seed)
    if args.assembly:
        assembly([int(x) for x in args.assembly.split(",")])
    if args.report:
        report()
    rest = [c for c in corpora if c != "musique100"]
    if rest:  # the long one last, so that everything else is measured even if it is cut short
        equivalence(rest, only)
        if args.report:
            report()


if __name__ == "__main__":
    main()
