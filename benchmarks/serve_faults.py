"""Fault benchmark of ``hippo serve``: SIGKILL during writes, and a full disk.

    flock /tmp/hippo-cpu.lock python benchmarks/serve_faults.py --work /tmp/serve-bench --kills 22
    flock /tmp/hippo-cpu.lock python benchmarks/serve_faults.py --work /tmp/serve-bench --part disk

``kill``: a real server serves MuSiQue-100 (recorded OpenIE, MiniLM) as namespace ``musique``;
a client adds passages one at a time (each with its own id) and the server is killed with
SIGKILL at a random moment, ``--kills`` times, restarting it each time. After every kill the
index must pass its digest check and hold every write the server acknowledged; after every
restart the server must serve (retrieve answers 200 and finds the last acknowledged write).

``disconnect``: clients send a 3-passage write into MuSiQue-100 and go away mid-request, half of
them after half the body (nothing may be written), half after the whole body at a random moment
before the answer (the write must land whole, never in part).

``disk`` (needs root for ``mount``): the server's root is a small tmpfs; the disk is filled up to
a few KiB; writes must be answered 507 with nothing written, reads must go on, the index must
stay intact; after space is freed, writes succeed again.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from serve_common import BENCH_KEY, KEYS, RESULTS, fresh_root, index_ids, machine, wiki_passages

import httpx
from serve_proc import HASHING, ServerProcess

H = {"Authorization": f"Bearer {BENCH_KEY}"}


def kill_campaign(work: Path, kills: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    root = fresh_root(work, "kill")
    keys = work / "kill-keys.json"
    pool = wiki_passages()
    acked: list[str] = []
    rounds = []
    next_i = 0
    for k in range(kills + 1):
        t0 = time.monotonic()
        srv = ServerProcess(root, "--keys", str(keys), "--rate", "0", log=work / "kill-server.log").start(timeout=300)
        startup = time.monotonic() - t0
        check = httpx.get(f"{srv.url}/v1/ns/musique/retrieve", params={"q": "Who founded it?", "k": 3}, headers=H,
                          timeout=120)
        serves = check.status_code == 200
        if acked:  # the last acknowledged write survived the kill and is served
            last = acked[-1]
            text = pool[int(last[2:])]["text"]
            hits = httpx.get(f"{srv.url}/v1/ns/musique/retrieve", params={"q": text, "k": 3, "retriever": "dense"},
                             headers=H, timeout=120).json()["hits"]
            serves = serves and any(h["passage_id"] == last for h in hits)
        if k == kills:
            srv.stop()
            rounds.append({"round": k, "startup_s": round(startup, 1), "serves": serves})
            break
        state = {"in_flight": False, "sent": 0, "acked": 0}
        stop = threading.Event()

        def writer() -> None:
            nonlocal next_i
            with httpx.Client(base_url=srv.url, headers=H, timeout=300) as c:
                while not stop.is_set():
                    i = next_i
                    next_i += 1
                    pid = f"w-{i:05d}"
                    state["in_flight"] = True
                    state["sent"] += 1
                    try:
                        r = c.post("/v1/ns/musique/passages", json={"passages": [{**pool[i], "id": pid}]})
                    except httpx.HTTPError:
                        return  # the server died under this request: not acknowledged
                    state["in_flight"] = False
                    if r.status_code == 200 and r.json()["ids"] == [pid]:
                        acked.append(pid)
                        state["acked"] += 1

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        time.sleep(rng.uniform(1.0, 7.0))
        in_flight = state["in_flight"]
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        stop.set()
        thread.join(timeout=30)
        ids, bad = index_ids(root / "musique")
        missing = [a for a in acked if a not in ids]
        rounds.append({"round": k, "startup_s": round(startup, 1), "serves": serves, "writes_sent": state["sent"],
                       "writes_acked": state["acked"], "killed_during_a_write": in_flight,
                       "corrupt_files": bad, "acked_missing": len(missing)})
        print(json.dumps(rounds[-1]), flush=True)
    done = [r for r in rounds if "acked_missing" in r]
    return {
        "kills": len(done), "killed_during_a_write": sum(r["killed_during_a_write"] for r in done),
        "writes_acked_total": len(acked), "acked_writes_lost": sum(r["acked_missing"] for r in done),
        "rounds_with_corrupt_index": sum(bool(r["corrupt_files"]) for r in done),
        "restarts_that_served": sum(r["serves"] for r in rounds[1:]), "restarts": len(rounds) - 1,
        "median_startup_s": sorted(r["startup_s"] for r in rounds)[len(rounds) // 2], "rounds": rounds,
    }


def _send_and_leave(port: int, data: bytes, linger: float) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(data)
        time.sleep(linger)


def disconnects(work: Path, trials: int, seed: int) -> dict[str, Any]:
    """Clients that go away mid-request: half of them after half the body (nothing may be
    written), half after the whole body, at a random moment before the answer (the write must
    land whole). Each request writes 3 passages into MuSiQue-100; then the index is read from disk."""
    rng = random.Random(seed)
    root = fresh_root(work, "cut")
    pool = wiki_passages()
    srv = ServerProcess(root, "--keys", str(work / "cut-keys.json"), "--rate", "0", log=work / "cut-server.log").start(
        timeout=300)
    plan = []
    try:
        for t in range(trials):
            half = t % 2 == 0
            ids = [f"cut{t:02d}-{j}" for j in range(3)]
            body = json.dumps({"passages": [{**pool[3 * t + j], "id": ids[j]} for j in range(3)]}).encode()
            head = (f"POST /v1/ns/musique/passages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {BENCH_KEY}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
            linger = rng.uniform(0.0, 1.5)
            _send_and_leave(srv.port, head + (body[: len(body) // 2] if half else body), linger)
            plan.append({"ids": ids, "half_body": half, "left_after_s": round(linger, 2)})
        time.sleep(2.0)
        with httpx.Client(base_url=srv.url, headers=H, timeout=120) as c:  # wait for the queue to drain
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                depth = re.search(r'^hippo_write_queue_depth\{namespace="musique"\} (\S+)$', c.get("/metrics").text, re.M)
                if depth is None or float(depth.group(1)) == 0:
                    break
                time.sleep(0.5)
    finally:
        code = srv.stop()
    stored, bad = index_ids(root / "musique")
    for p in plan:
        p["stored"] = sum(i in stored for i in p["ids"])
    halves = [p for p in plan if p["half_body"]]
    wholes = [p for p in plan if not p["half_body"]]
    shutil.rmtree(root, ignore_errors=True)
    return {"trials": trials, "half_body_written": sum(p["stored"] > 0 for p in halves), "half_body": len(halves),
            "whole_body_written_whole": sum(p["stored"] == 3 for p in wholes), "whole_body": len(wholes),
            "partially_written": sum(0 < p["stored"] < 3 for p in plan), "corrupt_files": bad, "server_exit": code,
            "trials_detail": plan}


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def full_disk(work: Path, size_mb: int) -> dict[str, Any]:
    mnt = work / "disk"
    mnt.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(mnt)], check=True)
    out: dict[str, Any] = {"tmpfs_mb": size_mb}
    try:
        keys = work / "disk-keys.json"
        keys.write_text(json.dumps(KEYS))
        pool = wiki_passages()
        srv = ServerProcess(mnt / "root", "--keys", str(keys), "--rate", "0", *HASHING,
                            log=work / "disk-server.log").start(timeout=300)
        try:
            with httpx.Client(base_url=srv.url, headers=H, timeout=300) as c:
                first = c.post("/v1/ns/notes/passages", json={"passages": [{**p, "id": f"n{i}"} for i, p in enumerate(pool[:40])]})
                out["first_write"] = first.status_code
                ids_before, _ = index_ids(mnt / "root" / "notes")
                filler = mnt / "filler.bin"
                with open(filler, "wb", buffering=0) as fh:  # fill the disk until a write fails (unbuffered: no
                    # data left to flush at close); a one-passage segment fits in a few KiB
                    chunk = b"\0" * (1 << 20)
                    while _free(mnt) > (1 << 20):
                        fh.write(chunk)
                    while True:
                        try:
                            fh.write(b"\0" * 4096)
                        except OSError:
                            break
                out["free_bytes_when_full"] = _free(mnt)
                answers = []
                for j in range(5):
                    r = c.post("/v1/ns/notes/passages", json={"passages": [{**pool[100 + j], "id": f"full{j}"}]})
                    answers.append({"status": r.status_code, "title": r.json().get("title"),
                                    "detail": r.json().get("detail"), "retry_after": r.headers.get("retry-after")})
                out["writes_on_full_disk"] = answers
                read = c.get("/v1/ns/notes/retrieve", params={"q": pool[3]["text"], "k": 1, "retriever": "dense"})
                out["read_on_full_disk"] = {"status": read.status_code,
                                            "top_hit": read.json()["hits"][0]["passage_id"] if read.status_code == 200 else None}
                ids_full, bad_full = index_ids(mnt / "root" / "notes")
                acked = {f"full{j}" for j, a in enumerate(answers) if a["status"] == 200}
                out["index_unchanged_on_full_disk"] = ids_full == ids_before
                out["index_holds_exactly_the_acked_writes"] = ids_full == ids_before | acked
                out["corrupt_files_on_full_disk"] = bad_full
                out["readyz_on_full_disk"] = c.get("/readyz").status_code
                filler.unlink()
                after = c.post("/v1/ns/notes/passages", json={"passages": [{**pool[200], "id": "after"}]})
                out["write_after_freeing_space"] = after.status_code
                ids_after, bad_after = index_ids(mnt / "root" / "notes")
                out["index_after"] = {"passages": len(ids_after), "has_new_write": "after" in ids_after,
                                      "corrupt_files": bad_after}
        finally:
            out["server_exit"] = srv.stop()
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/serve-bench"))
    ap.add_argument("--part", choices=["all", "kill", "disk", "disconnect"], default="all")
    ap.add_argument("--trials", type=int, default=20, help="disconnect trials")
    ap.add_argument("--kills", type=int, default=22)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--disk-mb", type=int, default=24)
    ap.add_argument("--out", default="serve_faults")
    args = ap.parse_args()
    path = RESULTS / f"{args.out}.json"
    result: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    result.update({"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine()})
    stamp = {"date": result["date"], "revision": result["machine"]["revision"]}  # parts may be run apart
    if args.part in ("all", "kill"):
        result["kill"] = {**stamp, "command": f"flock /tmp/hippo-cpu.lock python benchmarks/serve_faults.py --part kill "
                          f"--kills {args.kills} --seed {args.seed}", **kill_campaign(args.work, args.kills, args.seed)}
    if args.part in ("all", "disconnect"):
        (args.work / "cut-keys.json").write_text(json.dumps(KEYS))
        result["disconnect"] = {**stamp, "command": f"flock /tmp/hippo-cpu.lock python benchmarks/serve_faults.py --part disconnect "
                                f"--trials {args.trials} --seed {args.seed}", **disconnects(args.work, args.trials, args.seed)}
    if args.part in ("all", "disk"):
        result["disk"] = {**stamp, "command": f"flock /tmp/hippo-cpu.lock python benchmarks/serve_faults.py --part disk "
                          f"--disk-mb {args.disk_mb}", **full_disk(args.work, args.disk_mb)}
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "kill"}, indent=1))
    if "kill" in result:
        print(json.dumps({k: v for k, v in result["kill"].items() if k != "rounds"}, indent=1))
    shutil.rmtree(args.work / "kill", ignore_errors=True)


if __name__ == "__main__":
    main()
