"""Measure the living index (issue 17): add latency by index size, a stream of single adds,
queries over many segments, a SIGKILL campaign, and writes on the 10^6 prepared index.

    python benchmarks/living.py latency --sizes 1000,10000,100000,1000000
    python benchmarks/living.py plot                 # results/living-latency.png from the saved run
    python benchmarks/living.py stream               # MuSiQue-100: 890 built + 1,000 single adds
    python benchmarks/living.py query                # 50 segments vs compacted (MuSiQue, 10^5 synthetic)
    python benchmarks/living.py kill --kills 60      # SIGKILL a writer at random moments
    python benchmarks/living.py million              # 10^6: 50 adds, 50 deletes, hippo compact
    python benchmarks/living.py summary              # results/living.md from the saved parts

Run each part under the shared CPU lock (``flock /tmp/hippo-cpu.lock python ...``). Each part
writes ``benchmarks/results/living-<part>.json``; ``summary`` (also run after every part)
rewrites ``living.md``.

Indexes: 1,000 passages = the first 1,000 MuSiQue-100 passages indexed with spaCy (cached in
``benchmarks/.cache/musique-spacy-1000``); larger = the synthetic prepared index of
``benchmarks/scale.py`` (``benchmarks/.cache/scale-N``, built once through
``scale.py --child build``). A part never writes into a cached index: it works on a clone whose
segments are hard links (segments are immutable; ``CURRENT`` and ``history.jsonl`` are copied),
so the cache stays as built.

Adds are real 2Wiki passages (``/work/shared/data/2wiki/corpus.json``), extracted by spaCy and
embedded by MiniLM in the measuring process with both models loaded; a few warm-up adds come
first and are not counted. Timings are wall clock on a shared 2-core machine: each figure is
printed with the load average it was measured under.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))  # this checkout's hippo, whatever is installed
CACHE = HERE / ".cache"
WORK = CACHE / "living-work"
RESULTS = HERE / "results"
SHARED = Path("/work/shared/data")
MUSIQUE = SHARED / "musique100"
OPENIE = MUSIQUE / "openie_gpt-3.5-turbo-1106.json"
QUESTIONS = MUSIQUE / "questions.json"
WIKI = SHARED / "2wiki" / "corpus.json"
ENV = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
SIZES = (1000, 10_000, 100_000, 1_000_000)


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def pct(values: Sequence[float]) -> dict[str, float]:
    """p50/p95/mean/max of ``values`` (milliseconds in, milliseconds out)."""
    a = np.asarray(values, dtype=np.float64)
    if not len(a):
        return {}
    return {"p50": round(float(np.percentile(a, 50)), 2), "p95": round(float(np.percentile(a, 95)), 2),
            "mean": round(float(a.mean()), 2), "max": round(float(a.max()), 2), "n": int(len(a))}


def peak_rss_gb() -> float:
    """This process's peak resident set (VmHWM) in GB (not ru_maxrss: Linux carries that over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return 0.0


def io_bytes() -> dict[str, int]:
    """``wchar`` (bytes passed to write calls) and ``write_bytes`` (bytes sent to storage) of this process."""
    out = {}
    for line in Path("/proc/self/io").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("wchar", "write_bytes"):
            out[key] = int(value)
    return out


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "load_avg": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version(),
            "time": time.strftime("%Y-%m-%d %H:%M:%S")}


def run_child(args: Sequence[str], timeout: float | None = None) -> dict[str, Any]:
    """Run ``living.py ARGS`` in a fresh process; its last stdout line is JSON."""
    out = subprocess.run([sys.executable, str(Path(__file__)), *args], check=True, stdout=subprocess.PIPE, text=True,
                         env=ENV, timeout=timeout)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def hippo_cli(*args: str, peak: bool = False) -> tuple[dict[str, Any], float]:
    """``hippo ARGS --json`` in a fresh process: (its JSON, wall seconds). With ``peak``, the
    child's VmHWM (GB) is added under ``peak_rss_gb``."""
    code = ("import json, sys\nfrom hippo.cli.main import main\nrc = main(sys.argv[1:])\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
            "print(json.dumps({'peak_rss_gb': int(hwm) / 2**20}), file=sys.stderr)\nsys.exit(rc)\n")
    t = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", code, *args, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=ENV)
    top = {"RssAnon": 0, "RssFile": 0}
    if peak:  # VmHWM counts the pages of memory-mapped inputs it touched: sample the anonymous part too
        def sample() -> None:
            while child.poll() is None:
                try:
                    for line in Path(f"/proc/{child.pid}/status").read_text().splitlines():
                        key = line.split(":")[0]
                        if key in top:
                            top[key] = max(top[key], int(line.split()[1]))
                except (OSError, ValueError, IndexError):
                    pass
                time.sleep(0.2)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
    stdout, stderr = child.communicate()
    wall = time.perf_counter() - t
    if child.returncode != 0:
        sys.exit(f"hippo {' '.join(args)} failed ({child.returncode}): {stderr.strip()[-2000:]}")
    out: dict[str, Any] = json.loads(stdout) if stdout.strip() else {}
    if peak:
        out["peak_rss_gb"] = round(json.loads(stderr.strip().splitlines()[-1])["peak_rss_gb"], 2)
        out["peak_anon_gb"] = round(top["RssAnon"] / 2**20, 2)
        out["peak_file_gb"] = round(top["RssFile"] / 2**20, 2)
    return out, wall


def save(part: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"living-{part}.json"
    path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    log(f"[saved] {path}")
    summary()
    return path


# --------------------------------------------------------------------------- indexes


def clone(src: Path, dst: Path) -> Path:
    """A writable copy of index ``src`` at ``dst``: segments are hard links (immutable), the
    manifest and history are copied (a write replaces ``CURRENT`` and appends to the history)."""
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for p in src.iterdir():
        if p.name.startswith("seg-"):
            if p.is_dir():
                shutil.copytree(p, dst / p.name, copy_function=os.link)
            else:
                os.link(p, dst / p.name)
        elif p.name in ("CURRENT", "history.jsonl"):
            shutil.copy2(p, dst / p.name)
    return dst


def du(path: Path) -> int:
    """Bytes of the files under ``path`` (each inode once)."""
    seen, total = set(), 0
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        st = p.lstat()
        if p.is_file() and st.st_ino not in seen:
            seen.add(st.st_ino)
            total += st.st_size
    return total


def musique(start: int = 0, stop: int | None = None) -> list[dict[str, str]]:
    docs = json.loads((MUSIQUE / "corpus.json").read_text(encoding="utf-8"))
    return [{"title": d["title"], "text": d["text"]} for d in docs[start:stop]]


def wiki(start: int, n: int) -> list[dict[str, str]]:
    docs = json.loads(WIKI.read_text(encoding="utf-8"))
    return [{"title": d["title"], "text": d["text"]} for d in docs[start : start + n]]


def corpus_file(name: str, items: list[dict[str, str]]) -> Path:
    path = CACHE / "living-corpora" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(items, ensure_ascii=False)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path


def ensure_index(size: int) -> tuple[Path, dict[str, Any]]:
    """The cached index of ``size`` passages (built on first use); (path, how it was built)."""
    if size == 1000:
        path = CACHE / "musique-spacy-1000"
        info_path = CACHE / "musique-spacy-1000.build.json"
        if not (path / "CURRENT").exists():
            log("[index] MuSiQue-100, first 1,000 passages, spaCy extractor")
            out, wall = hippo_cli("index", str(corpus_file("musique-first1000", musique(0, 1000))), "--out", str(path))
            info_path.write_text(json.dumps({"kind": "musique-spacy", "build_s": round(wall, 1), "counts": out.get("counts")}))
        return path, json.loads(info_path.read_text())
    path = CACHE / f"scale-{size}"
    info_path = CACHE / f"scale-{size}.build.json"
    if not (path / "CURRENT").exists():
        log(f"[index] synthetic prepared index of {size:,} passages (benchmarks/scale.py --child build)")
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, str(HERE / "scale.py"), "--passages", str(size), "--child", "build"],
                              check=True, stdout=subprocess.PIPE, text=True, env=ENV)
        built = json.loads(proc.stdout.strip().splitlines()[-1])
        info_path.write_text(json.dumps({"kind": "synthetic-prepared", "wall_s": round(time.perf_counter() - t, 1), **built}))
    return path, json.loads(info_path.read_text())


