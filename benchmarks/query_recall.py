"""Recall@k of every retriever, two revisions side by side (issue 22: recall unchanged).

    python benchmarks/query_recall.py --before 16a81e8 \\
        --index musique=DIR1 --questions musique=FILE1 --index 2wiki=DIR2 --questions 2wiki=FILE2

Each INDEX is a format-1 build (what a revision before the living index reads). The earlier
revision is checked out in a temporary git worktree and runs ``hippo eval`` on it; this checkout
runs ``hippo eval`` on a copy upgraded in place by ``hippo upgrade`` (no extraction or embedding
redone, so both revisions rank the same graph and vectors). Writes
``benchmarks/results/query_recall.json``: Recall@1/2/5/10/20 per corpus, retriever and revision,
and whether they are identical.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
RETRIEVERS = ("hippo", "hipporag2", "dense", "hgmem")


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, stdout=subprocess.PIPE, text=True).stdout.strip()


def hippo(tree: Path, *args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run([sys.executable, "-m", "hippo.cli.main", *args], check=True, stdout=subprocess.PIPE,
                         text=True, cwd=tree, env=env)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def pairs(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, path = v.partition("=")
        if not sep:
            raise SystemExit(f"--{what} {v!r}: give NAME=PATH")
        out[name] = path
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="the earlier revision (commit)")
    ap.add_argument("--index", action="append", default=[], metavar="NAME=DIR", help="a format-1 index")
    ap.add_argument("--questions", action="append", default=[], metavar="NAME=FILE")
    ap.add_argument("--retrievers", default=",".join(RETRIEVERS))
    args = ap.parse_args()
    indexes, questions = pairs(args.index, "index"), pairs(args.questions, "questions")
    if set(indexes) != set(questions):
        raise SystemExit("give --questions for every --index NAME")
    before = git("rev-parse", "--short", args.before)
    after = git("rev-parse", "--short", "HEAD") + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")
    recall: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hippo-qr-") as tmp:
        old = Path(tmp) / f"hippo-{before}"
        git("worktree", "add", "--detach", str(old), before)
        try:
            for name, index in indexes.items():
                upgraded = Path(tmp) / f"{name}-format2"
                shutil.copytree(index, upgraded)
                hippo(REPO, "upgrade", str(upgraded), "--json")
                for retriever in args.retrievers.split(","):
                    row = {}
                    for rev, tree, path in ((before, old, index), (after, REPO, str(upgraded))):
                        summary = hippo(tree, "eval", path, "--questions", questions[name], "--retriever", retriever, "--json")
                        row[rev] = {str(k): summary["recall"][str(k)] for k in (1, 2, 5, 10, 20)}
                        log(f"[query_recall] {name}/{retriever} {rev}: {row[rev]}")
                    row["identical"] = row[before] == row[after]
                    recall[f"{name}/{retriever}"] = row
        finally:
            git("worktree", "remove", "--force", str(old))
    result = {"before": before, "after": after, "indexes": indexes, "questions": questions, "recall": recall,
              "command": " ".join(["python", "benchmarks/query_recall.py", *sys.argv[1:]])}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "query_recall.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    log(f"[saved] {path}")
    print(json.dumps({k: v["identical"] for k, v in recall.items()}, indent=1))


if __name__ == "__main__":
    main()
