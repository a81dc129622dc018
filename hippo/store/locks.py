"""Who may touch an index directory: one writer at a time, readers pinning their segments.

Both are ``flock`` locks, so the kernel drops them when the holder dies, whatever the
cause (SIGKILL included): a crash never leaves a stale lock behind.

* **Writer**: an exclusive lock on ``DIR/.lock``, held for a whole ``hippo index``, ``hippo
  add`` or ``hippo delete`` (extraction and embedding included, since those write the resume
  cache in ``DIR/.work``), or for the lifetime of a writable engine. The holder writes its PID into the file so a second writer can say who
  holds it. The PID is information only; the lock is the ``flock``.
* **Reader pin** (:func:`share`): a shared lock on each segment an opened index reads (the
  segment's file, or a folder segment's ``meta.json``). Garbage collection deletes a segment
  only if it can lock that file exclusively (:func:`try_claim`), so a segment stays on disk as
  long as some process still reads it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from hippo.errors import HippoError

LOCK_FILE = ".lock"

_HELD: set[Path] = set()
"""Index directories whose writer lock this process holds (the lock is re-entrant)."""


class IndexLockedError(HippoError):
    """Another process is writing the index directory."""


class WriterLock:
    """The exclusive writer lock of an index directory, held from :meth:`acquire` to
    :meth:`release` (a writable engine holds it for its lifetime)."""

    def __init__(self, directory: str | Path) -> None:
        self.root = Path(directory)
        self._fd: int | None = None
        self._key: Path | None = None

    def acquire(self, timeout: float = 0.0) -> None:
        """Take the lock, waiting up to ``timeout`` seconds for another writer to finish; then
        fail with :class:`IndexLockedError` naming the holder's PID. A no-op when this process
        already holds it (the lock is re-entrant)."""
        self.root.mkdir(parents=True, exist_ok=True)
        key = self.root.resolve()
        if key in _HELD:
            return
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.01)
                    continue
                holder = _read_pid(fd)
                os.close(fd)
                who = f"PID {holder}" if holder else "another process"
                waited = f" (waited {timeout:g} s)" if timeout > 0 else ""
                raise IndexLockedError(
                    f"{self.root} is locked by {who}, which is writing it{waited}; wait for it to finish, "
                    f"or stop that process (its lock goes with it)"
                ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _HELD.add(key)
        self._fd, self._key = fd, key

    def release(self) -> None:
        """Give the lock up (idempotent; only the acquiring object releases it)."""
        if self._fd is None:
            return
        _HELD.discard(self._key)
        try:
            os.ftruncate(self._fd, 0)
        finally:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None


@contextlib.contextmanager
def writer_lock(directory: str | Path, timeout: float = 0.0) -> Iterator[None]:
    """Hold the exclusive writer lock of ``directory`` (created if missing); a second writer
    waits up to ``timeout`` seconds, then fails with :class:`IndexLockedError` naming the
    holder's PID. Re-entrant."""
    lock = WriterLock(directory)
    lock.acquire(timeout)
    try:
        yield
    finally:
        lock.release()


def holds_writer_lock(directory: str | Path) -> bool:
    """Whether this process holds the writer lock of ``directory``."""
    return Path(directory).resolve() in _HELD


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def share(path: Path) -> int | None:
    """A reader's pin: a descriptor of ``path`` holding a shared lock (closing it releases
    the pin), or None when the file is gone or being deleted."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def try_claim(path: Path) -> IO[bytes] | None:
    """Exclusive-lock ``path`` if no reader pins it (None when one does); a missing file (a
    torn write) is claimable: a dummy handle is returned. Close the handle when done."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the caller
    except FileNotFoundError:
        return open(os.devnull, "rb")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    return fh
