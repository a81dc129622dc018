"""Compare two index directories file by file: a distributed build against a local one."""

from __future__ import annotations

import hashlib
from pathlib import Path

from hippo.errors import IndexFormatError
from hippo.store import read_manifest


def _files(root: Path) -> dict[str, str]:
    """sha256 of every file of every live segment, by segment position and member name (the
    manifest itself records times and is left out; segment names are left out too)."""
    manifest = read_manifest(root)
    if manifest is None:
        raise IndexFormatError(f"{root} holds no index")
    out: dict[str, str] = {}
    for k, entry in enumerate(manifest["segments"]):
        path = root / entry["name"]
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for p in files:
            name = str(p.relative_to(path)) if path.is_dir() else "segment"
            out[f"{k}/{name}"] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def index_differences(a: str | Path, b: str | Path) -> list[str]:
    """Names of the files that differ or exist in only one of the live indexes at ``a`` and
    ``b``; empty when their segments are byte for byte the same."""
    fa, fb = _files(Path(a)), _files(Path(b))
    return sorted(name for name in fa.keys() | fb.keys() if fa.get(name) != fb.get(name))


def file_count(root: str | Path) -> int:
    """Files compared by :func:`index_differences` in ``root``'s live index."""
    return len(_files(Path(root)))
