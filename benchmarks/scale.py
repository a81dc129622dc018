"""A million passages on one machine: build, open, PageRank, retrieve (issue 8).

    python benchmarks/scale.py --passages 1000000 --json     # the contract line on stdout
    python benchmarks/scale.py --passages 100000 --compare   # + igraph prpack / scipy power iteration
    python benchmarks/plot_scale.py                          # plot + table from the saved results

Builds (or reuses) the synthetic corpus of ``benchmarks/synth.py`` (random unit vectors with
planted structure: **cost figures only, not retrieval quality**) and the index
``benchmarks/.cache/scale-N`` through :func:`hippo.prepared.write_prepared`: the same graph
code as ``hippo index`` with the extraction and embedding already done. Then measures:

* ``build_s``, ``peak_rss_gb``: the index build in a child process (synonymy included); the
  peak is VmHWM, which counts touched pages of the memory-mapped inputs, and
  ``detail.build.peak_by_stage_gb`` splits each stage's peak into anonymous and file pages;
* ``open_s``: ready to query in a fresh process with the embedder already loaded:
  ``open_index`` and ``Engine.warm`` (what a first query would otherwise pay: spaCy's NER
  model, the compiled push kernel, first pages); ``first_query_ms`` is the first real query
  after that; ``detail.open_cold_cache`` repeats it after dropping the page cache (root only);
* ``ppr_ms``: the PageRank step alone (certified forward push from each query's reset vector:
  its linked facts' entities and its 200 most similar passages), and ``top10_exact_frac``: the
  share of queries whose top-10 passages by PageRank mass equal those of the exact solution from
  the same reset vector: proved by the push's error bounds (certified), or checked against
  conjugate gradients to 1e-10 (every uncertified query, and ``--exact`` certified ones as a
  check of the proof);
* ``retrieve_ms``: ``Engine.retrieve`` end to end on query texts, query embedding (MiniLM, one
  query at a time) and spaCy NER included; ``batch_qps``: ``retrieve_many`` over 1,000 queries;
  both in a fresh process (``--retrieve-only`` re-times just these);
* recall of the approximate parts against exact search: fact linking (top-5), passage seeds
  (top-200), synonymy pairs (every pair at cosine >= 0.8 of a sample of entities);
* the effect of seeding 200 passages instead of all of them (HippoRAG 2's reset) on the top-10.

Results go to ``benchmarks/results/scale-N.json``; ``--json`` prints the contract line.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
CACHE = HERE / ".cache"
RESULTS = HERE / "results"
EPS, EPS_START = 1e-7, 3e-6
"""retrieval.ppr_push_eps and ppr_push_eps_start, the defaults (the compare children build no
engine; they certify the top 10 as the engine does)."""


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def peak_rss_gb() -> float:
    """This process's peak resident set (VmHWM), in GB. Not ``ru_maxrss``: Linux carries that
    across fork and exec, so a child would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def synth_dir(n: int) -> Path:
    return CACHE / f"synth-{n}"


def index_dir(n: int) -> Path:
    return CACHE / f"scale-{n}"


def ensure_synth(n: int) -> Path:
    folder = synth_dir(n)
    if not (folder / "meta.json").exists():
        log(f"[synth] generating {n:,} passages into {folder}")
        subprocess.run([sys.executable, str(HERE / "synth.py"), "--passages", str(n), "--out", str(folder)], check=True,
                       stdout=sys.stderr)  # stdout carries only the contract line
    return folder


def embedder() -> Any:
    from hippo.config import Config
    from hippo.embed import make_embedder

    cfg = Config()
    return make_embedder(cfg.embed, cfg.llm)


def prepared(folder: Path, emb_id: str, dim: int) -> Any:
    from hippo.prepared import PreparedCorpus
    from hippo.store.strings import StringTable

    def load(name: str) -> Any:
        return np.load(folder / f"{name}.npy", mmap_mode="r")

    def table(stem: str) -> StringTable:
        return StringTable(np.memmap(folder / f"{stem}.bin", dtype=np.uint8, mode="r"), load(f"{stem}.off"))

    relations = json.loads((folder / "relations.json").read_text())
    rel = np.asarray(load("fact_relation"))
    n_p = len(load("passage_fact_indptr")) - 1
    return PreparedCorpus(
        [f"synth-{i}" for i in range(n_p)], table("passage_titles"), table("passage_texts"), table("entity_names"),
        [relations[r] for r in rel.tolist()],
        np.asarray(load("fact_subject")), np.asarray(load("fact_object")),
        np.asarray(load("passage_fact_indptr")), np.asarray(load("passage_fact_indices")),
        load("passage_vectors"), load("entity_vectors"), load("fact_vectors"), {"id": emb_id, "dim": dim},
    )


