"""Shared by the ``serve_*`` benchmarks: data, the base MuSiQue-100 index, machine facts."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
DATA = REPO.parent / "shared" / "data"
MUSIQUE = DATA / "musique100"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

BENCH_KEY = "bench-key-0123456789abcdef0123"
KEYS = {BENCH_KEY: {"namespaces": ["*"], "write": True, "metrics": True, "name": "bench"}}


def base_index(work: Path) -> Path:
    """MuSiQue-100 indexed with the recorded OpenIE and MiniLM (built once under ``work``)."""
    from hippo.store import is_format1

    out = work / "base" / "musique"
    if (out / "CURRENT").exists() and is_format1(out):  # built before the living index: build it anew
        shutil.rmtree(out)
    if not (out / "CURRENT").exists():
        subprocess.run(
            [sys.executable, "-m", "hippo.cli.main", "index", str(MUSIQUE / "corpus.json"), "--out", str(out),
             "--openie", str(MUSIQUE / "openie_gpt-3.5-turbo-1106.json")],
            check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    return out


def fresh_root(work: Path, name: str) -> Path:
    """A new server root under ``work`` holding a copy of the base index as namespace ``musique``."""
    root = work / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    shutil.copytree(base_index(work), root / "musique", ignore=shutil.ignore_patterns(".lock", ".work"))
    (work / f"{name}-keys.json").write_text(json.dumps(KEYS))
    return root


def questions() -> list[str]:
    return [q["question"] for q in json.loads((MUSIQUE / "questions.json").read_text())]


def wiki_passages() -> list[dict[str, str]]:
    """2Wiki passages: text the MuSiQue index does not hold (new writes, small namespaces)."""
    return [{"title": d["title"], "text": d["text"]} for d in json.loads((DATA / "2wiki" / "corpus.json").read_text())]


def revision() -> str:
    """The checkout's commit, with ``+changes`` when files other than results differ from it."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                  ":(exclude)benchmarks/results"], cwd=root, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if changed.strip() else "")


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()], "revision": revision()}


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    s = sorted(values)

    def at(q: float) -> float:
        return round(s[min(len(s) - 1, int(q * len(s)))], 2)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99)}


def index_ids(path: Path) -> tuple[set[str], list[str]]:
    """Live passage ids of an index read from disk, and the files whose digest is wrong."""
    from serve_proc import index_state

    return index_state(path)