# --------------------------------------------------------------------------- part 1: latency


PREFETCH = ("entity_vectors.npy", "entity_vectors.ivf")
"""What ``--prefetch`` reads before timing: the base segment's entity vectors and their IVF
lists, which the synonymy search of every add gathers from at random (at 10^6 passages,
3.8 GB that a cold page cache serves one page fault at a time)."""


def prefetch(index: Path) -> dict[str, Any]:
    """Read the :data:`PREFETCH` files of ``index``'s base segment once (into the page cache)."""
    base = index / json.loads((index / "CURRENT").read_text())["segments"][0]["name"]
    t, n = time.perf_counter(), 0
    for name in PREFETCH:
        if (base / name).exists():
            with open(base / name, "rb") as f:
                while chunk := f.read(1 << 24):
                    n += len(chunk)
    return {"files": list(PREFETCH), "bytes": n, "seconds": round(time.perf_counter() - t, 1)}


def child_latency(index: Path, adds: int, warmup: int, offset: int, deletes: int = 0, warm_cache: bool = False) -> None:
    """In this process: load the models, open ``index`` writable, time ``warmup`` + ``adds``
    single-passage adds (2Wiki from ``offset``), then ``deletes`` single deletes; print JSON.
    With ``warm_cache``, :func:`prefetch` first (a writer that has been running a while)."""
    from hippo import open_index
    from hippo.config import Config
    from hippo.embed import make_embedder

    t = time.perf_counter()
    cfg = Config()
    emb = make_embedder(cfg.embed, cfg.llm)
    emb.encode_documents(["warm up"])
    model_s = time.perf_counter() - t
    t = time.perf_counter()
    mem = open_index(index, writable=True, embedder=emb)
    open_s = time.perf_counter() - t
    prefetched = prefetch(index) if warm_cache else None
    rows: list[dict[str, Any]] = []
    items = wiki(offset, warmup + adds)
    added: list[str] = []
    for n, item in enumerate(items):
        io0 = io_bytes()
        t = time.perf_counter()
        ids = mem.add([item])
        wall = time.perf_counter() - t
        io1 = io_bytes()
        rep = mem._writer.last_report
        added += ids
        m = mem.manifest
        rows.append({
            "warmup": n < warmup, "ms": round(1000 * wall, 2),
            **{f"{k}_ms": round(1000 * v, 2) for k, v in rep.timings_s.items()},
            "segment_bytes": int(rep.segment.get("bytes", 0)), "new_entities": rep.synonymy.get("new_entities"),
            "pairs_scored": rep.synonymy.get("pairs_scored"), "segments": len(m["segments"]),
            "wchar": io1["wchar"] - io0["wchar"], "merge_running": bool(mem._writer._job and mem._writer._job.is_alive()),
        })
        log(f"  add {n}: {rows[-1]['ms']:.0f} ms (extract {rows[-1].get('extract_ms')}, embed {rows[-1].get('embed_ms')}, "
            f"commit {rows[-1].get('commit_ms')}), {rows[-1]['segments']} segments")
    del_rows: list[dict[str, Any]] = []
    if deletes:
        snap = mem.snapshot
        n_p = int(snap.manifest["totals"]["passages"])
        rng = random.Random(17)
        victims = [snap.passage_ids[r] for r in rng.sample(range(min(n_p, 1_000_000)), deletes + 5)]
        for n, pid in enumerate(victims):
            t = time.perf_counter()
            mem.delete([pid])
            wall = time.perf_counter() - t
            del_rows.append({"warmup": n < 5, "ms": round(1000 * wall, 2), "segments": len(mem.manifest["segments"])})
            log(f"  delete {n}: {del_rows[-1]['ms']:.0f} ms")
    t = time.perf_counter()
    last_job = mem._writer.wait()
    wait_s = time.perf_counter() - t
    t = time.perf_counter()
    res = mem.retrieve("Who was the queen of Lotharingia?", k=5)
    query_ms = 1000 * (time.perf_counter() - t)
    # read after write: a query right after each of 10 adds, against 10 queries with no write between
    questions = ["Who was the queen of Lotharingia?", "Where was the director of the film born?",
                 "When did the author of the novel die?", "Which country is the company based in?"]
    after_write, no_write = [], []
    for n, item in enumerate(wiki(offset + warmup + adds + 10, 10)):
        mem.add([item])
        t = time.perf_counter()
        mem.retrieve(questions[n % 4], k=5)
        after_write.append(1000 * (time.perf_counter() - t))
    for n in range(10):
        t = time.perf_counter()
        mem.retrieve(questions[n % 4], k=5)
        no_write.append(1000 * (time.perf_counter() - t))
    mem._writer.wait()
    counted = [r for r in rows if not r["warmup"]]
    history = [json.loads(line) for line in (index / "history.jsonl").read_text().splitlines() if line.strip()]
    jobs = [h for h in history if h.get("operation") in ("merge", "compact")]
    out = {
        "adds": len(counted), "warmup": warmup, "model_load_s": round(model_s, 2), "open_s": round(open_s, 2), "prefetch": prefetched,
        "ms": pct([r["ms"] for r in counted]),
        **{f"{k}_ms": pct([r[f"{k}_ms"] for r in counted if f"{k}_ms" in r]) for k in ("extract", "embed", "commit", "write")},
        "segment_bytes": pct([r["segment_bytes"] for r in counted]),
        "adds_that_wrote_nothing": sum(not r["segment_bytes"] for r in counted),
        "adds_during_a_merge": sum(r["merge_running"] for r in counted),
        "deletes": {"n": sum(not r["warmup"] for r in del_rows), "ms": pct([r["ms"] for r in del_rows if not r["warmup"]])}
        if deletes else None,
        "merges_and_compactions": [{k: h.get(k) for k in ("operation", "source", "segment", "seconds")} for h in jobs],
        "last_job": last_job, "wait_for_merge_s": round(wait_s, 2), "query_after_ms": round(query_ms, 1),
        "query_right_after_an_add_ms": pct(after_write), "query_with_no_write_between_ms": pct(no_write),
        "query_after_top": [h.title for h in res.hits[:3]],
        "segments_at_end": len(mem.manifest["segments"]), "counts_at_end": mem.manifest["counts"],
        "peak_rss_gb": round(peak_rss_gb(), 2), "rows": rows, "delete_rows": del_rows, "added_ids": added,
    }
    mem.close()
    print(json.dumps(out))