def child_build(n: int) -> None:
    """Build the index (in its own process: peak RSS is the build's) and print a JSON line."""
    from hippo.config import Config
    from hippo.prepared import write_prepared

    emb = embedder()
    folder = ensure_synth(n)
    out = index_dir(n)
    if out.exists():
        import shutil

        shutil.rmtree(out)
    base_rss = peak_rss_gb()
    sampler = MemorySampler()
    t = time.perf_counter()
    corpus = prepared(folder, emb.id, emb.dim)

    def progress(stage: str, s: float) -> None:
        sampler.end_stage(stage)
        log(f"  [build] {stage}: {s:.1f}s, peak {sampler.stages[stage]}")

    report = write_prepared(out, corpus, Config(), progress=progress, link_vectors=True)  # the cache is never rewritten
    build_s = time.perf_counter() - t
    peak = peak_rss_gb()
    sampler.stop()
    print(json.dumps({**report, "build_s": round(build_s, 1), "peak_rss_gb": round(peak, 2),
                      "rss_before_build_gb": round(base_rss, 2), "peak_by_stage_gb": sampler.stages}))


class MemorySampler:
    """Samples this process's resident memory every 50 ms on a thread and keeps, per build
    stage, the peak resident set and its two parts: anonymous memory (the process's own
    arrays) and file pages (memory-mapped files it has touched, which the kernel can drop).
    VmHWM (``peak_rss_gb``) counts both."""

    def __init__(self, every: float = 0.05) -> None:
        import threading

        self.stages: dict[str, dict[str, float]] = {}
        self._peak = {"rss": 0.0, "anon": 0.0, "file": 0.0}
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._done.wait(every):
            fields = {}
            for line in Path("/proc/self/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile"):
                    fields[key] = int(value.split()[0]) / 2**20
            with self._lock:
                for name, key in (("rss", "VmRSS"), ("anon", "RssAnon"), ("file", "RssFile")):
                    self._peak[name] = max(self._peak[name], fields.get(key, 0.0))

    def end_stage(self, stage: str) -> None:
        with self._lock:
            self.stages[stage] = {k: round(v, 2) for k, v in self._peak.items()}
            self._peak = {"rss": 0.0, "anon": 0.0, "file": 0.0}

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def child_open(n: int) -> None:
    """Open the index in a fresh process, embedder loaded first, until it is ready to query:
    ``open_index`` then ``Engine.warm`` (spaCy's NER, the compiled push kernel, search indexes,
    first pages). ``open_s`` is both; the first real query follows. Prints a JSON line."""
    from hippo import open_index

    t = time.perf_counter()
    emb = embedder()
    emb.encode_queries(["warm up"], "")
    model_s = time.perf_counter() - t
    t = time.perf_counter()
    engine = open_index(index_dir(n), embedder=emb)
    open_index_s = time.perf_counter() - t
    warm = engine.warm()
    ready_s = time.perf_counter() - t
    t = time.perf_counter()
    engine.retrieve("Who founded the company?", k=10)
    first = time.perf_counter() - t
    rss = peak_rss_gb()
    print(json.dumps({"open_s": round(ready_s, 3), "open_index_s": round(open_index_s, 3),
                      "warm_s": {k: round(v, 3) for k, v in warm.items()}, "model_load_s": round(model_s, 2),
                      "first_query_ms": round(1000 * first, 1), "rss_after_first_query_gb": round(rss, 2)}))


def child_retrieve(n: int, n_queries: int) -> None:
    """``Engine.retrieve`` one query at a time, then ``retrieve_many`` over 1,000, in a fresh process."""
    from hippo import open_index

    folder = ensure_synth(n)
    engine = open_index(index_dir(n), embedder=embedder())
    qrows = json.loads((folder / "queries.json").read_text())
    relations = json.loads((folder / "relations.json").read_text())
    texts = query_texts(engine, qrows, relations)
    for t in texts[:5]:
        engine.retrieve(t, k=10)  # warm caches, spaCy
    ret_ms, embed_ms, rank_ms = [], [], []
    for t in texts[:n_queries]:
        s = time.perf_counter()
        res = engine.retrieve(t, k=10)
        ret_ms.append(1000 * (time.perf_counter() - s))
        embed_ms.append(res.timings_ms.get("embed", 0.0))
        rank_ms.append(res.timings_ms.get("rank", 0.0))
    batch = texts[:1000]
    s = time.perf_counter()
    engine.retrieve_many(batch, k=10)
    batch_s = time.perf_counter() - s
    print(json.dumps({"retrieve_ms": pct(ret_ms), "batch_qps": round(len(batch) / batch_s, 1), "embed_ms": pct(embed_ms),
                      "rank_ms": pct(rank_ms), "queries": len(ret_ms), "batch_queries": len(batch), "batch_s": round(batch_s, 2)}))


