"""Time the Neo4j export of the MuSiQue-100 index: live over Bolt, and as CSV + neo4j-admin import.

    python benchmarks/neo4j_export.py                       # prints a table, writes benchmarks/results/
    python benchmarks/neo4j_export.py --index graphs/musique100 --screenshot

Runs a throw-away Neo4j (no auth, free ports) under benchmarks/.cache/neo4j-bench that
shares the jars of the project's server folder (.neo4j, fetched on first use); the
project's own server and data are left alone. The index is built (recorded OpenIE) into
benchmarks/.cache/musique100-openie when --index is not given and it does not exist yet.

Measured: a Bolt export into an empty database per batch size, then a second export
(nothing to write); CSV writing, the offline import and the server start after it.
Rates are (nodes + relationships) / seconds. --screenshot also stores one query's
activation and saves Browser showing the paths from its seeds to its passages.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = REPO.parent / "shared" / "data" / "musique100"
CACHE = HERE / ".cache"
RESULTS = HERE / "results"
QUESTION = "Who was the first president of the association that published the Journal of Psychotherapy Integration?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, help="index to export (default: build/reuse benchmarks/.cache/musique100-openie)")
    ap.add_argument("--batch-sizes", default="500,2000,5000,10000", help="Bolt batch sizes to time (comma-separated)")
    ap.add_argument("--screenshot", action="store_true", help="also save a Browser screenshot to benchmarks/results/")
    ap.add_argument("--no-write", action="store_true", help="print only; do not write benchmarks/results/")
    args = ap.parse_args()

    from hippo import build_index
    from hippo.export import expected_counts
    from hippo.export.neo4j_bolt import Target, connect, export_to_neo4j, neo4j_counts
    from hippo.export.neo4j_csv import export_neo4j_csv
    from hippo.neo4j import server
    from hippo.store import read_index_files

    index = args.index or CACHE / "musique100-openie"
    if not (index / "CURRENT").exists():
        print(f"building {index} ...", file=sys.stderr)
        build_index(DATA / "corpus.json", index, openie=DATA / "openie_gpt-3.5-turbo-1106.json")
    files = read_index_files(index)
    want = expected_counts(files)
    total = sum(want["nodes"].values()) + sum(want["relationships"].values())

    project_home = REPO / ".neo4j"
    server.install(project_home)
    home = CACHE / "neo4j-bench"
    server.stop(home)
    shutil.rmtree(home, ignore_errors=True)
    server.install(home, lib_from=project_home)

    def wipe(t: Target) -> None:
        """An empty database without hippo's constraints and indexes (names come from the server)."""
        with connect(t) as d, d.session(database="neo4j") as s:
            s.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()
            for r in d.execute_query("SHOW CONSTRAINTS YIELD name RETURN name").records:
                d.execute_query(f"DROP CONSTRAINT `{r['name']}` IF EXISTS")
            for r in d.execute_query("SHOW INDEXES YIELD name, type WHERE type <> 'LOOKUP' RETURN name").records:
                d.execute_query(f"DROP INDEX `{r['name']}` IF EXISTS")

    results: dict = {"index": str(index), "index_name": f"{index.name}/{files.generation.name}",
                     "load_before": " / ".join(f"{x:.1f}" for x in os.getloadavg()), "rows": total, "counts": want, "bolt": [], "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    info = server.start(home, auth=False, bolt_port=0, http_port=0)
    try:
        target = Target(info.bolt_uri, None)
        for size in [int(s) for s in args.batch_sizes.split(",")]:
            wipe(target)
            first = export_to_neo4j(files, target, batch_size=size)
            again = export_to_neo4j(files, target, batch_size=size)
            with connect(target) as d:
                got = neo4j_counts(d)
            ok = all(got["nodes"].get(k) == v for k, v in want["nodes"].items()) and all(
                got["relationships"].get(k, 0) == v for k, v in want["relationships"].items()
            )
            results["bolt"].append({
                "batch_size": size, "seconds": round(first.seconds, 2), "rows_per_s": round(total / first.seconds),
                "noop_seconds": round(again.seconds, 2), "noop_changed": again.changed, "counts_match": ok,
            })
            print(json.dumps(results["bolt"][-1]), file=sys.stderr)
        if args.screenshot:
            results["screenshot"] = screenshot(files, target, info)
    finally:
        server.stop(home)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        export_neo4j_csv(files, Path(tmp) / "csv")
        csv_s = time.perf_counter() - t0
        import_s = server.admin_import(home, Path(tmp) / "csv")
    t0 = time.perf_counter()
    info = server.start(home, auth=False, bolt_port=0, http_port=0)
    start_s = time.perf_counter() - t0
    try:
        target = Target(info.bolt_uri, None)
        with connect(target) as d:
            got = neo4j_counts(d)
        sync = export_to_neo4j(files, target)
    finally:
        server.stop(home)
    ok = all(got["nodes"].get(k) == v for k, v in want["nodes"].items()) and all(
        got["relationships"].get(k, 0) == v for k, v in want["relationships"].items()
    )
    results["csv"] = {
        "write_s": round(csv_s, 2), "import_s": round(import_s, 2), "start_s": round(start_s, 2),
        "rows_per_s_import": round(total / import_s), "rows_per_s_write_and_import": round(total / (csv_s + import_s)),
        "counts_match": ok, "schema_sync_s": round(sync.seconds, 2), "schema_sync_changed": sync.changed,
    }
    shutil.rmtree(home, ignore_errors=True)
    report = render(results)
    print(report)
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "neo4j_export.json").write_text(json.dumps(results, indent=1) + "\n")
        (RESULTS / "neo4j_export.md").write_text(report)


