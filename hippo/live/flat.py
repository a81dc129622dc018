"""An index as one base, for exports: the base segment itself when the index is compacted,
else the base a compaction would write, computed in memory (nothing is written)."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hippo.config import from_dict
from hippo.live.base import base_members
from hippo.live.build import live_base
from hippo.live.snapshot import Snapshot
from hippo.store.strings import StringTable


class FlatIndex:
    """The live passages of an index as a single base: ``array(name)``, ``strings(stem)``,
    ``manifest``, ``root`` and ``generation`` (what the exporters read)."""

    def __init__(self, snap: Snapshot) -> None:
        self.snapshot = snap
        self.root: Path = snap.root
        self.manifest: dict[str, Any] = snap.manifest
        self.generation = f"generation {snap.generation}"
        self._flat: dict[str, Any] | None = None

    @property
    def _members(self) -> dict[str, Any] | None:
        """The members of the base a compaction would write (made on first use), or None when
        the index is its base alone."""
        if not self.snapshot.deltas:
            return None
        if self._flat is None:
            config = from_dict(self.snapshot.manifest["config"]).replace({"graph.ann_min_rows": 1 << 62})
            with tempfile.TemporaryDirectory() as stage:
                members, _, _ = base_members(live_base(self.snapshot), config.graph, Path(stage))
                self._flat = {k: (np.load(v) if isinstance(v, Path) else v) for k, v in members.items()}
        return self._flat

    @classmethod
    def open(cls, root: str | Path) -> FlatIndex:
        """The live commit of the index at ``root``, flattened."""
        return cls(Snapshot.open(root))

    def array(self, name: str) -> npt.NDArray[Any]:
        """A ``.npy`` member (``name`` with or without the suffix)."""
        stem = name.removesuffix(".npy")
        members = self._members
        if members is None:
            return np.asarray(self.snapshot.base.array(stem))
        value = members[f"{stem}.npy"]
        return np.asarray(value)

    def strings(self, stem: str) -> Sequence[str]:
        """A packed string table."""
        members = self._members
        if members is None:
            return self.snapshot.base.strings(stem)
        if f"{stem}.off.npy" not in members:
            return StringTable(np.zeros(0, np.uint8), np.zeros(1, np.int64))
        return StringTable(np.frombuffer(members[f"{stem}.bin"], dtype=np.uint8), members[f"{stem}.off.npy"])

    def close(self) -> None:
        """Release the segments read."""
        self.snapshot.close()