def child_method(n: int, method: str, queries: int) -> None:
    """PageRank latency and peak memory of one implementation from the saved reset vectors."""
    base = peak_rss_gb()
    data = np.load(CACHE / f"resets-{n}.npz")
    files = index_dir(n) / (index_dir(n) / "CURRENT").read_text().strip()
    indptr = np.load(files / "adj_indptr.npy")
    indices = np.load(files / "adj_indices.npy")
    weights = np.load(files / "adj_data.npy")
    nodes_n = len(indptr) - 1
    n_passages = int(json.loads((files / "manifest.json").read_text())["counts"]["passages"])
    resets = [(data["nodes"][a:b], data["mass"][a:b]) for a, b in zip(data["offsets"][:-1], data["offsets"][1:])][:queries]
    times = []
    t0 = time.perf_counter()
    if method == "hippo-push":
        import scipy.sparse as sp

        from hippo.graph.push import PushSolver

        solver = PushSolver(sp.csr_matrix((weights, indices, indptr), shape=(nodes_n, nodes_n)), np.load(files / "node_degree.npy"))
        setup = time.perf_counter() - t0
        for nodes, mass in resets:
            t = time.perf_counter()
            solver.run(nodes, mass, 0.5, EPS, refine_below=n_passages, certify=10, eps_start=EPS_START)
            times.append(time.perf_counter() - t)
    elif method == "scipy-power":
        import scipy.sparse as sp

        from hippo.graph.ppr import PPRSolver

        solver = PPRSolver(sp.csr_matrix((weights, indices, indptr), shape=(nodes_n, nodes_n)), backend="scipy",
                           degree=np.load(files / "node_degree.npy"))
        setup = time.perf_counter() - t0
        for nodes, mass in resets:
            v = np.zeros(nodes_n)
            np.add.at(v, nodes, mass)
            t = time.perf_counter()
            solver.run(v, 0.5, tol=1e-6, max_iter=100, method="power")
            times.append(time.perf_counter() - t)
    elif method == "igraph-prpack":
        import igraph

        rows = np.repeat(np.arange(nodes_n, dtype=np.int64), np.diff(indptr))
        upper = rows < indices
        g = igraph.Graph(n=nodes_n, edges=np.stack([rows[upper], indices[upper]], axis=1).tolist(), directed=False)
        w = weights[upper].tolist()
        del rows, upper
        setup = time.perf_counter() - t0
        for nodes, mass in resets:
            v = np.zeros(nodes_n)
            np.add.at(v, nodes, mass)
            t = time.perf_counter()
            g.personalized_pagerank(directed=False, damping=0.5, reset=v.tolist(), weights=w, implementation="prpack")
            times.append(time.perf_counter() - t)
    else:
        raise SystemExit(f"unknown method {method}")
    peak = peak_rss_gb()
    ms = 1000 * np.array(times)
    print(json.dumps({"method": method, "queries": len(times), "setup_s": round(setup, 2),
                      "ppr_ms": {"p50": round(float(np.percentile(ms, 50)), 2), "p95": round(float(np.percentile(ms, 95)), 2)},
                      "peak_rss_gb": round(peak, 3), "rss_before_gb": round(base, 3)}))


def cold_open(n: int) -> dict[str, Any] | None:
    """The open child again after dropping the page cache (as after a reboot: every file is
    read from disk, the model's too); None when this process may not drop it (needs root).
    Call it when this process maps no file of the index: the kernel keeps mapped pages."""
    control = Path("/proc/sys/vm/drop_caches")
    if not os.access(control, os.W_OK):
        log("[open] cold page cache: skipped (cannot write /proc/sys/vm/drop_caches)")
        return None
    os.sync()
    control.write_text("1\n")
    opened = run_child(["--passages", str(n), "--child", "open"])
    log(f"[open] cold page cache: {opened}")
    return opened


