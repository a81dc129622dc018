"""Sequences and arrays made of consecutive parts (one per segment), read without concatenating."""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from typing import Any, overload

import numpy as np
import numpy.typing as npt


class ConcatStrings(Sequence[str]):
    """Several string sequences read as one (a segment's table after another's)."""

    def __init__(self, parts: Sequence[Sequence[str]]) -> None:
        self.parts = [p for p in parts if len(p)]
        self.starts = [0]
        for p in self.parts:
            self.starts.append(self.starts[-1] + len(p))

    def __len__(self) -> int:
        return self.starts[-1]

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"row {i} out of range 0..{len(self) - 1}")
        k = bisect.bisect_right(self.starts, i) - 1
        return self.parts[k][i - self.starts[k]]

    def __iter__(self) -> Iterator[str]:
        for p in self.parts:
            yield from p


class ConcatArray:
    """Several 1-D arrays read as one: ``a[int array]`` gathers from the right part."""

    def __init__(self, parts: Sequence[npt.NDArray[Any]], dtype: Any = np.int64) -> None:
        self.parts = [p for p in parts if len(p)]
        self.dtype = np.dtype(dtype)
        self.starts = np.zeros(len(self.parts) + 1, dtype=np.int64)
        np.cumsum([len(p) for p in self.parts], out=self.starts[1:])

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def shape(self) -> tuple[int]:
        """(total length,)."""
        return (len(self),)

    def __getitem__(self, idx: Any) -> Any:
        if np.isscalar(idx):
            i = int(idx)  # type: ignore[arg-type]
            k = int(np.searchsorted(self.starts, i, side="right")) - 1
            return self.parts[k][i - int(self.starts[k])]
        rows = np.asarray(idx, dtype=np.int64)
        if len(self.parts) == 1:
            return np.asarray(self.parts[0][rows], dtype=self.dtype)
        out = np.empty(rows.shape, dtype=self.dtype)
        which = np.searchsorted(self.starts, rows, side="right") - 1
        for k, part in enumerate(self.parts):
            sel = which == k
            if sel.any():
                out[sel] = part[rows[sel] - int(self.starts[k])]
        return out

    def materialize(self) -> npt.NDArray[Any]:
        """One array of everything (a copy when there are several parts)."""
        if len(self.parts) == 1:
            return np.asarray(self.parts[0], dtype=self.dtype)
        return np.concatenate([np.asarray(p, dtype=self.dtype) for p in self.parts]) if self.parts else np.zeros(0, self.dtype)
