"""Load benchmark of ``hippo serve``: 16 concurrent readers and 1 writer on loopback.

    flock /tmp/hippo-cpu.lock python benchmarks/serve_load.py --work /tmp/serve-bench

A real server process serves MuSiQue-100 (recorded OpenIE, MiniLM) as namespace ``musique``
and 20 small namespaces beside it (25 2Wiki passages each, written through the API before the
clock starts). Then, for ``--seconds`` (120): ``--readers`` (16) tasks send requests back to
back (retrieve on musique, retrieve on a random small namespace, batch retrieve of 4 questions,
info, list), and one writer adds 2Wiki passages to musique one at a time. Reported: throughput
and p50/p95/p99 per endpoint, errors (any status but 200, or a failed request), the server's
RSS, and whether every acknowledged write is in the index at the end (read from disk) and
findable by retrieval. Client and server share the machine's 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

from serve_common import (BENCH_KEY, RESULTS, fresh_root, index_ids, machine, percentiles, questions, rss_mb,
                          wiki_passages)

import httpx
from serve_proc import ServerProcess

OPS = [("retrieve musique", 0.55), ("retrieve small", 0.25), ("batch retrieve musique (4)", 0.10),
       ("info", 0.05), ("list", 0.05)]


async def run_load(url: str, pid: int, seconds: float, readers: int, n_small: int, pool: list[dict[str, str]],
                   qs: list[str], prefix: str = "w") -> dict[str, Any]:
    records: list[tuple[str, float, int]] = []
    acked: list[str] = []
    rss: list[float] = []
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=readers + 4, max_keepalive_connections=readers + 4)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {BENCH_KEY}"}, timeout=120,
                                 limits=limits) as c:

        async def reader(seed: int) -> None:
            rng = random.Random(seed)
            names = [o for o, _ in OPS]
            weights = [w for _, w in OPS]
            while time.monotonic() < deadline:
                op = rng.choices(names, weights)[0]
                t0 = time.perf_counter()
                try:
                    if op == "retrieve musique":
                        r = await c.get("/v1/ns/musique/retrieve", params={"q": rng.choice(qs), "k": 5})
                    elif op == "retrieve small":
                        ns = f"small-{rng.randrange(n_small):02d}"
                        r = await c.get(f"/v1/ns/{ns}/retrieve", params={"q": rng.choice(qs), "k": 5})
                    elif op.startswith("batch"):
                        r = await c.post("/v1/ns/musique/retrieve", json={"queries": rng.sample(qs, 4), "k": 5})
                    elif op == "info":
                        r = await c.get("/v1/ns/musique")
                    else:
                        r = await c.get("/v1/ns")
                    status = r.status_code
                except httpx.HTTPError:
                    status = -1
                records.append((op, (time.perf_counter() - t0) * 1000, status))

        async def writer() -> None:
            i = 0
            while time.monotonic() < deadline:
                p = pool[i]
                pid_ = f"{prefix}-{i:05d}"
                i += 1
                t0 = time.perf_counter()
                try:
                    r = await c.post("/v1/ns/musique/passages", json={"passages": [{**p, "id": pid_}]})
                    status = r.status_code
                    if status == 200 and r.json()["ids"] == [pid_]:
                        acked.append(pid_)
                except httpx.HTTPError:
                    status = -1
                records.append(("add passage (writer)", (time.perf_counter() - t0) * 1000, status))

        async def sampler() -> None:
            while time.monotonic() < deadline:
                rss.append(rss_mb(pid))
                await asyncio.sleep(1.0)

        t_start = time.monotonic()
        await asyncio.gather(*(reader(s) for s in range(readers)), writer(), sampler())
        elapsed = time.monotonic() - t_start
    per_op: dict[str, Any] = {}
    for op in [o for o, _ in OPS] + ["add passage (writer)"]:
        rows = [r for r in records if r[0] == op]
        ok = [ms for _, ms, st in rows if st == 200]
        per_op[op] = {"requests": len(rows), "per_s": round(len(rows) / elapsed, 2),
                      "errors": sum(1 for _, _, st in rows if st != 200), **percentiles(ok)}
    return {"elapsed_s": round(elapsed, 1), "per_endpoint": per_op, "acked": acked,
            "requests": len(records), "errors": sum(1 for *_, st in records if st != 200),
            "rss_mb": {"max": round(max(rss or [0]), 1), "last": round(rss[-1] if rss else 0, 1),
                       "first": round(rss[0] if rss else 0, 1), "every_10s": [round(x, 1) for x in rss[::10]]}}


def writes_alone(url: str, pool: list[dict[str, str]], n: int, log: Path) -> dict[str, Any]:
    """``n`` one-passage writes into musique with nothing else running: the client's latency and
    the server's own time for each (its ``write`` log lines: open + add, commit included)."""
    before = len(log.read_text().splitlines()) if log.exists() else 0
    ms = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {BENCH_KEY}"}, timeout=600) as c:
        for i in range(n):
            t0 = time.perf_counter()
            r = c.post("/v1/ns/musique/passages", json={"passages": [{**pool[i], "id": f"alone-{i:03d}"}]})
            r.raise_for_status()
            ms.append((time.perf_counter() - t0) * 1000)
    time.sleep(0.5)
    lines = [json.loads(x) for x in log.read_text().splitlines()[before:] if '"event": "write"' in x]
    server = [x["write_ms"] for x in lines if x.get("namespace") == "musique"][-n:]
    return {"writes": n, "client_ms": percentiles(ms), "server_write_ms": percentiles(server),
            "first_write_ms": round(ms[0], 1), "first_open_ms": lines[0]["open_ms"] if lines else None}


