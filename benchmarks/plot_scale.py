"""Plot PageRank latency and memory against corpus size, and write the scale table (issue 8).

    python benchmarks/plot_scale.py     # reads benchmarks/results/scale-*.json

Each ``scale-N.json`` comes from ``python benchmarks/scale.py --passages N --compare``. Per size,
the three PageRank implementations ran in separate processes on the same graph and the same
reset vectors (each query's linked-fact entities and its 200 most similar passages):

* **hippo** (forward push certifying the top 10: eps from 3e-6 down to 1e-7 at most,
  ``hippo.graph.push``), what ``retrieval.ppr_method=auto`` runs from 200,000 graph nodes on;
* **scipy power iteration** (``hippo.graph.ppr.PPRSolver``, method ``power``, 1e-6 L1);
* **igraph prpack** (``Graph.personalized_pagerank``), what the HippoRAG 2 reference calls.

Memory is the peak resident set of that process (graph arrays loaded, structure built, queries
run). Writes ``benchmarks/results/scale.png`` and ``benchmarks/results/scale.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
METHODS = (("hippo-push", "hippo (forward push)"), ("scipy-power", "scipy power iteration"), ("igraph-prpack", "igraph prpack"))


def load() -> list[dict]:
    rows = []
    for path in RESULTS.glob("scale-*.json"):
        if not path.stem.split("-", 1)[1].isdigit():
            continue
        try:
            rows.append(json.loads(path.read_text()))
        except json.JSONDecodeError:
            continue
    return sorted(rows, key=lambda r: r["passages"])


def table(rows: list[dict]) -> str:
    out = ["| passages | nodes | edges | build s | build peak GB (anon) | synonymy recall | open s (cold cache) | first query ms "
           "| PPR p50 / p95 ms | certified | top-10 = exact | retrieve p50 / p95 ms | batch q/s |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        d = r.get("detail", {})
        syn = d.get("recall", {}).get("synonymy", {}).get("recall")
        cert = d.get("ppr", {}).get("certified")
        anon = max((st["anon"] for st in d.get("build", {}).get("peak_by_stage_gb", {}).values()), default=None)
        cold = d.get("open_cold_cache") or {}
        first = d.get("open", {}).get("first_query_ms")
        out.append(
            f"| {r['passages']:,} | {r['nodes']:,} | {r['edges']:,} | {r['build_s']:.0f} | {r['peak_rss_gb']:.1f}"
            f"{'' if anon is None else f' ({anon:.1f})'} | {'-' if syn is None else f'{syn:.3f}'} | {r['open_s']:.2f}"
            f"{' (' + format(cold['open_s'], '.2f') + ')' if cold else ''} | {'-' if first is None else f'{first:.0f}'} | "
            f"{r['ppr_ms']['p50']:.1f} / {r['ppr_ms']['p95']:.1f} | {'-' if cert is None else f'{cert:.3f}'} | {r['top10_exact_frac']:.3f} | "
            f"{r['retrieve_ms']['p50']:.1f} / {r['retrieve_ms']['p95']:.1f} | {r['batch_qps']:.0f} |"
        )
    out += ["", "| passages | " + " | ".join(f"{label} p50 ms · peak GB" for _, label in METHODS) + " |",
            "|---|" + "---|" * len(METHODS)]
    for r in rows:
        cmp = r.get("detail", {}).get("compare", {})
        cells = []
        for key, _ in METHODS:
            m = cmp.get(key)
            cells.append(f"{m['ppr_ms']['p50']:,.1f} · {m['peak_rss_gb']:.2f} ({m['queries']} q)" if m else "not run")
        out.append(f"| {r['passages']:,} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def musique_table() -> str:
    path = RESULTS / "scale-musique.json"
    if not path.exists():
        return "(run `python benchmarks/scale.py --musique`)"
    data = json.loads(path.read_text())
    out = ["| variant | retriever | R@1 | R@2 | R@5 | R@10 | R@20 |", "|---|---|---|---|---|---|---|"]
    for r in data["rows"]:
        rec = r["recall"]
        out.append(f"| {r['variant']} | {r['retriever']} | " + " | ".join(f"{rec[k]:.3f}" for k in sorted(rec, key=int)) + " |")
    syn = data["approximate_build"]
    out.append("")
    out.append(f"Approximate build: {syn['edges']} edges (exact: {data['exact_edges']}); synonymy {syn['synonymy']}.")
    return "\n".join(out)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, mem) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, label in METHODS:
        pts = [(r["passages"], r["detail"]["compare"][key]) for r in rows if key in r.get("detail", {}).get("compare", {})]
        if not pts:
            continue
        xs = [p for p, _ in pts]
        lat.plot(xs, [m["ppr_ms"]["p50"] for _, m in pts], marker="o", label=label)
        mem.plot(xs, [m["peak_rss_gb"] for _, m in pts], marker="o", label=label)
    xs = [r["passages"] for r in rows]
    lat.plot(xs, [r["retrieve_ms"]["p50"] for r in rows], marker="s", linestyle="--", color="gray", label="hippo retrieve, end to end")
    mem.plot(xs, [r["peak_rss_gb"] for r in rows], marker="s", linestyle="--", color="gray", label="hippo index build (peak)")
    for ax, title, unit in ((lat, "PageRank per query (p50)", "ms"), (mem, "Peak memory of the process", "GB")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("passages")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("hippo at scale: synthetic HippoRAG-shaped corpora, 2 cores (benchmarks/scale.py)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    rows = load()
    if not rows:
        raise SystemExit("no benchmarks/results/scale-*.json yet: run benchmarks/scale.py --passages N --compare first")
    plot(rows, RESULTS / "scale.png")
    text = table(rows)
    (RESULTS / "scale.md").write_text(
        "# Scale (issue 8)\n\nProduced by `python benchmarks/scale.py --passages N --compare` for each N, then "
        "`python benchmarks/plot_scale.py`. Synthetic corpora (`benchmarks/synth.py`): random unit vectors with planted "
        "structure, so these are cost figures, not retrieval quality.\n\n" + text + "\n\n"
        "Notes: `open s` is the time to ready to query in a fresh process whose embedder is already loaded: "
        "`open_index` then `Engine.warm()` (spaCy's NER, the compiled push kernel, the push arrays), with the index in the "
        "page cache; in brackets the same after dropping the page cache (as after a reboot), which varies with the disk "
        "(at 10^6 from 2.5 to 5.0 s over the runs of 2026-12-04, `scale-ab-open-1000000-cold*.json`). `first query ms` is the first real query after that. "
        "PageRank is timed after `Engine.warm()`; retrieve and batch in a fresh process after every index file has been "
        "read once, so both are steady-state figures. "
        "`build peak GB` is the build process's VmHWM, which counts the pages of memory-mapped input files it touched; "
        "in brackets the peak of its anonymous memory (its own arrays). `top-10 = exact` counts a query when its top-10 passage set equals that of conjugate gradients to 1e-10 "
        "from the same reset vector: proved by the push's error bounds (`certified`), or checked by conjugate gradients "
        "(every uncertified query, plus a sample of certified ones as a check of the proof; counts in each "
        "`detail.ppr`). Synonymy recall: every pair at cosine >= 0.8 of 2,000 sampled entities, found by exact search, "
        "against the index's candidates. Earlier runs: `scale-1000000-run1-build.json` (first 10^6 build, HNSW-assigned "
        "IVF: 1,936 s, 22.2 GB); `scale-1000000-run3-build.json` (the final synonymy rule before its scan reused its "
        "work arrays: peak 21.3 GB, 17.2 GB anonymous); `scale-1000000-before-threads.json` (this index before small "
        "batches ran on one torch thread); `scale-ab-*.json` (`benchmarks/ab.py`: open and retrieve with an earlier "
        "revision of the code on this index).\n\n![scale](scale.png)\n\n"
        "## Effect on ranking, MuSiQue-100 (recorded OpenIE)\n\n`python benchmarks/scale.py --musique`: Recall@k as the "
        "large-index parts are switched on, on real questions.\n\n" + musique_table() + "\n"
    )
    print(text)


if __name__ == "__main__":
    main()
