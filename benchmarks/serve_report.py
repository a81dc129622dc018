"""Write ``benchmarks/results/serve.md`` from the JSON results of the ``serve_*`` benchmarks.

    python benchmarks/serve_report.py [--load serve_load] [--faults serve_faults] [--fuzz serve_fuzz]
                                      [--before serve_load-before-living]

``--before`` names a load result to compare with (the same benchmark before the living index).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _load(stem: str) -> dict[str, Any] | None:
    path = RESULTS / f"{stem}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _rev(d: dict[str, Any]) -> str:
    """`` at revision X`` (the commit measured), or that it was not recorded (older results)."""
    rev = d.get("revision") or d.get("machine", {}).get("revision")
    return f" at revision `{rev}`" if rev else " (revision not recorded)"


def load_section(d: dict[str, Any], title: str) -> list[str]:
    m = d["machine"]
    out = [f"## {title}", "", f"`{d['command']}` on {d['date']}{_rev(d)}; {m['cpus']} cores, Python {m['python']}, "
           f"load average at the end {', '.join(map(str, m['load_average']))} (the machine is shared).", "",
           f"{d['readers']} readers and {d['writers']} writer for {d['elapsed_s']} s against MuSiQue-100 (namespace "
           f"`musique`, recorded OpenIE, MiniLM) and {d['small_namespaces']} small namespaces (25 passages each, "
           f"written through the API first, {d['setup_s']} s). Client and server share the 2 cores.", "",
           "| endpoint | requests | per s | errors | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|---|---|---|"]
    for op, r in d["per_endpoint"].items():
        out.append(f"| {op} | {r['requests']} | {r['per_s']} | {r['errors']} | {r['p50']} | {r['p95']} | {r['p99']} |")
    total = sum(r["requests"] for r in d["per_endpoint"].values())
    out += ["", f"- Requests: **{total}** ({round(total / d['elapsed_s'], 1)}/s), errors: **{d['errors']}**.",
            f"- Server RSS: {d['rss_mb_before_load']} MiB before the load, {d['rss_mb']['max']} MiB at most, "
            f"{d['rss_mb']['last']} MiB at the end"
            + (f" (every 10 s: {', '.join(map(str, d['rss_mb']['every_10s']))})." if d["rss_mb"].get("every_10s") else "."),
            f"- Writes acknowledged: **{d['writes_acked']}**; missing from the index at the end (read from disk): "
            f"**{d['writes_missing_at_end']}**; passages at the end: {d['passages_at_end']}; the last 5 writes found by "
            f"retrieval: {d['last5_writes_found_by_retrieval']}/5; index files failing their digest: "
            f"{len(d['index_files_corrupt'])}.", ""]
    alone = d.get("writes_alone")
    if alone:
        c, s = alone["client_ms"], alone["server_write_ms"]
        out += [f"Write cost alone (before the load, no other request to this server; other jobs on the machine): {alone['writes']} one-passage writes into "
                f"musique, client p50 / p95 / p99 {c['p50']} / {c['p95']} / {c['p99']} ms, the server's own time "
                f"(extraction, embedding, synonymy, graph entries, commit) {s['p50']} / {s['p95']} / {s['p99']} ms; the "
                f"first write (which opens the namespace's writer) {alone['first_write_ms']} ms, of which opening "
                f"{alone['first_open_ms']} ms.", ""]
    ab = d.get("read_batching_ab")
    if ab:
        out += [f"Read batching, A/B in the same run ({ab['seconds_each']:g} s each, a fresh server each, same load):", "",
                "| server | reads per s | retrieve musique p50 / p95 / p99 ms | errors |", "|---|---|---|---|"]
        for label in ("unbatched", "batched"):
            r = ab[label]["retrieve_musique"]
            out.append(f"| {label} | {ab[label]['reads_per_s']} | {r['p50']} / {r['p95']} / {r['p99']} | {ab[label]['errors']} |")
        out += ["", f"Batched / unbatched reads per second: **{ab['reads_per_s_ratio_batched_to_unbatched']}**.", ""]
    return out


def before_after(now: dict[str, Any], before: dict[str, Any], stem: str) -> list[str]:
    """The same load before the living index (every write rewrote the whole index) and now."""
    out = ["## Before and after the living index", "",
           f"The same benchmark before the living index (`{before['command']}` on {before['date']}, load average "
           f"{', '.join(map(str, before['machine']['load_average']))}; `{stem}.json`) and now. Runs at other times on "
           f"a shared machine: compare the large ratios only.", "",
           "| | before | now | now / before |", "|---|---|---|---|"]

    def row(label: str, b: float, n: float) -> None:
        out.append(f"| {label} | {b} | {n} | {round(n / b, 2) if b else '-'} |")

    bw, nw = before["per_endpoint"]["add passage (writer)"], now["per_endpoint"]["add passage (writer)"]
    row("writes acknowledged in the load", before["writes_acked"], now["writes_acked"])
    row("write p50 ms (beside 16 readers)", bw["p50"], nw["p50"])
    row("write p95 ms", bw["p95"], nw["p95"])
    row("write p99 ms", bw["p99"], nw["p99"])
    for op in ("retrieve musique", "retrieve small", "batch retrieve musique (4)"):
        b, n = before["per_endpoint"][op], now["per_endpoint"][op]
        row(f"{op}: per s", b["per_s"], n["per_s"])
        row(f"{op}: p50 ms", b["p50"], n["p50"])
        row(f"{op}: p99 ms", b["p99"], n["p99"])
    row("setup: 20 namespaces x 25 passages, s", before["setup_s"], now["setup_s"])
    row("server RSS max MiB", before["rss_mb"]["max"], now["rss_mb"]["max"])
    out.append("")
    return out


def faults_section(d: dict[str, Any]) -> list[str]:
    out = ["## Faults", ""]
    k = d.get("kill")
    if k:
        out += [f"`{k['command']}` on {k.get('date', d['date'])}{_rev(k if 'revision' in k else d)}.", "",
                f"- SIGKILLs: **{k['kills']}**, {k['killed_during_a_write']} of them while a write request was in flight.",
                f"- Writes acknowledged over the campaign: {k['writes_acked_total']}; lost: **{k['acked_writes_lost']}**.",
                f"- Kills after which an index file failed its digest: **{k['rounds_with_corrupt_index']}**.",
                f"- Restarts that served (retrieve 200, and the last acknowledged write found): "
                f"**{k['restarts_that_served']}/{k['restarts']}**; median start-up {k['median_startup_s']} s "
                f"(model load included).", ""]
    cut = d.get("disconnect")
    if cut:
        out += [f"`{cut['command']}` on {cut.get('date', d['date'])}{_rev(cut if 'revision' in cut else d)}: clients "
                f"that leave mid-request, each sending a 3-passage write into MuSiQue-100.", "",
                f"- Left after half the body: {cut['half_body']}; written: **{cut['half_body_written']}**.",
                f"- Left after the whole body, 0-1.5 s before the answer: {cut['whole_body']}; written whole: "
                f"**{cut['whole_body_written_whole']}**.",
                f"- Written in part: **{cut['partially_written']}**; index files failing their digest: "
                f"{len(cut['corrupt_files'])}.", ""]
    disk = d.get("disk")
    if disk:
        codes = [w["status"] for w in disk["writes_on_full_disk"]]
        refused = next((w for w in disk["writes_on_full_disk"] if w["status"] != 200), disk["writes_on_full_disk"][0])
        out += [f"`{disk['command']}` on {disk.get('date', d['date'])}{_rev(disk if 'revision' in disk else d)}: "
                f"the root on a {disk['tmpfs_mb']} MiB tmpfs, filled to "
                f"{disk['free_bytes_when_full']} bytes free.", "",
                f"- Writes on the full disk: {codes}; detail of a refusal: \"{refused['detail']}\" "
                f"(Retry-After {refused['retry_after']}).",
                f"- Retrieve on the full disk: {disk['read_on_full_disk']['status']}; index unchanged: "
                f"{disk['index_unchanged_on_full_disk']}; holds exactly the acknowledged writes: "
                f"{disk.get('index_holds_exactly_the_acked_writes', '-')}; files failing their digest: "
                f"{len(disk['corrupt_files_on_full_disk'])}.",
                f"- After freeing space: write {disk['write_after_freeing_space']}, the new passage is in the index: "
                f"{disk['index_after']['has_new_write']}, files failing their digest: "
                f"{len(disk['index_after']['corrupt_files'])}.", ""]
    return out


def fuzz_section(d: dict[str, Any]) -> list[str]:
    return ["## Fuzz (schemathesis)", "", f"`{d['command']}` on {d['date']}{_rev(d)}, {d['seconds']} s.", "",
            f"- Cases: **{d['cases']}** over {len(d['cases_per_operation'])} operations "
            f"({', '.join(f'{k}: {v}' for k, v in d['cases_per_operation'].items())}).",
            f"- Checks: {', '.join(d['checks'])}.",
            f"- Statuses: {', '.join(f'{k}: {v}' for k, v in d['statuses'].items())}; **5xx: {d['server_errors_5xx']}**.",
            f"- Failed checks: {d['failed_checks'] or 'none'}; stack traces in the server log: "
            f"{d['tracebacks_in_server_log']}.",
            *[f"- Schemathesis warned: {w.strip().lstrip('⚠️').strip()}" for w in d.get("summary", "").splitlines()
              if w.strip().startswith("⚠️")], ""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--load", nargs="*", default=["serve_load", "serve_load-rss"])
    ap.add_argument("--faults", default="serve_faults")
    ap.add_argument("--fuzz", default="serve_fuzz")
    ap.add_argument("--before", default="serve_load-before-living")
    args = ap.parse_args()
    lines = ["# hippo serve benchmarks", "",
             "Scripts: `benchmarks/serve_load.py`, `benchmarks/serve_faults.py`, `benchmarks/serve_fuzz.py` (each "
             "starts a real `hippo serve` process on a loopback port); this page: `benchmarks/serve_report.py`. "
             "Writes go through the living index (one segment per write); the figures from before it are in "
             "[serve-before-living.md](serve-before-living.md).", ""]
    for stem in args.load:
        d = _load(stem)
        if d:
            lines += load_section(d, f"Load ({stem})")
            before = _load(args.before)
            if before and stem == args.load[0]:
                lines += before_after(d, before, args.before)
    for stem, section in ((args.faults, faults_section), (args.fuzz, fuzz_section)):
        d = _load(stem)
        if d:
            lines += section(d)
    (RESULTS / "serve.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
