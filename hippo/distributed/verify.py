"""Compare two index directories file by file: a distributed build against a local one."""

from __future__ import annotations

import hashlib
from pathlib import Path

from hippo.errors import IndexFormatError
from hippo.store import current_generation

VOLATILE = frozenset({"stats.json"})
"""Files that record how and when a build ran, not what it holds."""


def _files(root: Path) -> dict[str, str]:
    gen = current_generation(root)
    if gen is None:
        raise IndexFormatError(f"{root} holds no index")
    folder = root / gen
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in VOLATILE
    }


def index_differences(a: str | Path, b: str | Path) -> list[str]:
    """Names of the files (``stats.json`` aside) that differ or exist in only one of the
    live generations of ``a`` and ``b``; empty when they are byte for byte the same."""
    fa, fb = _files(Path(a)), _files(Path(b))
    return sorted(name for name in fa.keys() | fb.keys() if fa.get(name) != fb.get(name))


def file_count(root: str | Path) -> int:
    """Files compared by :func:`index_differences` in ``root``'s live generation."""
    return len(_files(Path(root)))
