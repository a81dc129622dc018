"""``hippo index`` of a new corpus at two revisions, side by side (issue 17: a batch build is
one segment and must be no slower than before the living index).

    python benchmarks/build_ab.py --before 16a81e8 --runs 3
    python benchmarks/build_ab.py --before 16a81e8 --embedder all-MiniLM-L6-v2 --runs 1

Builds MuSiQue-100 (1,890 passages) from its recorded OpenIE into a fresh folder with each
revision in turn (the earlier one from a temporary git worktree), alternating, after one
untimed build of each. The default embedder is ``hashing:384``: the time is then everything
but the neural embedding (knowledge base, synonymy, graph, ANN, writing), the part the
living index changed; ``--embedder all-MiniLM-L6-v2`` times the whole build. Writes
``benchmarks/results/build_ab.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = REPO.parent / "shared" / "data" / "musique100"
RESULTS = HERE / "results"


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, stdout=subprocess.PIPE, text=True).stdout.strip()


def build(tree: Path, out: Path, embedder: str) -> float:
    """Seconds of one ``hippo index`` process (interpreter start and imports included)."""
    if out.exists():
        shutil.rmtree(out)
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "hippo.cli.main", "index", str(DATA / "corpus.json"), "--out", str(out),
           "--openie", str(DATA / "openie_gpt-3.5-turbo-1106.json"), "--set", f"embed.model={embedder}"]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=tree, env=env)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="the earlier revision (commit)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--embedder", default="hashing:384")
    args = ap.parse_args()
    before = git("rev-parse", "--short", args.before)
    after = git("rev-parse", "--short", "HEAD")
    seconds: dict[str, list[float]] = {before: [], after: []}
    with tempfile.TemporaryDirectory(prefix="hippo-build-ab-") as tmp:
        old = Path(tmp) / f"hippo-{before}"
        git("worktree", "add", "--detach", str(old), before)
        try:
            trees = {before: old, after: REPO}
            for rev, tree in trees.items():
                log(f"[build_ab] untimed build with {rev}")
                build(tree, Path(tmp) / "index", args.embedder)
            for i in range(args.runs):
                for rev, tree in (trees.items() if i % 2 == 0 else reversed(trees.items())):
                    seconds[rev].append(round(build(tree, Path(tmp) / "index", args.embedder), 2))
                    log(f"[build_ab] run {i + 1} {rev}: {seconds[rev][-1]} s")
        finally:
            git("worktree", "remove", "--force", str(old))
    median = {rev: sorted(s)[len(s) // 2] for rev, s in seconds.items()}
    result = {"corpus": "musique100 (recorded OpenIE)", "embedder": args.embedder, "runs": args.runs,
              "before": before, "after": after, "seconds": seconds, "median_s": median,
              "ratio_after_over_before": round(median[after] / median[before], 3), "load_avg_end": os.getloadavg()[0],
              "command": " ".join(["python", "benchmarks/build_ab.py", *sys.argv[1:]])}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "build_ab.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("median_s", "ratio_after_over_before")}))


if __name__ == "__main__":
    main()
