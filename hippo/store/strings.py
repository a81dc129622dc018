"""Packed string tables and a hashed name lookup: millions of strings, no Python object each.

A table is two arrays: ``NAME.bin`` (uint8, the UTF-8 bytes of every string, concatenated) and
``NAME.off.npy`` (int64, n + 1 offsets). Opened as memory maps, a table costs nothing until a
string is read, and reading one decodes only its bytes: an engine over 10^6 passages and 10^7
facts opens in milliseconds and shows hits without loading the rest.

:class:`NameLookup` finds the index of an exact (normalised) name among millions without a
dict: a sorted array of 64-bit BLAKE2b hashes and the table row of each, searched by
bisection, the candidate confirmed against the table (so a hash collision never gives a wrong
entity).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, overload

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]


def pack_strings(strings: Iterable[str]) -> tuple[U8, I64]:
    """(bytes, offsets) of a string table."""
    encoded = [s.encode("utf-8") for s in strings]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    if encoded:
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(), offsets


class StringTable(Sequence[str]):
    """A read-only sequence of strings over (bytes, offsets) arrays (memory maps welcome)."""

    def __init__(self, data: Any, offsets: Any) -> None:
        self.data = data
        self.offsets = offsets
        self._n = int(len(offsets) - 1)

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._n))]
        i = int(i)
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(f"string {i} out of range 0..{self._n - 1}")
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        return bytes(self.data[lo:hi]).decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        for i in range(self._n):
            yield self[i]

    def __repr__(self) -> str:
        return f"StringTable({self._n} strings)"


def name_hash(name: str) -> int:
    """64-bit hash of a name (BLAKE2b, stable across processes and platforms), as int64."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def hash_table(names: Iterable[str]) -> tuple[I64, I64]:
    """(sorted hashes, row of each) for :class:`NameLookup`."""
    hashes = np.fromiter((name_hash(n) for n in names), dtype=np.int64)
    order = np.argsort(hashes, kind="stable").astype(np.int64)
    return hashes[order], order


class NameLookup(Mapping[str, int]):
    """``name -> row`` over a :class:`StringTable` of names with a :func:`hash_table` (a
    read-only mapping from normalised name to the first row carrying it)."""

    def __init__(self, names: Sequence[str], hashes: Any, rows: Any) -> None:
        self.names = names
        self.hashes = hashes
        self.rows = rows

    def get(self, name: str, default: Any = None) -> Any:
        """Row of the normalised ``name`` (the first one, if listed twice), else ``default``."""
        from hippo.ids import normalize

        h = name_hash(name)
        i = int(np.searchsorted(self.hashes, h, side="left"))
        while i < len(self.hashes) and int(self.hashes[i]) == h:
            row = int(self.rows[i])
            if normalize(self.names[row]) == name:
                return row
            i += 1
        return default

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __getitem__(self, name: str) -> int:
        row = self.get(name)
        if row is None:
            raise KeyError(name)
        return int(row)

    def __len__(self) -> int:
        return len(self.hashes)

    def __iter__(self) -> Iterator[str]:
        from hippo.ids import normalize

        seen: set[str] = set()
        for name in self.names:
            key = normalize(name)
            if key not in seen:
                seen.add(key)
                yield key


class KeyLookup(Mapping[str, int]):
    """``key -> row`` over a :func:`hash_table` of exact keys, each candidate confirmed with
    ``key_of(row)`` (passage ids, passage contents, fact keys)."""

    def __init__(self, key_of: Any, hashes: Any, rows: Any) -> None:
        self.key_of = key_of
        self.hashes = hashes
        self.rows = rows

    def get(self, key: str, default: Any = None) -> Any:
        """Row of ``key`` (the first one, if listed twice), else ``default``."""
        h = name_hash(key)
        i = int(np.searchsorted(self.hashes, h, side="left"))
        while i < len(self.hashes) and int(self.hashes[i]) == h:
            row = int(self.rows[i])
            if self.key_of(row) == key:
                return row
            i += 1
        return default

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __getitem__(self, key: str) -> int:
        row = self.get(key)
        if row is None:
            raise KeyError(key)
        return int(row)

    def __len__(self) -> int:
        return len(self.hashes)

    def __iter__(self) -> Iterator[str]:
        for i in range(len(self.rows)):
            yield self.key_of(int(self.rows[i]))


class DerivedIds(Sequence[str]):
    """``ids[i] = make(names[i])``, computed on access (entity ids derive from their names)."""

    def __init__(self, names: Sequence[str], make: Any) -> None:
        self.names = names
        self.make = make

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self.make(n) for n in self.names[i]]
        return self.make(self.names[i])


class FactTable(Sequence[Any]):
    """Facts built on access from the entity name table, subject/object arrays and the
    relation table: no object per fact until one is read."""

    def __init__(self, entity_names: Sequence[str], subject: Any, obj: Any, relations: Sequence[str]) -> None:
        self.entity_names = entity_names
        self.subject = subject
        self.object = obj
        self.relations = relations

    def __len__(self) -> int:
        return len(self.relations)

    def __getitem__(self, i: Any) -> Any:
        from hippo.ids import fact_id
        from hippo.types import Fact

        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        s = self.entity_names[int(self.subject[i])]
        o = self.entity_names[int(self.object[i])]
        r = self.relations[i]
        return Fact(fact_id(s, r, o), s, r, o)