def part_latency(sizes: list[int], adds: int, warmup: int, warm_cache: bool = False) -> dict[str, Any]:
    """Add latency by index size; with ``warm_cache`` (``--prefetch``) the child reads the
    entity vectors first and the result is the part ``latency-warm``."""
    part = "latency-warm" if warm_cache else "latency"
    results = {}
    for size in sizes:
        src, built = ensure_index(size)
        work = clone(src, WORK / f"latency-{size}")
        log(f"[latency] {size:,} passages: {warmup} warm-up + {adds} single adds")
        load0 = os.getloadavg()[0]
        r = run_child(["--child", "latency", "--index", str(work), "--adds", str(adds), "--warmup", str(warmup), "--deletes", "0",
                       *(["--prefetch"] if warm_cache else [])])
        r.update(index=built, load_avg_before=round(load0, 2), load_avg_after=round(os.getloadavg()[0], 2))
        results[str(size)] = r
        log(f"[latency] {size:,}: whole p50 {r['ms']['p50']} ms p95 {r['ms']['p95']}; commit p50 {r['commit_ms']['p50']} "
            f"p95 {r['commit_ms']['p95']}; extract p50 {r['extract_ms']['p50']}, embed p50 {r['embed_ms']['p50']}")
        shutil.rmtree(work)
    saved = RESULTS / f"living-{part}.json"
    prior = json.loads(saved.read_text()) if saved.exists() else {}
    merged = {**prior.get("sizes", {}), **results}
    out = {"part": part, "machine": machine(), "targets": {"whole_p50_ms": 150, "commit_p50_ms": 30},
           "command": f"python benchmarks/living.py latency --sizes {','.join(map(str, sizes))} --adds {adds}"
                      + (" --prefetch" if warm_cache else ""),
           "sizes": dict(sorted(merged.items(), key=lambda kv: int(kv[0])))}
    save(part, out)
    if not warm_cache:
        plot()
    return out


def plot() -> Path | None:
    """results/living-latency.png: p50 (left) and p95 (right) of the add and its parts by index size."""
    path = RESULTS / "living-latency.json"
    if not path.exists():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads(path.read_text())["sizes"]
    sizes = sorted(int(s) for s in data)
    parts = (("ms", "whole add", "-o"), ("embed_ms", "embed (MiniLM)", "--^"), ("extract_ms", "extract (spaCy)", "--s"),
             ("commit_ms", "commit (after embedding, to durable)", "-D"))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), sharex=True)
    for ax, q in zip(axes, ("p50", "p95")):
        for key, label, style in parts:
            ax.plot(sizes, [data[str(s)][key][q] for s in sizes], style, label=label)
        if q == "p50":
            ax.axhline(150, color="grey", ls=":", lw=1)
            ax.text(sizes[0], 154, "target: whole add <= 150 ms", fontsize=8, color="grey")
            ax.axhline(30, color="grey", ls=":", lw=1)
            ax.text(sizes[0], 33, "target: commit <= 30 ms", fontsize=8, color="grey")
        ax.set_xscale("log")
        ax.set_xlabel("passages in the index")
        ax.set_ylim(0, max(175.0, ax.get_ylim()[1]) if q == "p50" else None)
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(f"{q} over {data[str(sizes[0])]['adds']} single-passage adds", fontsize=10)
    axes[0].set_ylabel("milliseconds")
    axes[0].legend(fontsize=8, loc="center left")
    fig.suptitle("hippo: latency of adding one 2Wiki passage (spaCy + MiniLM in process) vs index size", fontsize=10)
    fig.tight_layout()
    out = RESULTS / "living-latency.png"
    fig.savefig(out, dpi=120)
    plt.close(fig)
    log(f"[saved] {out}")
    return out


# --------------------------------------------------------------------------- part 2: stream


def child_stream(index: Path, start: int, stop: int | None) -> None:
    """Add MuSiQue passages ``start:`` one at a time (recorded OpenIE, MiniLM; automatic
    merges and compactions on, in the background as a long-lived engine runs them)."""
    from hippo import open_index

    items = musique(start, stop)
    mem = open_index(index, writable=True)
    seen = {s["name"] for s in mem.manifest["segments"]}
    job_segments: dict[str, dict[str, Any]] = {}
    rows = []
    t_all = time.perf_counter()
    for n, item in enumerate(items):
        io0 = io_bytes()
        t = time.perf_counter()
        mem.add([item])
        wall = time.perf_counter() - t
        io1 = io_bytes()
        rep = mem._writer.last_report
        m = mem.manifest
        own = rep.segment.get("name")
        for s in m["segments"]:  # segments written by merges / compactions since the last look
            if s["name"] not in seen and s["name"] != own:
                job_segments[s["name"]] = {"bytes": int(s["bytes"]), "rows": s["rows"], "kind": s.get("kind"), "after_add": n}
            seen.add(s["name"])
        seen.add(own)
        rows.append({"ms": round(1000 * wall, 2), **{f"{k}_ms": round(1000 * v, 2) for k, v in rep.timings_s.items()},
                     "segment_bytes": int(rep.segment.get("bytes", 0)), "manifest_bytes": (index / "CURRENT").stat().st_size,
                     "segments": len(m["segments"]), "wchar": io1["wchar"] - io0["wchar"]})
        if n % 100 == 0:
            log(f"  add {n}: {rows[-1]['ms']:.0f} ms, {rows[-1]['segments']} segments")
    add_s = time.perf_counter() - t_all
    last = mem._writer.wait()
    total_s = time.perf_counter() - t_all
    for s in mem._writer.snapshot.manifest["segments"]:  # the writer's last commit (a merge may follow the last add)
        if s["name"] not in seen:
            job_segments[s["name"]] = {"bytes": int(s["bytes"]), "rows": s["rows"], "kind": s.get("kind"), "after_add": len(items)}
    history = [json.loads(line) for line in (index / "history.jsonl").read_text().splitlines() if line.strip()]
    jobs = [h for h in history if h.get("operation") in ("merge", "compact")]
    missed = [h["segment"] for h in jobs if h.get("segment") not in job_segments]
    print(json.dumps({
        "adds": len(rows), "add_loop_s": round(add_s, 2), "total_s": round(total_s, 2), "rows": rows,
        "job_segments": job_segments, "jobs": [{k: h.get(k) for k in ("generation", "operation", "source", "segment", "seconds")}
                                               for h in jobs],
        "job_segments_not_observed": missed, "last_job": last, "final_manifest_counts": mem.manifest["counts"],
        "segments_at_end": len(mem.manifest["segments"]), "peak_rss_gb": round(peak_rss_gb(), 2),
    }))
    mem.close()


def evaluate(index: Path, tag: str) -> dict[str, Any]:
    """``hippo eval`` with both graph retrievers; recall and the top-10 of every question."""
    out = {}
    for retriever in ("hippo", "hipporag2"):
        per = WORK / f"eval-{tag}-{retriever}.jsonl"
        rep, wall = hippo_cli("eval", str(index), "--questions", str(QUESTIONS), "--retriever", retriever,
                              "--per-question", str(per))
        rows = [json.loads(line) for line in per.read_text().splitlines() if line.strip()]
        out[retriever] = {"recall": rep["recall"], "latency_ms": rep["latency_ms"], "eval_wall_s": round(wall, 1),
                          "top10": {r["id"]: r["retrieved"][:10] for r in rows}}
    return out