def screenshot(files, target, info) -> str:
    from hippo import open_index
    from hippo.export.neo4j_bolt import write_query_activation
    from hippo.neo4j.browser import screenshot as shoot

    engine = open_index(files.root)
    write_query_activation(files, engine.retrieve(QUESTION, k=5), target)
    guide = (REPO / "hippo" / "neo4j" / "assets" / "guide.html").read_text()
    query = html.unescape(re.findall(r'<pre class="pre-scrollable code runnable">(.*?)</pre>', guide, re.S)[-1])
    out = RESULTS / "neo4j_browser.png"
    shown = shoot(info, query, out, height=900)
    print(json.dumps(shown), file=sys.stderr)
    return str(out.relative_to(REPO))


def render(r: dict) -> str:
    c = r["counts"]
    lines = [
        "# Neo4j export of the MuSiQue-100 index",
        "",
        f"Index: MuSiQue-100 (`{r['index_name']}`, recorded gpt-3.5-turbo OpenIE, all-MiniLM-L6-v2). Machine: {r['machine']},",
        f"load average {r['load_before']} before the run. Neo4j 5.26.30 Community, 1 GB heap, 512 MB page cache, on the",
        "same machine, driven by the Python driver 6.x. Rows are nodes + relationships. Reproduce with",
        "`hippo index ../shared/data/musique100/corpus.json --out graphs/musique100 --openie ../shared/data/musique100/openie_gpt-3.5-turbo-1106.json`",
        "then `python benchmarks/neo4j_export.py --index graphs/musique100 --screenshot`.",
        "",
        "| label or type | rows (index = Neo4j) |",
        "|---|---|",
        *(f"| (:{k}) | {v} |" for k, v in c["nodes"].items()),
        *(f"| [:{k}] | {v} |" for k, v in c["relationships"].items()),
        f"| total | {r['rows']} |",
        "",
        "## Bolt (`hippo export neo4j`, empty database, then the same export again)",
        "",
        "| batch size | export s | rows/s | second export s | second export changed | counts match |",
        "|---|---|---|---|---|---|",
    ]
    for b in r["bolt"]:
        lines.append(f"| {b['batch_size']} | {b['seconds']} | {b['rows_per_s']} | {b['noop_seconds']} | {b['noop_changed']} | {b['counts_match']} |")
    x = r["csv"]
    lines += [
        "",
        "## CSV + `neo4j-admin database import full` (`hippo export neo4j --csv`, `hippo neo4j import`)",
        "",
        "| write CSV s | import s | rows/s (import) | rows/s (write + import) | server start after s | counts match | Bolt sync after import s | it changed |",
        "|---|---|---|---|---|---|---|---|",
        f"| {x['write_s']} | {x['import_s']} | {x['rows_per_s_import']} | {x['rows_per_s_write_and_import']} | {x['start_s']} | {x['counts_match']} | {x['schema_sync_s']} | {x['schema_sync_changed']} |",
        "",
        "The import time includes the JVM start of neo4j-admin (several seconds of it at this size).",
        "The Bolt sync after the import writes no row (same digests) and only adds constraints and indexes.",
    ]
    if r.get("screenshot"):
        lines += ["", f"Browser with hippo's style, the paths from the seeds of one query to its passages: `{r['screenshot']}`."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
