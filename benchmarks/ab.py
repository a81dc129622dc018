"""Time one ``scale.py`` child with two revisions of hippo on the same cached index (issue 8).

    python benchmarks/ab.py --passages 1000000 --child open --before 7dcf491 --cold
    python benchmarks/ab.py --passages 1000000 --child retrieve --before 965a76d

The earlier revision is checked out in a temporary git worktree whose ``benchmarks/.cache``
points at this one, so both read the same synthetic corpus and the same built index (built by
the current code; an earlier revision ignores files it does not know). Runs alternate
between the two revisions; one untimed run of each comes first (numba compiles its kernels
into each tree's cache then). ``--cold`` drops the page cache before every run (root only).

For ``open``, ``to_first_answer_s`` is comparable across revisions: from calling
``open_index`` to the first real query's result, the model already loaded (earlier revisions
had no ``Engine.warm``; the current one warms in between). Results go to
``benchmarks/results/scale-ab-<child>-<N>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = HERE / ".cache"
RESULTS = HERE / "results"


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, stdout=subprocess.PIPE, text=True).stdout.strip()


def run_child(tree: Path, n: int, child: str, cold: bool) -> dict[str, Any]:
    if cold:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
    out = subprocess.run([sys.executable, str(tree / "benchmarks" / "scale.py"), "--passages", str(n), "--child", child],
                         check=True, stdout=subprocess.PIPE, text=True, cwd=tree)
    row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if child == "open":
        row["to_first_answer_s"] = round(row["open_s"] + row["first_query_ms"] / 1000, 3)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passages", type=int, required=True)
    ap.add_argument("--child", choices=["open", "retrieve"], required=True)
    ap.add_argument("--before", required=True, help="the earlier revision (commit)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs of each revision")
    ap.add_argument("--cold", action="store_true", help="drop the page cache before every run (root)")
    ap.add_argument("--tag", default="", help="added to the result file's name, to keep earlier comparisons")
    args = ap.parse_args()
    if not (CACHE / f"scale-{args.passages}" / "CURRENT").exists():
        raise SystemExit(f"no cached index of {args.passages} passages: run benchmarks/scale.py --passages {args.passages} first")
    if args.cold and not os.access("/proc/sys/vm/drop_caches", os.W_OK):
        raise SystemExit("--cold needs to write /proc/sys/vm/drop_caches (run as root)")
    before = git("rev-parse", "--short", args.before)
    after = git("rev-parse", "--short", "HEAD") + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")
    with tempfile.TemporaryDirectory(prefix="hippo-ab-") as tmp:
        old = Path(tmp) / f"hippo-{before}"
        git("worktree", "add", "--detach", str(old), before)
        try:
            (old / "benchmarks" / ".cache").symlink_to(CACHE, target_is_directory=True)
            trees = {before: old, after: REPO}
            for rev, tree in trees.items():
                log(f"[ab] untimed run of {rev}")
                run_child(tree, args.passages, args.child, args.cold)
            rows: dict[str, list[dict[str, Any]]] = {rev: [] for rev in trees}
            for i in range(args.runs):
                for rev, tree in trees.items():
                    rows[rev].append(run_child(tree, args.passages, args.child, args.cold))
                    log(f"[ab] run {i + 1} {rev}: {rows[rev][-1]}")
        finally:
            git("worktree", "remove", "--force", str(old))
    key = "to_first_answer_s" if args.child == "open" else "retrieve_ms"
    summary = {rev: sorted((r[key] if args.child == "open" else r[key]["p50"]) for r in rs) for rev, rs in rows.items()}
    result = {"passages": args.passages, "child": args.child, "cold_page_cache": args.cold, "runs": args.runs,
              "before": before, "after": after, "compared": f"{key} (p50 for retrieve)", "summary": summary, "rows": rows,
              "command": " ".join(["python", "benchmarks/ab.py", *sys.argv[1:]])}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"scale-ab-{args.child}-{args.passages}{'-cold' if args.cold else ''}{'-' + args.tag if args.tag else ''}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    log(f"[saved] {path}")
    print(json.dumps({"compared": result["compared"], **summary}))


if __name__ == "__main__":
    main()