def _start(root: Path, work: Path, *extra: str) -> ServerProcess:
    return ServerProcess(root, "--keys", str(work / "load-keys.json"), "--rate", "0", *extra,
                         log=work / "load-server.log").start(timeout=300)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/serve-bench"))
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--readers", type=int, default=16)
    ap.add_argument("--small", type=int, default=20)
    ap.add_argument("--ab", type=float, default=0.0, metavar="SECONDS",
                    help="then run SECONDS without and SECONDS with read batching (a fresh server each) and compare")
    ap.add_argument("--alone", type=int, default=30, metavar="N",
                    help="first, N one-passage writes into musique with no other load (write cost alone)")
    ap.add_argument("--out", default="serve_load", help="results file stem under benchmarks/results/")
    args = ap.parse_args()
    root = fresh_root(args.work, "load")
    pool = wiki_passages()
    qs = questions()
    srv = _start(root, args.work)
    assert srv.proc is not None
    h = {"Authorization": f"Bearer {BENCH_KEY}"}
    fresh = pool[args.small * 25 :]
    try:
        t0 = time.perf_counter()
        for i in range(args.small):
            chunk = pool[i * 25 : (i + 1) * 25]
            r = httpx.post(f"{srv.url}/v1/ns/small-{i:02d}/passages", json={"passages": chunk}, headers=h, timeout=600)
            r.raise_for_status()
        setup_s = time.perf_counter() - t0
        alone = writes_alone(srv.url, pool[-args.alone:], args.alone, args.work / "load-server.log") if args.alone else None
        rss_before = rss_mb(srv.proc.pid)
        out = asyncio.run(run_load(srv.url, srv.proc.pid, args.seconds, args.readers, args.small, fresh, qs))
        acked = out.pop("acked")
        info = httpx.get(f"{srv.url}/v1/ns/musique", headers=h, timeout=60).json()
        found = 0
        for pid_ in acked[-5:]:  # the last writes are findable by retrieval
            text = fresh[int(pid_.split("-")[1])]["text"]
            hits = httpx.get(f"{srv.url}/v1/ns/musique/retrieve", params={"q": text, "k": 3, "retriever": "dense"},
                             headers=h, timeout=60).json()["hits"]
            found += any(x["passage_id"] == pid_ for x in hits)
    finally:
        code = srv.stop()
    ids, bad = index_ids(root / "musique")
    missing = [a for a in acked if a not in ids]
    result = {
        "command": f"flock /tmp/hippo-cpu.lock python benchmarks/serve_load.py --work {args.work} --seconds {args.seconds:g}"
                   + (f" --ab {args.ab:g}" if args.ab else "") + f" --alone {args.alone}",
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "readers": args.readers, "writers": 1,
        "small_namespaces": args.small, "setup_s": round(setup_s, 1), "writes_alone": alone,
        "rss_mb_before_load": round(rss_before, 1),
        **out, "writes_acked": len(acked), "writes_missing_at_end": len(missing),
        "passages_at_end": info["counts"]["passages"], "last5_writes_found_by_retrieval": found,
        "index_files_corrupt": bad, "server_exit": code,
    }
    if args.ab:
        ab: dict[str, Any] = {}
        offset = len(acked) + 10
        for label, extra in (("unbatched", ("--no-batch-reads",)), ("batched", ())):
            srv = _start(root, args.work, *extra)
            assert srv.proc is not None
            try:
                part = asyncio.run(run_load(srv.url, srv.proc.pid, args.ab, args.readers, args.small, fresh[offset:], qs,
                                            prefix=label))
            finally:
                srv.stop()
            offset += len(part.pop("acked")) + 10
            reads = {k: v for k, v in part["per_endpoint"].items() if "writer" not in k}
            ab[label] = {"reads_per_s": round(sum(v["per_s"] for v in reads.values()), 2),
                         "retrieve_musique": reads["retrieve musique"], "errors": part["errors"]}
        ab["reads_per_s_ratio_batched_to_unbatched"] = round(
            ab["batched"]["reads_per_s"] / max(ab["unbatched"]["reads_per_s"], 1e-9), 2)
        result["read_batching_ab"] = {"seconds_each": args.ab, **ab}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