def run_child(args: list[str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *args], check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def pct(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {"p50": round(float(np.percentile(a, 50)), 2), "p95": round(float(np.percentile(a, 95)), 2)}


def query_texts(engine: Any, rows: list[dict[str, Any]], relations: list[str]) -> list[str]:
    """A question per planted query, naming the target fact's subject ("What is the <relation> of <subject>?")."""
    out = []
    for q in rows:
        fact = engine.facts[q["fact"]]
        out.append(f"What is the {fact.relation} of {fact.subject.title()}?")
    return out


def exact_top(vectors: Any, q: np.ndarray, k: int, chunk: int = 1 << 18) -> np.ndarray:
    """(B, k) exact top-k rows of ``vectors`` (a float16 memory map) for queries (B, d)."""
    q = np.asarray(q, dtype=np.float32)
    best_s = np.full((len(q), 0), -np.inf, np.float32)
    best_i = np.zeros((len(q), 0), np.int64)
    for a in range(0, vectors.shape[0], chunk):
        s = (q @ np.asarray(vectors[a : a + chunk], dtype=np.float32).T)
        kk = min(k, s.shape[1])
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        best_s = np.concatenate([best_s, np.take_along_axis(s, part, 1)], axis=1)
        best_i = np.concatenate([best_i, part + a], axis=1)
        keep = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
    return best_i


def synonymy_recall(files: Any, vectors: Any, sample: int, threshold: float = 0.8, seed: int = 0) -> dict[str, Any]:
    """Exact pairs at cosine >= threshold for a sample of entities vs the index's candidates."""
    rng = np.random.default_rng(seed)
    n = vectors.shape[0]
    rows = np.sort(rng.choice(n, min(sample, n), replace=False))
    q = np.asarray(vectors[rows], dtype=np.float32)
    pairs: set[tuple[int, int]] = set()
    for a in range(0, n, 1 << 18):
        s = q @ np.asarray(vectors[a : a + (1 << 18)], dtype=np.float32).T
        r, c = np.nonzero(s >= threshold - 1e-3)
        for x, y in zip(rows[r].tolist(), (c + a).tolist()):
            if x != y:
                cos = float(np.dot(np.asarray(vectors[x], np.float64), np.asarray(vectors[y], np.float64)))
                if np.float32(cos) >= threshold:
                    pairs.add((min(x, y), max(x, y)))
    cand = files.array("synonym_candidates.npy")
    mine = set(rows.tolist())
    sel = np.isin(cand[:, 0], rows) | np.isin(cand[:, 1], rows)
    found = {(int(a), int(b)) for a, b in cand[sel] if int(a) in mine or int(b) in mine}
    hit = len(pairs & found)
    return {"sample_entities": len(rows), "exact_pairs": len(pairs), "found": hit,
            "recall": round(hit / len(pairs), 4) if pairs else None}


def read_through(index: Path) -> float:
    """Read every file of the live generation once, so that the timings that follow find the
    index in the page cache whatever ran before; returns the seconds it took."""
    t = time.perf_counter()
    gen = index / (index / "CURRENT").read_text().strip()
    for f in sorted(p for p in gen.rglob("*") if p.is_file()):
        with open(f, "rb", buffering=0) as fh:
            while fh.read(1 << 24):
                pass
    return time.perf_counter() - t


def measure(n: int, n_queries: int, n_exact: int, with_compare: bool, skip_build: bool) -> dict[str, Any]:
    from hippo import open_index
    from hippo.retrieval.hipporag import PUSH_PASSAGE_SEEDS

    folder = ensure_synth(n)
    meta = json.loads((folder / "meta.json").read_text())
    out = index_dir(n)
    build_file = CACHE / f"scale-{n}.build.json"
    if skip_build and build_file.exists() and (out / "CURRENT").exists():
        build = json.loads(build_file.read_text())
        log(f"[build] reusing {out} (built in {build['build_s']} s)")
    else:
        log(f"[build] {n:,} passages -> {out}")
        build = run_child(["--passages", str(n), "--child", "build"])
        build_file.write_text(json.dumps(build))
    log(f"[build] {build['build_s']} s, peak RSS {build['peak_rss_gb']} GB, timings {build['timings_s']}")

    emb = embedder()
    engine = open_index(out, embedder=emb)
    engine.warm()  # steady state: the push arrays are read and the kernel compiled (cold: the open child)
    cfg = engine.config.retrieval
    ranker, solver = engine.ranker, engine.solver
    n_p = ranker.n_passages
    qrows = json.loads((folder / "queries.json").read_text())
    qvec = np.asarray(np.load(folder / "queries.npy"), dtype=np.float32)
    relations = json.loads((folder / "relations.json").read_text())

    # PageRank alone, from the reset vectors of the planted query vectors.
    log(f"[ppr] {n_queries} queries: certified forward push, then exact cg on the same reset vectors "
        f"(every uncertified query and {n_exact} certified ones)")
    resets, push_ms, push_sets, pushes, edges, certified, eps_end = [], [], [], [], [], [], []
    certify = 10 if cfg.ppr_push_certify else 0
    for b in range(n_queries):
        r = ranker.local_reset(qvec[b : b + 1], qvec[b : b + 1], cfg, passage_k=PUSH_PASSAGE_SEEDS)
        resets.append((r.nodes, r.mass))
        t = time.perf_counter()
        found, x = solver.push.run(r.nodes, r.mass, cfg.damping, cfg.ppr_push_eps, refine_below=n_p,
                                   certify=certify, eps_start=cfg.ppr_push_eps_start)
        push_ms.append(1000 * (time.perf_counter() - t))
        pushes.append(solver.push.last_pushes)
        edges.append(solver.push.last_edges)
        certified.append(bool(solver.push.last_certified))
        eps_end.append(solver.push.last_eps)
        on_p = found < n_p
        push_sets.append(found[on_p][np.argsort(-x[on_p], kind="stable")[:10]])
    offsets = np.concatenate([[0], np.cumsum([len(a) for a, _ in resets])])
    np.savez(CACHE / f"resets-{n}.npz", nodes=np.concatenate([a for a, _ in resets]),
             mass=np.concatenate([m for _, m in resets]), offsets=offsets)
    # A certified top-10 is proved equal to the exact one by the error bounds; cg checks every
    # query without a certificate and a sample of certified ones (the proof's own check).
    check = [b for b in range(n_queries) if not certified[b]] + [b for b in range(n_queries) if certified[b]][:n_exact]
    same_by: dict[int, bool] = {}
    overlap, cg_ms = [], []
    for a in range(0, len(check), 16):
        block = check[a : a + 16]
        v = np.zeros((solver.n, len(block)))
        for j, b in enumerate(block):
            np.add.at(v[:, j], resets[b][0], resets[b][1])
        t = time.perf_counter()
        pi = solver.run(v, cfg.damping, tol=1e-10, max_iter=500, method="cg")
        cg_ms.append(1000 * (time.perf_counter() - t) / len(block))
        for j, b in enumerate(block):
            top = np.argsort(-pi[:n_p, j], kind="stable")[:10]
            same_by[b] = set(top.tolist()) == set(push_sets[b].tolist())
            overlap.append(len(set(top.tolist()) & set(push_sets[b].tolist())) / 10)
    same = [same_by.get(b, True) if certified[b] else same_by[b] for b in range(n_queries)]
    cert_checked = [same_by[b] for b in check if certified[b]]
    log(f"[ppr] push p50 {np.median(push_ms):.2f} ms; certified {np.mean(certified):.3f}; top-10 identical {np.mean(same):.3f} "
        f"(uncertified: {sum(same_by[b] for b in check if not certified[b])}/{sum(not c for c in certified)} by cg; "
        f"certified checked by cg: {sum(cert_checked)}/{len(cert_checked)}); cg {np.median(cg_ms):.0f} ms/query")

    # Effect of seeding the 200 best passages instead of every passage (HippoRAG 2's reset).
    n_trunc = min(20 if n < 10**6 else 8, n_exact)
    trunc_same, trunc_overlap = [], []
    for b in range(n_trunc):
        full = ranker.local_reset(qvec[b : b + 1], qvec[b : b + 1], cfg, passage_k=0) if ranker.passage_search is None else None
        if full is None:  # exact cosines of every passage, then HippoRAG 2's min-max weights
            dense = np.concatenate([np.asarray(ranker.passage_vectors[a : a + (1 << 18)], np.float32) @ qvec[b]
                                    for a in range(0, n_p, 1 << 18)]).astype(np.float64)
            lo, hi = dense.min(), dense.max()
            v = np.zeros(solver.n)
            v[:n_p] = cfg.passage_node_weight * (dense - lo) / (hi - lo)
            small = ranker.local_reset(qvec[b : b + 1], qvec[b : b + 1], cfg, passage_k=PUSH_PASSAGE_SEEDS)
            ent = small.nodes >= n_p
            np.add.at(v, small.nodes[ent], small.mass[ent])
        else:
            v = np.zeros(solver.n)
            np.add.at(v, full.nodes, full.mass)
        pi = solver.run(v, cfg.damping, tol=1e-10, max_iter=500, method="cg")
        top = set(np.argsort(-pi[:n_p], kind="stable")[:10].tolist())
        trunc_same.append(top == set(push_sets[b].tolist()))
        trunc_overlap.append(len(top & set(push_sets[b].tolist())) / 10)
    log(f"[reset] all passages vs 200: top-10 identical {np.mean(trunc_same):.2f}, overlap {np.mean(trunc_overlap):.2f}")

    # Recall of the approximate searches.
    rec: dict[str, Any] = {}
    nq = min(200, n_queries)
    if ranker.fact_search is not None:
        ex = exact_top(ranker.fact_vectors, qvec[:nq], 5)
        got = ranker.fact_search.search(qvec[:nq], 5)[0]
        rec["facts_at_5"] = round(float(np.mean([len(set(a) & set(b)) / 5 for a, b in zip(ex.tolist(), got.tolist())])), 4)
        rec["target_fact_first"] = round(float(np.mean(got[:, 0] == np.array([q["fact"] for q in qrows[:nq]]))), 4)
    if ranker.passage_search is not None:
        ex = exact_top(ranker.passage_vectors, qvec[:nq], 200)
        got = ranker.passage_search.search(qvec[:nq], 200)[0]
        rec["passages_at_200"] = round(float(np.mean([len(set(a) & set(b)) / 200 for a, b in zip(ex.tolist(), got.tolist())])), 4)
    rec["synonymy"] = synonymy_recall(engine.files, engine.files.array("entity_vectors.npy"), 2000)
    log(f"[recall] {rec}")

    # End to end, in a fresh process: the numpy (OpenBLAS) work above leaves spinning threads
    # that slow the query embedding on 2 cores, which a serving process would not have.
    log(f"[cache] read the index into the page cache in {read_through(out):.1f} s")
    ret = run_child(["--passages", str(n), "--child", "retrieve", "--queries", str(n_queries)])
    log(f"[retrieve] {ret}")
    # After the retrieve child, so that the page cache holds the index whatever ran before
    # (the cold-cache open of an earlier run drops it); main() times the cold open separately.
    opened = run_child(["--passages", str(n), "--child", "open"])
    log(f"[open] {opened}")

    result: dict[str, Any] = {
        "passages": n,
        "nodes": int(solver.n),
        "edges": int(sum(engine.manifest["counts"]["edges"].values())),
        "build_s": build["build_s"],
        "peak_rss_gb": build["peak_rss_gb"],
        "open_s": opened["open_s"],
        "ppr_ms": pct(push_ms),
        "top10_exact_frac": round(float(np.mean(same)), 4),
        "retrieve_ms": ret["retrieve_ms"],
        "batch_qps": ret["batch_qps"],
        "detail": {
            "entities": engine.manifest["counts"]["entities"],
            "facts": engine.manifest["counts"]["facts"],
            "edge_counts": engine.manifest["counts"]["edges"],
            "build": build,
            "open": opened,
            "ppr": {"queries": n_queries, "certified": round(float(np.mean(certified)), 4),
                    "uncertified_checked_by_cg": int(sum(not c for c in certified)),
                    "uncertified_identical": int(sum(same_by[b] for b in check if not certified[b])),
                    "certified_checked_by_cg": len(cert_checked), "certified_identical": int(sum(cert_checked)),
                    "top10_overlap_checked": round(float(np.mean(overlap)), 4),
                    "pushes_p50": int(np.median(pushes)), "edges_scanned_p50": int(np.median(edges)),
                    "eps_end_p50": float(np.median(eps_end)), "eps_end_max": float(np.max(eps_end)),
                    "exact_cg_ms_per_query": round(float(np.median(cg_ms)), 1),
                    "eps": cfg.ppr_push_eps, "eps_start": cfg.ppr_push_eps_start, "certify_top": certify, "passage_seeds": 200},
            "reset_all_passages_vs_200": {"queries": n_trunc, "top10_identical": round(float(np.mean(trunc_same)), 3),
                                          "top10_overlap": round(float(np.mean(trunc_overlap)), 3)},
            "recall": rec,
            "retrieve": {k: v for k, v in ret.items() if k not in ("retrieve_ms", "batch_qps")},
            "search": {"passages": "ivf" if ranker.passage_search is not None else "exact",
                       "facts": "ivf" if ranker.fact_search is not None else "exact"},
            "synth": {k: meta[k] for k in ("passages", "entities", "facts", "seed", "note")},
            "machine": {"cpus": os.cpu_count(), "load_avg": os.getloadavg(), "python": platform.python_version()},
        },
    }
    del engine
    if with_compare:
        result["detail"]["compare"] = compare(n, n_queries)
    return result


def compare(n: int, n_queries: int) -> dict[str, Any]:
    """The three PageRank implementations, each in its own process, on the saved reset vectors."""
    methods = {}
    for method in ("hippo-push", "scipy-power", "igraph-prpack"):
        q = {"hippo-push": n_queries, "scipy-power": 20 if n < 10**6 else 3, "igraph-prpack": 20 if n < 10**5 else 3}[method]
        log(f"[compare] {method} ({q} queries)")
        methods[method] = run_child(["--passages", str(n), "--child", "method", "--method", method, "--queries", str(q)])
        log(f"[compare] {methods[method]}")
    return methods


def musique_effects() -> dict[str, Any]:
    """Recall@k on MuSiQue-100 (recorded OpenIE; the cached index of benchmarks/musique.py) as the
    large-index machinery is switched on: fewer seeded passages, forward push, and everything
    approximate (an index written by hippo.prepared with graph.ann_min_rows=1000, so passages,
    facts, entities and synonymy all go through the inverted-file searches)."""
    import shutil

    from hippo import open_index
    from hippo.evaluation import evaluate, load_questions
    from hippo.prepared import PreparedCorpus, write_prepared

    src_dir = CACHE / "musique100-openie"
    if not (src_dir / "CURRENT").exists():
        raise SystemExit("run python benchmarks/musique.py first (it builds benchmarks/.cache/musique100-openie)")
    questions = load_questions(REPO.parent / "shared" / "data" / "musique100" / "questions.json")
    engine = open_index(src_dir)
    variants: list[tuple[str, Any, dict[str, Any]]] = [
        ("exact, every passage seeded (HippoRAG 2)", engine, {"retrieval.ppr_method": "cg", "retrieval.passage_seed_top_k": 0}),
        ("exact, 500 best passages seeded", engine, {"retrieval.ppr_method": "cg", "retrieval.passage_seed_top_k": 500}),
        ("exact, 200 best passages seeded", engine, {"retrieval.ppr_method": "cg", "retrieval.passage_seed_top_k": 200}),
        ("exact, 50 best passages seeded", engine, {"retrieval.ppr_method": "cg", "retrieval.passage_seed_top_k": 50}),
        ("push (certified, floor 1e-7), every passage seeded", engine, {"retrieval.ppr_method": "push", "retrieval.passage_seed_top_k": 0}),
        ("push (certified, floor 1e-7), 200 best seeded: auto at scale", engine, {"retrieval.ppr_method": "push", "retrieval.passage_seed_top_k": 200}),
    ]
    f = engine.files
    out = CACHE / "musique100-approximate"
    shutil.rmtree(out, ignore_errors=True)
    corpus = PreparedCorpus(
        list(engine.passage_ids), list(engine.passage_titles), list(engine.passage_contents), list(engine.entity_names),
        [x.relation for x in engine.facts], f.array("fact_subject.npy"), f.array("fact_object.npy"),
        f.array("passage_fact_indptr.npy"), f.array("passage_fact_indices.npy"), f.array("passage_vectors.npy"),
        f.array("entity_vectors.npy"), f.array("fact_vectors.npy"), engine.manifest["embedder"],
    )
    build = write_prepared(out, corpus, engine.config.replace({"graph.ann_min_rows": 1000}))
    approx = open_index(out, embedder=engine.embedder)
    variants.append(("push + every search approximate (IVF-PQ, blocked synonymy)", approx, {"retrieval.ppr_method": "push"}))
    rows = []
    for label, eng, overrides in variants:
        for retriever in ("hippo", "hipporag2", "dense"):
            if retriever == "dense" and eng is engine and overrides.get("retrieval.passage_seed_top_k") != 0:
                continue
            rep = evaluate(eng.with_overrides(overrides), questions, retriever, batch_size=len(questions))
            rows.append({"variant": label, "retriever": retriever, "recall": rep["recall"]})
            log(f"  {label:60s} {retriever:10s} " + " ".join(f"{v:.3f}" for v in rep["recall"].values()))
    syn = build["synonymy"]
    return {"rows": rows, "approximate_build": {"synonymy": syn, "edges": build["counts"]["edges"]},
            "exact_edges": engine.manifest["counts"]["edges"]}


def real_synonymy() -> dict[str, Any]:
    """Recall and time of the blocked inverted-list synonymy search against the exact all-pairs
    product on the real (MiniLM) entity vectors of the MuSiQue-100 and 2wiki indexes."""
    from hippo.graph.build import synonymy_candidates
    from hippo.store import read_index_files
    from hippo.store.compact import synonymy_candidates_ivf

    out: dict[str, Any] = {}
    for name in ("musique100-openie", "2wiki-spacy"):
        folder = CACHE / name
        if not (folder / "CURRENT").exists():
            log(f"[real-synonymy] {folder} missing: run benchmarks/musique.py / benchmarks/ablation.py first; skipped")
            continue
        vec = np.asarray(read_index_files(folder).array("entity_vectors.npy"), dtype=np.float32)
        t = time.perf_counter()
        i, j, _, _ = synonymy_candidates(vec, 0.8)
        exact_s = time.perf_counter() - t
        t = time.perf_counter()
        ai, aj, _, scored = synonymy_candidates_ivf(vec, 0.8)
        ivf_s = time.perf_counter() - t
        exact = set(zip(i.tolist(), j.tolist()))
        found = set(zip(ai.tolist(), aj.tolist()))
        out[name] = {"entities": len(vec), "exact_pairs": len(exact), "found": len(exact & found),
                     "false": len(found - exact), "recall": round(len(exact & found) / max(1, len(exact)), 4),
                     "exact_s": round(exact_s, 2), "ivf_s": round(ivf_s, 2), "ivf_pairs_scored": int(scored)}
        log(f"[real-synonymy] {name}: {out[name]}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passages", type=int, help="synthetic corpus size")
    ap.add_argument("--musique", action="store_true", help="recall on MuSiQue-100 as the large-index parts are switched on")
    ap.add_argument("--real-synonymy", action="store_true",
                    help="recall of the inverted-list synonymy search on the real MuSiQue-100 and 2wiki entity vectors")
    ap.add_argument("--json", action="store_true", help="print the contract JSON line on stdout")
    ap.add_argument("--queries", type=int, default=200, help="queries timed one at a time")
    ap.add_argument("--exact", type=int, default=100, help="queries checked against exact PageRank")
    ap.add_argument("--compare", action="store_true", help="also time igraph prpack and scipy power iteration")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the index even if a cached one exists")
    ap.add_argument("--compare-only", action="store_true",
                    help="only time the three PageRank implementations on the saved reset vectors; update the saved result")
    ap.add_argument("--retrieve-only", action="store_true",
                    help="only time retrieve / retrieve_many on the cached index; update the saved result")
    ap.add_argument("--child", choices=["build", "open", "method", "retrieve"], help=argparse.SUPPRESS)
    ap.add_argument("--method", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.musique:
        result = musique_effects()
        (RESULTS / "scale-musique.json").write_text(json.dumps(result, indent=1) + "\n")
        return None
    if args.real_synonymy:
        (RESULTS / "scale-real-synonymy.json").write_text(json.dumps(real_synonymy(), indent=1) + "\n")
        return None
    if args.passages is None:
        ap.error("--passages N (or --musique or --real-synonymy) is required")
    if args.child == "build":
        return child_build(args.passages)
    if args.child == "open":
        return child_open(args.passages)
    if args.child == "method":
        return child_method(args.passages, args.method, args.queries)
    if args.child == "retrieve":
        return child_retrieve(args.passages, args.queries)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"scale-{args.passages}.json"
    if args.retrieve_only:
        saved = json.loads(path.read_text())
        ret = run_child(["--passages", str(args.passages), "--child", "retrieve", "--queries", str(args.queries)])
        saved["retrieve_ms"], saved["batch_qps"] = ret.pop("retrieve_ms"), ret.pop("batch_qps")
        saved["detail"]["retrieve"] = ret
        path.write_text(json.dumps(saved, indent=1) + "\n")
        log(f"[retrieve] {saved['retrieve_ms']}, {saved['batch_qps']} q/s")
        return None
    if args.compare_only:
        saved = json.loads(path.read_text())
        saved["detail"]["compare"] = compare(args.passages, args.queries)
        path.write_text(json.dumps(saved, indent=1) + "\n")
        return None
    result = measure(args.passages, args.queries, min(args.exact, args.queries), args.compare, not args.rebuild)
    gc.collect()  # no array of the index stays mapped here: a mapped page survives dropping the cache
    result["detail"]["open_cold_cache"] = cold_open(args.passages)
    old = json.loads(path.read_text()) if path.exists() else {}
    if "compare" not in result["detail"] and "compare" in old.get("detail", {}):
        result["detail"]["compare"] = old["detail"]["compare"]  # keep an earlier --compare run
    path.write_text(json.dumps(result, indent=1) + "\n")
    log(f"[saved] {path}")
    if args.json:
        keys = ("passages", "nodes", "edges", "build_s", "peak_rss_gb", "open_s", "ppr_ms", "top10_exact_frac", "retrieve_ms", "batch_qps")
        print(json.dumps({k: result[k] for k in keys}))


if __name__ == "__main__":
    main()