def agreement(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for retriever in a:
        ta, tb = a[retriever]["top10"], b[retriever]["top10"]
        same = [q for q in ta if ta[q] == tb.get(q)]
        same_set = [q for q in ta if set(ta[q]) == set(tb.get(q, []))]
        out[retriever] = {"recall_equal": a[retriever]["recall"] == b[retriever]["recall"],
                          "top10_identical": len(same), "top10_same_set": len(same_set), "questions": len(ta),
                          "differing": [q for q in ta if ta[q] != tb.get(q)][:10]}
    return out


def part_stream(base_rows: int, limit: int | None) -> dict[str, Any]:
    WORK.mkdir(parents=True, exist_ok=True)
    oneshot, stream = WORK / "stream-oneshot", WORK / "stream"
    for p in (oneshot, stream):
        if p.exists():
            shutil.rmtree(p)
    log("[stream] one-shot build of all 1,890 MuSiQue passages (recorded OpenIE)")
    stop = base_rows + limit if limit else None
    one, one_s = hippo_cli("index", str(corpus_file(f"musique-0-{stop}", musique(0, stop))), "--out", str(oneshot),
                           "--openie", str(OPENIE))
    log(f"[stream] base: first {base_rows} passages")
    base, base_s = hippo_cli("index", str(corpus_file(f"musique-first{base_rows}", musique(0, base_rows))), "--out", str(stream),
                             "--openie", str(OPENIE))
    base_bytes = du(stream)
    log("[stream] adding the other passages one at a time")
    s = run_child(["--child", "stream", "--index", str(stream), "--start", str(base_rows), *(["--stop", str(stop)] if stop else [])])
    rows = s.pop("rows")
    seg_bytes = [r["segment_bytes"] for r in rows]
    manifest_bytes = [r["manifest_bytes"] for r in rows]
    job_bytes = sum(j["bytes"] for j in s["job_segments"].values())
    info, _ = hippo_cli("info", str(stream), "--verify")
    log("[stream] evaluating the streamed index and the one-shot build")
    ev_one = evaluate(oneshot, "oneshot")
    ev_before = evaluate(stream, "stream-before")
    compact, compact_s = hippo_cli("compact", str(stream))
    info_after, _ = hippo_cli("info", str(stream), "--verify")
    ev_after = evaluate(stream, "stream-after")
    segs = [r["segments"] for r in rows]
    out = {
        "part": "stream", "machine": machine(), "command": f"python benchmarks/living.py stream --base {base_rows}" + (f" --limit {limit}" if limit else ""),
        "base": {"passages": base_rows, "build_s": round(base_s, 1), "bytes": base_bytes},
        "oneshot": {"passages": one["counts"]["passages"], "build_s": round(one_s, 1), "bytes": du(oneshot)},
        "adds": s["adds"], "add_loop_s": s["add_loop_s"], "total_s_with_last_merge": s["total_s"],
        "add_ms": pct([r["ms"] for r in rows]), "commit_ms": pct([r.get("commit_ms", 0.0) for r in rows]),
        "extract_ms": pct([r.get("extract_ms", 0.0) for r in rows]), "embed_ms": pct([r.get("embed_ms", 0.0) for r in rows]),
        "bytes_per_add": {"segment": pct(seg_bytes), "segment_total": int(sum(seg_bytes)),
                          "manifest_rewrite": pct(manifest_bytes), "manifest_total": int(sum(manifest_bytes)),
                          "write_calls_total_wchar": int(sum(r["wchar"] for r in rows))},
        "merges_and_compactions": {"count": len(s["jobs"]), "by_operation": {
            op: sum(j["operation"] == op for j in s["jobs"]) for op in ("merge", "compact")},
            "bytes_written": job_bytes, "segments": s["job_segments"], "not_observed": s["job_segments_not_observed"],
            "jobs": s["jobs"]},
        "segments_over_time": {"max": max(segs), "mean": round(float(np.mean(segs)), 2), "at_end": s["segments_at_end"],
                               "every_10th": segs[::10]},
        "verify_before_compact": info.get("verified"), "verify_after_compact": info_after.get("verified"),
        "final_compact": {"wall_s": round(compact_s, 2), **{k: compact.get(k) for k in ("seconds", "merged", "replayed", "merge_s")}},
        "recall": {"oneshot": {r: ev_one[r]["recall"] for r in ev_one}, "stream_before_compact": {r: ev_before[r]["recall"] for r in ev_before},
                   "stream_after_compact": {r: ev_after[r]["recall"] for r in ev_after}},
        "vs_oneshot_before_compact": agreement(ev_one, ev_before), "vs_oneshot_after_compact": agreement(ev_one, ev_after),
        "counts": {"oneshot": one["counts"], "stream_after_compact": info_after.get("counts")},
        "peak_rss_gb_stream_child": s["peak_rss_gb"],
        "rows": rows,
    }
    save("stream", out)
    return out


# --------------------------------------------------------------------------- part 3: query


def segmented(src: Path, dst: Path, items: list[dict[str, str]], segments: int) -> dict[str, Any]:
    """Clone ``src`` to ``dst`` and add ``items`` as ``segments`` writes with automatic merges off."""
    from hippo import open_index
    from hippo.config import from_dict
    from hippo.store import read_manifest

    clone(src, dst)
    m = read_manifest(dst)
    assert m is not None
    cfg = from_dict(m["config"]).replace({"runtime.auto_compact": False})
    per = -(-len(items) // segments)
    t = time.perf_counter()
    with open_index(dst, writable=True, config=cfg) as mem:
        for k in range(segments):
            mem.add(items[k * per : (k + 1) * per])
        m = mem.manifest
    return {"segments": len(m["segments"]), "passages": m["counts"]["passages"], "add_s": round(time.perf_counter() - t, 1)}


def child_query(a: Path, b: Path, kind: str, n: int, rounds: int) -> None:
    """Retrieve latency of indexes ``a`` and ``b`` in one process, one query at a time, the two
    interleaved (alternating which goes first) so both see the same machine load."""
    from hippo import open_index
    from hippo.config import Config
    from hippo.embed import make_embedder

    cfg = Config()
    emb = make_embedder(cfg.embed, cfg.llm)
    ea, eb = open_index(a, embedder=emb), open_index(b, embedder=emb)
    if kind == "musique":
        from hippo.evaluation import load_questions

        texts = [q.question for q in load_questions(QUESTIONS)][:n]
    else:
        size = int(kind.split("-")[1])
        qrows = json.loads((CACHE / f"synth-{size}" / "queries.json").read_text())
        texts = [f"What is the {f.relation} of {f.subject.title()}?" for f in (ea.facts[q["fact"]] for q in qrows[:n])]
    out: dict[str, Any] = {"queries": len(texts), "rounds": rounds}
    for retriever in ("hippo", "hipporag2"):
        for e in (ea, eb):
            e.warm(retriever)
            for q in texts[:5]:
                e.retrieve(q, k=10, retriever=retriever)
        times: dict[str, list[float]] = {"a": [], "b": []}
        same = 0
        for r in range(rounds):
            for i, q in enumerate(texts):
                order = (("a", ea), ("b", eb)) if (i + r) % 2 == 0 else (("b", eb), ("a", ea))
                got = {}
                for name, e in order:
                    t = time.perf_counter()
                    res = e.retrieve(q, k=10, retriever=retriever)
                    times[name].append(1000 * (time.perf_counter() - t))
                    got[name] = res.passage_ids
                same += r == 0 and got["a"] == got["b"]
        pa, pb = pct(times["a"]), pct(times["b"])
        out[retriever] = {"segmented_ms": pa, "compacted_ms": pb, "p50_ratio": round(pa["p50"] / pb["p50"], 3),
                          "p95_ratio": round(pa["p95"] / pb["p95"], 3), "top10_identical": same}
        log(f"  {kind} {retriever}: segmented p50 {pa['p50']} ms, compacted p50 {pb['p50']} ms, ratio {out[retriever]['p50_ratio']}")
    out["segments"] = [len(ea.manifest["segments"]), len(eb.manifest["segments"])]
    out["peak_rss_gb"] = round(peak_rss_gb(), 2)
    print(json.dumps(out))


def part_query(kinds: list[str], segments: int, rounds: int) -> dict[str, Any]:
    prior = json.loads((RESULTS / "living-query.json").read_text()) if (RESULTS / "living-query.json").exists() else {}
    results = dict(prior.get("indexes", {}))
    for kind in kinds:
        if kind == "musique":
            src = WORK / "query-musique-base"
            if src.exists():
                shutil.rmtree(src)
            hippo_cli("index", str(corpus_file("musique-first890", musique(0, 890))), "--out", str(src), "--openie", str(OPENIE))
            items = musique(890)
        else:
            src, _ = ensure_index(int(kind.split("-")[1]))
            items = wiki(1000, 1000)
        a, b = WORK / f"query-{kind}-segmented", WORK / f"query-{kind}-compacted"
        log(f"[query] {kind}: {len(items)} passages added as {segments} segments")
        made = segmented(src, a, items, segments)
        clone(a, b)
        comp, comp_s = hippo_cli("compact", str(b))
        log(f"[query] {kind}: compacted copy in {comp_s:.1f}s; timing retrieve")
        load0 = os.getloadavg()[0]
        r = run_child(["--child", "query", "--a", str(a), "--b", str(b), "--kind", kind, "--n", "100", "--rounds", str(rounds)])
        results[kind] = {**r, "built": made, "compact_s": round(comp_s, 1), "compact": {k: comp.get(k) for k in ("seconds", "merged")},
                         "load_avg_before": round(load0, 2), "load_avg_after": round(os.getloadavg()[0], 2)}
        for p in (a, b):
            shutil.rmtree(p)
    out = {"part": "query", "machine": machine(), "target_p50_ratio": 1.2,
           "command": f"python benchmarks/living.py query --kinds {','.join(kinds)}", "indexes": results}
    save("query", out)
    return out


# --------------------------------------------------------------------------- part 4: kill

KILL_CONFIG = {
    "embed.model": "hashing:64", "extract.extractor": "precomputed", "extract.openie": str(OPENIE),
    "runtime.max_segments": 4, "runtime.merge_factor": 3, "runtime.compact_min_rows": 60, "runtime.compact_ratio": 0.5,
}
"""The kill campaign's index: hashing vectors and the recorded OpenIE keep each write fast; small
merge thresholds make the tiered policy merge and compact often."""


def child_kill_driver(index: Path, seed: int, ops: int) -> None:
    """The writer the campaign kills: random adds (1-3 MuSiQue passages), deletes (1-3 live
    ids) and compactions, with the policy's automatic merges and compactions in a background
    thread. Prints ``BEGIN op ids`` before and ``ACK op ids`` after each operation returns
    (and ``BEGIN/END auto-merge|auto-compact`` around the automatic ones), flushed at once."""
    import hippo.live.memory as memory
    from hippo import open_index
    from hippo.corpus import make_passage

    lock = threading.Lock()

    def say(*words: Any) -> None:
        with lock:
            sys.stdout.write(" ".join(map(str, words)) + "\n")
            sys.stdout.flush()

    run = memory.MemoryWriter._run

    def traced(self: Any, what: str) -> None:
        say("BEGIN", f"auto-{what}", "[]")
        run(self, what)
        say("END", f"auto-{what}", json.dumps(self.last_job.get("error", "")))

    memory.MemoryWriter._run = traced  # type: ignore[method-assign]
    pool = musique()
    ids = [make_passage(d["text"], d["title"], None).id for d in pool]
    rng = random.Random(seed)
    mem = open_index(index, writable=True)
    say("OPEN", mem.manifest["generation"], "[]")
    for _ in range(ops):
        snap = mem.snapshot
        alive = snap.passage_alive
        live = [snap.passage_ids[r] for r in range(len(snap.passage_ids)) if alive is None or alive[r]]
        present = set(live)
        r = rng.random()
        fresh = [i for i in range(len(pool)) if ids[i] not in present]
        grow = 0.65 if len(live) < 80 else 0.45 if len(live) < 150 else 0.2  # keep ~100 live: the policy keeps compacting
        if fresh and (r < grow or len(live) < 20):
            pick = rng.sample(fresh, min(len(fresh), rng.randint(1, 3)))
            say("BEGIN", "add", json.dumps([ids[i] for i in pick]))
            got = mem.add([pool[i] for i in pick])
            say("ACK", "add", json.dumps(got))
        elif r < 0.9:
            pick = rng.sample(live, rng.randint(1, 3))
            say("BEGIN", "delete", json.dumps(pick))
            got = mem.delete(pick)
            say("ACK", "delete", json.dumps(got))
        else:
            say("BEGIN", "compact", "[]")
            rep = mem.compact()
            say("ACK", "compact", json.dumps([rep.get("operation")]))
    mem._writer.wait()
    say("DONE", mem.manifest["generation"], "[]")
    mem.close()


class Driver:
    """A running kill driver: its stdout lines, timestamped, read by a thread."""

    def __init__(self, index: Path, seed: int, ops: int) -> None:
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__)), "--child", "kill-driver", "--index", str(index),
                                      "--seed", str(seed), "--ops", str(ops)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=ENV)
        self.lines: queue.Queue[tuple[float, str, str, list[str]]] = queue.Queue()
        self.all: list[tuple[float, str, str, list[str]]] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            parts = line.rstrip("\n").split(" ", 2)
            if len(parts) == 3 and parts[0] in ("BEGIN", "ACK", "END", "OPEN", "DONE"):
                self.lines.put((time.monotonic(), parts[0], parts[1], json.loads(parts[2])))
        self.lines.put((time.monotonic(), "EOF", "", []))

    def next(self, timeout: float) -> tuple[float, str, str, list[str]] | None:
        try:
            item = self.lines.get(timeout=timeout)
        except queue.Empty:
            return None
        self.all.append(item)
        return item

    def drain(self) -> None:
        self._t.join(timeout=10)
        while True:
            try:
                self.all.append(self.lines.get_nowait())
            except queue.Empty:
                return


