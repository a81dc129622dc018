"""The HippoRAG passage path is untouched by documents: build MuSiQue-100 (recorded OpenIE) with
this branch and with main, and compare the base segments file by file; compare the data files
that also existed in format 1 with the build of 16a81e8 (the documents branch's first base).

    flock /tmp/hippo-cpu.lock python benchmarks/passage_identity.py

Each side runs ``hippo index corpus.json --out DIR --openie FILE`` from a ``git archive`` of its
commit, in a fresh process. Writes ``benchmarks/results/documents_passage_identity.txt``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = REPO.parent / "shared" / "data" / "musique100"


def archive(rev: str, into: Path) -> str:
    """Export ``rev`` of this repository into ``into``; return its commit id."""
    sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", rev], check=True, capture_output=True, text=True).stdout.strip()
    into.mkdir(parents=True)
    tar = subprocess.run(["git", "-C", str(REPO), "archive", sha], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=tar, check=True)
    return sha


def build(tree: Path, out: Path) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hippo.cli.main", "index", str(DATA / "corpus.json"), "--out", str(out),
                    "--openie", str(DATA / "openie_gpt-3.5-turbo-1106.json"), "--json"],
                   check=True, env={**{k: v for k, v in os.environ.items() if not k.startswith("HIPPO_")},
                                    "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
                   stdout=subprocess.DEVNULL, cwd=tree)
    return time.perf_counter() - t


def data_files(root: Path) -> dict[str, str]:
    """sha256 of each file of the index's one data folder (format 2: the base segment; format 1: the generation)."""
    current = (root / "CURRENT").read_text()
    folder = root / (current.strip() if current.startswith("gen-") else json.loads(current)["segments"][0]["name"])
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def manifest_diff(a: Path, b: Path) -> list[str]:
    ma, mb = json.loads((a / "CURRENT").read_text()), json.loads((b / "CURRENT").read_text())
    out = []
    for k in sorted(set(ma) | set(mb)):
        va, vb = ma.get(k), mb.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += [f"CURRENT {k}.{j}: {str(va.get(j))[:120]} -> {str(vb.get(j))[:120]}"
                    for j in sorted(set(va) | set(vb)) if va.get(j) != vb.get(j)]
        elif va != vb:
            out.append(f"CURRENT {k}: {str(va)[:120]} -> {str(vb)[:120]}")
    return out


def main() -> None:
    lines = [f"# {__doc__.splitlines()[0]}", f"# `python benchmarks/passage_identity.py` on {time.strftime('%Y-%m-%d %H:%M')}", ""]
    with tempfile.TemporaryDirectory(prefix="hippo-ident-") as tmp:
        work = Path(tmp)
        sides = {}
        for name, rev in (("docs", "HEAD"), ("main", "main"), ("base", "16a81e8")):
            sha = archive(rev, work / f"tree-{name}")
            seconds = build(work / f"tree-{name}", work / f"idx-{name}")
            sides[name] = data_files(work / f"idx-{name}")
            lines.append(f"{name}: {rev} = {sha[:10]}, built in {seconds:.0f} s, {len(sides[name])} files in its data folder")
        docs, main_, base = sides["docs"], sides["main"], sides["base"]
        lines += ["", "## this branch against main (format 2, the base segment, meta.json included)"]
        differ = sorted(n for n in set(docs) | set(main_) if docs.get(n) != main_.get(n))
        lines.append(f"files: {len(docs)} vs {len(main_)}; differing: {differ or 'none'}")
        lines += manifest_diff(work / "idx-main", work / "idx-docs") or ["CURRENT: no difference"]
        lines += ["", "## this branch against 16a81e8 (format 1), the data files both formats have"]
        both = sorted(set(docs) & set(base))
        differ = [n for n in both if docs[n] != base[n]]
        lines.append(f"files in both: {len(both)} ({', '.join(both)}); differing: {differ or 'none'}")
        lines.append(f"only in format 1: {', '.join(sorted(set(base) - set(docs)))}")
        shutil.rmtree(work, ignore_errors=True)
    text = "\n".join(lines) + "\n"
    (HERE / "results" / "documents_passage_identity.txt").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