def live_ids(index: Path) -> set[str]:
    from hippo.live.snapshot import Snapshot

    snap = Snapshot.open(index)
    try:
        alive = snap.passage_alive
        return {snap.passage_ids[r] for r in range(len(snap.passage_ids)) if alive is None or alive[r]}
    finally:
        snap.close()


def check_index(index: Path) -> dict[str, Any]:
    """Open ``index`` as a reader, verify every segment's bytes, answer a question."""
    from hippo import open_index
    from hippo.live.snapshot import Snapshot

    snap = Snapshot.open(index)
    try:
        bad = [b for v, entry in zip(snap.views, snap.manifest["segments"]) for b in v.files.verify(entry)]
        segments = len(snap.manifest["segments"])
    finally:
        snap.close()
    engine = open_index(index)
    try:
        res = engine.retrieve("Who founded the journal?", k=5)
        return {"verified": not bad, "bad": bad, "answered": len(res.hits), "segments": segments,
                "leftovers": sorted(p.name for p in index.iterdir() if p.name.startswith((".tmp-", ".compacting")))}
    finally:
        engine.close()


def part_kill(kills: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    index = WORK / "kill"
    if index.exists():
        shutil.rmtree(index)
    WORK.mkdir(parents=True, exist_ok=True)
    sets = [a for k, v in KILL_CONFIG.items() for a in ("--set", f"{k}={v}")]
    hippo_cli("index", str(corpus_file("musique-first60", musique(0, 60))), "--out", str(index), *sets)
    state: dict[str, str] = dict.fromkeys(live_ids(index), "add")  # id -> last acknowledged operation
    targets = ["add", "delete", "compact", "auto-merge", "auto-compact", "any"]
    durations: dict[str, list[float]] = {t: [] for t in targets}
    events: list[dict[str, Any]] = []
    failures: list[str] = []
    t_start = time.perf_counter()
    k = 0
    while k < kills:
        target = targets[k % len(targets)]
        drv = Driver(index, seed=rng.randrange(1 << 30), ops=400)
        begun: dict[str, tuple[float, list[str]]] = {}  # op -> (start, ids) in flight
        pending: dict[str, str] = {}  # id -> op begun and not acknowledged
        fired_at = None
        kill_at = time.monotonic() + rng.uniform(1.0, 6.0) if target == "any" else None
        deadline = time.monotonic() + 60
        while True:
            now = time.monotonic()
            if kill_at is not None and now >= kill_at:
                break
            item = drv.next(timeout=max(0.001, (kill_at - now) if kill_at is not None else 0.5))
            if item is None:
                if time.monotonic() > deadline:
                    break
                continue
            when, what, op, ids = item
            if what == "EOF" or what == "DONE":
                break
            if what == "BEGIN":
                begun[op] = (when, ids)
                for i in ids:
                    pending[i] = op
                if op == target and kill_at is None:
                    typical = float(np.median(durations[op])) if durations[op] else 0.05
                    kill_at = when + rng.uniform(0.0, 1.2 * typical)
            elif what in ("ACK", "END"):
                start = begun.pop(op, (when, []))
                durations.setdefault(op, []).append(when - start[0])
                if what == "ACK" and op in ("add", "delete"):
                    for i in start[1]:
                        pending.pop(i, None)
                    for i in ids:
                        state[i] = op
                        pending.pop(i, None)
        fired_at = time.monotonic()
        drv.proc.send_signal(signal.SIGKILL)
        drv.proc.wait()
        drv.drain()
        # everything the driver printed before it died counts (the pipe keeps it)
        begun2: dict[str, list[str]] = {}
        acked_final: dict[str, str] = {}
        for _, what, op, ids in drv.all:
            if what == "BEGIN":
                begun2[op] = ids
            elif what in ("ACK", "END"):
                got = begun2.pop(op, [])
                if what == "ACK" and op in ("add", "delete"):
                    for i in [*got, *ids]:
                        acked_final[i] = op
                        pending.pop(i, None)
        state.update({i: op for i, op in acked_final.items() if op in ("add", "delete")})
        for op, ids in begun2.items():
            for i in ids:
                pending[i] = op
        in_flight = sorted(begun2)
        err = drv.proc.stderr.read() if drv.proc.stderr else ""
        if "Traceback" in err and "Killed" not in err:
            failures.append(f"kill {k}: driver error: {err.strip()[-500:]}")
        # check: every acknowledged add present, every acknowledged delete gone, the index opens and answers
        present = live_ids(index)
        lost = sorted(i for i, op in state.items() if op == "add" and i not in pending and i not in present)
        undead = sorted(i for i, op in state.items() if op == "delete" and i not in pending and i in present)
        chk = check_index(index)
        if lost or undead or not chk["verified"] or not chk["answered"]:
            failures.append(f"kill {k}: lost {lost[:5]} undead {undead[:5]} check {chk}")
        events.append({"kill": k, "target": target, "in_flight": in_flight, "ops_before_kill": sum(w == "ACK" for _, w, _, _ in drv.all),
                       "lost_acked_adds": len(lost), "deleted_came_back": len(undead), "pending_resolved": len(pending),
                       **{key: chk[key] for key in ("verified", "answered", "segments", "leftovers")}})
        log(f"[kill {k}] target {target}, in flight {in_flight or '-'}: lost {len(lost)}, undead {len(undead)}, "
            f"verified {chk['verified']}, segments {chk['segments']}, leftovers {chk['leftovers']}")
        # what a pending operation did is now settled: the index says
        for i in pending:
            state[i] = "add" if i in present else "delete"
        k += 1
        del fired_at
    # a last clean run, then the final compaction and the comparison with a from-scratch build
    drv = Driver(index, seed=rng.randrange(1 << 30), ops=20)
    drv.proc.wait()
    drv.drain()
    for _, what, op, ids in drv.all:
        if what == "ACK" and op in ("add", "delete"):
            for i in ids:
                state[i] = op
    final_compact, _ = hippo_cli("compact", str(index))
    leftovers = sorted(p.name for p in index.iterdir() if p.name.startswith((".tmp-", ".compacting")))
    present = live_ids(index)
    expected = {i for i, op in state.items() if op == "add"}
    equal = compare_rebuild(index)
    out = {
        "part": "kill", "machine": machine(), "command": f"python benchmarks/living.py kill --kills {kills} --seed {seed}",
        "config": KILL_CONFIG, "kills": len(events), "wall_s": round(time.perf_counter() - t_start, 1),
        "kills_by_target": {t: sum(e["target"] == t for e in events) for t in targets},
        "kills_by_operation_in_flight": {op: sum(op in e["in_flight"] for e in events)
                                         for op in ("add", "delete", "compact", "auto-merge", "auto-compact")},
        "kills_with_nothing_in_flight": sum(not e["in_flight"] for e in events),
        "lost_acknowledged_adds": sum(e["lost_acked_adds"] for e in events),
        "acknowledged_deletes_back": sum(e["deleted_came_back"] for e in events),
        "all_verified_and_answering": all(e["verified"] and e["answered"] for e in events),
        "failures": failures, "final": {"live_passages": len(present), "equals_acknowledged": present == expected,
                                        "leftovers_after_last_run": leftovers,
                                        "missing": sorted(expected - present)[:10], "extra": sorted(present - expected)[:10],
                                        "compact": {k: final_compact.get(k) for k in ("operation", "merged", "replayed")},
                                        "vs_rebuild": equal},
        "op_seconds_median": {op: round(float(np.median(v)), 4) for op, v in durations.items() if v},
        "events": events,
    }
    save("kill", out)
    return out


def compare_rebuild(index: Path) -> dict[str, Any]:
    """Build the live passages of ``index`` (one segment after compaction) from scratch with the
    same settings, in the same row order, and compare the two base segments file by file and
    the rankings of the 100 MuSiQue questions."""
    from hippo import open_index
    from hippo.evaluation import load_questions
    from hippo.live.snapshot import Snapshot

    snap = Snapshot.open(index)
    try:
        assert len(snap.manifest["segments"]) == 1, "compact first"
        items = []
        for r in range(len(snap.passage_ids)):
            title, content = snap.passage_titles[r], snap.passage_contents[r]
            text = content[len(title) + 1 :] if title and content.startswith(title + "\n") else content
            items.append({"id": snap.passage_ids[r], "title": title, "text": text})
        base = index / snap.manifest["segments"][0]["name"]
    finally:
        snap.close()
    scratch = WORK / "kill-rebuild"
    if scratch.exists():
        shutil.rmtree(scratch)
    sets = [a for k, v in KILL_CONFIG.items() for a in ("--set", f"{k}={v}")]
    hippo_cli("index", str(corpus_file("kill-live", items)), "--out", str(scratch), *sets)
    m2 = json.loads((scratch / "CURRENT").read_text())
    other = scratch / m2["segments"][0]["name"]
    names = sorted({p.name for p in base.iterdir()} | {p.name for p in other.iterdir()})
    differ = [n for n in names if not (base / n).exists() or not (other / n).exists()
              or (base / n).read_bytes() != (other / n).read_bytes()]
    questions = [q.question for q in load_questions(QUESTIONS)]
    ea, eb = open_index(index), open_index(scratch)
    same = sum(x.passage_ids == y.passage_ids for x, y in zip(ea.retrieve_many(questions, k=10), eb.retrieve_many(questions, k=10)))
    ea.close(), eb.close()
    return {"passages": len(items), "files": len(names), "files_differing": differ,
            "counts": {k: [json.loads((index / "CURRENT").read_text())["counts"].get(k), m2["counts"].get(k)]
                       for k in ("passages", "entities", "facts", "nodes", "edges")},
            "counts_equal": all(json.loads((index / "CURRENT").read_text())["counts"].get(k) == m2["counts"].get(k)
                                for k in ("passages", "entities", "facts", "nodes", "edges")),
            "top10_identical": same, "questions": len(questions)}


# --------------------------------------------------------------------------- part 5: million


def part_million(adds: int, deletes: int) -> dict[str, Any]:
    src, built = ensure_index(1_000_000)
    work = clone(src, WORK / "million")
    log(f"[million] {adds} adds, {deletes} deletes on the 10^6 prepared index")
    load0 = os.getloadavg()[0]
    r = run_child(["--child", "latency", "--index", str(work), "--adds", str(adds), "--warmup", "3", "--offset", "3000",
                   "--deletes", str(deletes)])
    rows, del_rows = r.pop("rows"), r.pop("delete_rows")
    r.pop("added_ids")
    before = json.loads((work / "CURRENT").read_text())
    log("[million] hippo compact")
    comp, comp_s = hippo_cli("compact", str(work), peak=True)
    after = json.loads((work / "CURRENT").read_text())
    check, _ = hippo_cli("info", str(work))
    out = {
        "part": "million", "machine": machine(), "command": f"python benchmarks/living.py million --adds {adds} --deletes {deletes}",
        "index": built, "load_avg_before": round(load0, 2),
        "add_ms": r["ms"], "add_parts_ms": {k: r[f"{k}_ms"] for k in ("extract", "embed", "commit", "write")},
        "delete_ms": r["deletes"]["ms"] if r.get("deletes") else None,
        "writer": {k: r[k] for k in ("model_load_s", "open_s", "peak_rss_gb", "adds_during_a_merge", "merges_and_compactions",
                                     "segments_at_end", "wait_for_merge_s", "query_after_ms",
                                     "query_right_after_an_add_ms", "query_with_no_write_between_ms")},
        "before_compact": {"segments": len(before["segments"]), "counts": before["counts"]},
        "compact": {"wall_s": round(comp_s, 1), "peak_rss_gb": comp.get("peak_rss_gb"), "peak_anon_gb": comp.get("peak_anon_gb"),
                    "peak_file_gb": comp.get("peak_file_gb"),
                    **{k: comp.get(k) for k in ("seconds", "merge_s", "swap_s", "merged", "replayed", "synonymy")}},
        "after_compact": {"segments": len(after["segments"]), "counts": after["counts"], "bytes": check.get("bytes")},
        "targets": {"compact_peak_rss_gb": 16},
        "rows": rows, "delete_rows": del_rows,
    }
    save("million", out)
    shutil.rmtree(work)
    return out


# --------------------------------------------------------------------------- torch threads


def child_threads() -> None:
    """Time MiniLM on the short-string batches an add embeds (entity names, fact texts), on
    one torch thread and on two (hippo's switch at :data:`hippo.threads.SERIAL_UP_TO`)."""
    import hippo.threads as th
    from hippo.config import Config
    from hippo.embed import make_embedder

    cfg = Config()
    emb = make_embedder(cfg.embed, cfg.llm)
    emb.encode_documents(["warm up"])
    docs = json.loads(OPENIE.read_text())["docs"]
    names = list(dict.fromkeys(e for d in docs[:40] for e in d["extracted_entities"]))
    out: dict[str, Any] = {"omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"), "load_avg": os.getloadavg()[0]}
    for threads in (1, 2):
        th.SERIAL_UP_TO = 10_000 if threads == 1 else 0  # every batch serial / every batch on the default threads
        for n in (10, 30, 100):
            times = []
            for _ in range(7):
                t = time.perf_counter()
                emb.encode_documents(names[:n])
                times.append(1000 * (time.perf_counter() - t))
            out[f"{threads}t_{n}_strings_ms"] = round(float(np.median(times)), 1)
    print(json.dumps(out))


def part_threads() -> dict[str, Any]:
    runs = []
    for policy in ("", "PASSIVE"):
        env = {**ENV, "OMP_WAIT_POLICY": policy} if policy else {k: v for k, v in ENV.items() if k != "OMP_WAIT_POLICY"}
        proc = subprocess.run([sys.executable, str(Path(__file__)), "--child", "threads"], check=True, stdout=subprocess.PIPE,
                              text=True, env=env)
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        log(f"[threads] {runs[-1]}")
    out = {"part": "threads", "machine": machine(), "command": "python benchmarks/living.py threads",
           "note": "median ms of MiniLM over n short strings, torch on 1 thread vs 2 threads", "runs": runs}
    prior = RESULTS / "living-threads.json"
    history = json.loads(prior.read_text()).get("history", []) if prior.exists() else []
    out["history"] = [*history, {"time": out["machine"]["time"], "load_avg": out["machine"]["load_avg"], "runs": runs}][-6:]
    save("threads", out)
    return out


# --------------------------------------------------------------------------- summary


def summary() -> Path:
    """Rewrite results/living.md from whatever parts are saved."""
    def load(part: str) -> dict[str, Any] | None:
        p = RESULTS / f"living-{part}.json"
        return json.loads(p.read_text()) if p.exists() else None

    lines = ["# The living index, measured (issue 17)", "",
             "Written by `benchmarks/living.py` (see its docstring for what each part does). Wall-clock figures on a "
             "shared 2-core machine; the load average at each run is in the JSON.", ""]
    for part, heading in (("latency", "page cache as the run found it"),
                          ("latency-warm", "entity vectors read once before timing (`--prefetch`): a writer that has been running")):
        lat = load(part)
        if not lat:
            continue
        lines += [f"## Latency of one `add` (one 2Wiki passage; spaCy + MiniLM in process; models loaded; {heading})", "",
                  f"`{lat['command']}`, {lat['machine']['time']}. Targets: whole p50 <= 150 ms, commit p50 <= 30 ms.", "",
                  "| passages | adds | whole p50 / p95 ms | extract p50 / p95 | embed p50 / p95 | commit p50 / p95 | segment bytes p50 | meets targets |",
                  "|---|---|---|---|---|---|---|---|"]
        for size, r in lat["sizes"].items():
            ok = r["ms"]["p50"] <= 150 and r["commit_ms"]["p50"] <= 30
            lines.append(f"| {int(size):,} | {r['adds']} | {r['ms']['p50']:.0f} / {r['ms']['p95']:.0f} | "
                         f"{r['extract_ms']['p50']:.0f} / {r['extract_ms']['p95']:.0f} | {r['embed_ms']['p50']:.0f} / "
                         f"{r['embed_ms']['p95']:.0f} | {r['commit_ms']['p50']:.1f} / {r['commit_ms']['p95']:.1f} | "
                         f"{r['segment_bytes']['p50']:,.0f} | {'yes' if ok else '**no**'} |")
        lines += ["", "![add latency](living-latency.png)", ""] if part == "latency" else [""]
    st = load("stream")
    if st:
        b = st["bytes_per_add"]
        mc = st["merges_and_compactions"]
        lines += ["## A stream of 1,000 single adds (MuSiQue-100, recorded OpenIE, automatic merges on)", "",
                  f"`{st['command']}`, {st['machine']['time']}. Base: first {st['base']['passages']} passages.", "",
                  f"- {st['adds']} adds in {st['add_loop_s']:.1f} s ({st['total_s_with_last_merge']:.1f} s with the last "
                  f"background merge); per add p50 {st['add_ms']['p50']:.0f} ms, p95 {st['add_ms']['p95']:.0f} ms "
                  f"(commit p50 {st['commit_ms']['p50']:.1f} ms).",
                  f"- Bytes per add: segment p50 {b['segment']['p50']:,.0f} (p95 {b['segment']['p95']:,.0f}; "
                  f"{b['segment_total'] / 2**20:.1f} MiB in all) + the manifest rewritten at each commit "
                  f"(p50 {b['manifest_rewrite']['p50']:,.0f} B). Merges and compactions: {mc['by_operation']} wrote "
                  f"{mc['bytes_written'] / 2**20:.1f} MiB more.",
                  f"- Live segments after each add: max {st['segments_over_time']['max']}, mean "
                  f"{st['segments_over_time']['mean']}, {st['segments_over_time']['at_end']} at the end.", "",
                  "| index | retriever | R@1 | R@2 | R@5 | R@10 | top-10 identical to one-shot |", "|---|---|---|---|---|---|---|"]
        for tag, key in (("one-shot build", "oneshot"), ("streamed, before compact", "stream_before_compact"),
                         ("streamed, after compact", "stream_after_compact")):
            for r, rec in st["recall"][key].items():
                agree = ("-" if key == "oneshot" else
                         f"{st['vs_oneshot_' + key.split('_', 1)[1]][r]['top10_identical']}/100")
                lines.append(f"| {tag} | {r} | {rec['1']:.3f} | {rec['2']:.3f} | {rec['5']:.3f} | {rec['10']:.3f} | {agree} |")
        lines.append("")
    qu = load("query")
    if qu:
        lines += ["## Queries over many segments vs compacted (retrieve, one query at a time, warm, interleaved)", "",
                  f"`{qu['command']}`, {qu['machine']['time']}. Target: p50 ratio <= 1.2.", "",
                  "| index | segments | retriever | segmented p50 / p95 ms | compacted p50 / p95 ms | p50 ratio | top-10 identical |",
                  "|---|---|---|---|---|---|---|"]
        for kind, r in qu["indexes"].items():
            for ret in ("hippo", "hipporag2"):
                x = r[ret]
                lines.append(f"| {kind} | {r['segments'][0]} vs {r['segments'][1]} | {ret} | {x['segmented_ms']['p50']:.1f} / "
                             f"{x['segmented_ms']['p95']:.1f} | {x['compacted_ms']['p50']:.1f} / {x['compacted_ms']['p95']:.1f} | "
                             f"{x['p50_ratio']:.2f} | {x['top10_identical']}/{r['queries']} |")
        lines.append("")
    ki = load("kill")
    if ki:
        f = ki["final"]
        lines += ["## SIGKILL campaign", "", f"`{ki['command']}`, {ki['machine']['time']}.", "",
                  f"- {ki['kills']} kills; by operation in flight: {ki['kills_by_operation_in_flight']} "
                  f"({ki['kills_with_nothing_in_flight']} between operations).",
                  f"- Acknowledged adds lost: {ki['lost_acknowledged_adds']}; acknowledged deletes back: "
                  f"{ki['acknowledged_deletes_back']}; every index verified and answering: {ki['all_verified_and_answering']}.",
                  f"- Final: {f['live_passages']} live passages, equal to the acknowledged set: {f['equals_acknowledged']}; "
                  f"after compaction vs a from-scratch build: files differing {f['vs_rebuild']['files_differing'] or 'none'} "
                  f"of {f['vs_rebuild']['files']}, counts equal {f['vs_rebuild']['counts_equal']}, top-10 identical "
                  f"{f['vs_rebuild']['top10_identical']}/{f['vs_rebuild']['questions']}.",
                  f"- Failures: {len(ki['failures'])}.", ""]
    mi = load("million")
    if mi:
        c = mi["compact"]
        lines += ["## The 10^6 prepared index", "", f"`{mi['command']}`, {mi['machine']['time']}.", "",
                  f"- add p50 {mi['add_ms']['p50']:.0f} ms (p95 {mi['add_ms']['p95']:.0f}; commit p50 "
                  f"{mi['add_parts_ms']['commit']['p50']:.1f} ms); delete p50 {mi['delete_ms']['p50']:.0f} ms "
                  f"(p95 {mi['delete_ms']['p95']:.0f}).",
                  f"- `hippo compact`: {c['wall_s']:.0f} s wall, peak RSS {c['peak_rss_gb']} GB (target <= 16 GB; VmHWM, "
                  f"which counts the pages of the memory-mapped segments it reads"
                  + (f"; sampled every 0.2 s: anonymous {c['peak_anon_gb']} GB, file-backed {c['peak_file_gb']} GB"
                     if c.get("peak_anon_gb") else "") + f"); "
                  f"{mi['before_compact']['segments']} segments -> {mi['after_compact']['segments']}.", ""]
    th = load("threads")
    if th:
        lines += ["## MiniLM on short strings: one torch thread vs two, on this shared machine", "",
                  f"`{th['command']}` (median ms over 7 calls; hippo runs batches of more than "
                  "`hippo.threads.SERIAL_UP_TO` = 8 texts on two threads).", "",
                  "| time | load avg | OMP_WAIT_POLICY | 10 strings 1t / 2t | 30 strings 1t / 2t | 100 strings 1t / 2t |",
                  "|---|---|---|---|---|---|"]
        for h in th.get("history", []):
            for r in h["runs"]:
                lines.append(f"| {h['time']} | {r['load_avg']:.1f} | {r['omp_wait_policy']} | "
                             + " | ".join(f"{r[f'1t_{n}_strings_ms']:.0f} / {r[f'2t_{n}_strings_ms']:.0f}" for n in (10, 30, 100))
                             + " |")
        lines.append("")
    path = RESULTS / "living.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", nargs="?", choices=["latency", "plot", "stream", "query", "kill", "million", "threads", "summary"])
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)), help="latency: index sizes")
    ap.add_argument("--adds", type=int, default=60, help="latency/million: timed adds per size")
    ap.add_argument("--warmup", type=int, default=5, help="latency: warm-up adds (not counted)")
    ap.add_argument("--deletes", type=int, default=50, help="million: timed single deletes")
    ap.add_argument("--base", type=int, default=890, help="stream: passages in the first build")
    ap.add_argument("--limit", type=int, help="stream: add only this many (default: every passage after --base)")
    ap.add_argument("--kinds", default="musique,synth-100000", help="query: indexes (musique, synth-N)")
    ap.add_argument("--segments", type=int, default=50, help="query: segments of the uncompacted index")
    ap.add_argument("--rounds", type=int, default=2, help="query: passes over the questions")
    ap.add_argument("--kills", type=int, default=60, help="kill: SIGKILLs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prefetch", action="store_true",
                    help="latency: read the entity vectors once before timing (a writer that has been running); "
                         "saved as the part latency-warm")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--index", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--offset", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--start", type=int, default=890, help=argparse.SUPPRESS)
    ap.add_argument("--stop", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--ops", type=int, default=400, help=argparse.SUPPRESS)
    ap.add_argument("--a", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--b", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--kind", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=100, help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.child == "latency":
        return child_latency(args.index, args.adds, args.warmup, args.offset, args.deletes, args.prefetch)
    if args.child == "stream":
        return child_stream(args.index, args.start, args.stop)
    if args.child == "query":
        return child_query(args.a, args.b, args.kind, args.n, args.rounds)
    if args.child == "threads":
        return child_threads()
    if args.child == "kill-driver":
        return child_kill_driver(args.index, args.seed, args.ops)
    if args.part is None:
        ap.error("name a part")
    if args.part == "latency":
        part_latency([int(s) for s in args.sizes.split(",")], args.adds, args.warmup, args.prefetch)
    elif args.part == "plot":
        plot()
    elif args.part == "stream":
        part_stream(args.base, args.limit)
    elif args.part == "query":
        part_query(args.kinds.split(","), args.segments, args.rounds)
    elif args.part == "kill":
        part_kill(args.kills, args.seed)
    elif args.part == "million":
        part_million(args.adds, args.deletes)
    elif args.part == "threads":
        part_threads()
    elif args.part == "summary":
        log(f"[saved] {summary()}")


if __name__ == "__main__":
    main()
