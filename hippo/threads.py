"""Thread counts for small work on few cores.

torch parallelises even a single query over its OpenMP pool, and afterwards the idle worker
spins on the other core for a while. On 2 cores that spinning slows whatever runs next (the
PageRank, the next query's embedding), so a serving process loses more than the second thread
gave. Small batches therefore run on one torch thread where torch has at most
:data:`SERIAL_MAX_THREADS` threads. With more cores the spinning worker has a core of its own,
and a single query's exact scan of many vectors gains from the extra memory bandwidth, so
nothing changes there (not measured: this machine has 2 cores).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

SERIAL_UP_TO = 8
"""Batches of at most this many queries or texts run on one torch thread. Measured on 2 cores
at 10^6 passages, on one index, three alternating runs of each revision: retrieve p50 / p95
34.7-43.8 / 126-132 ms before, 25.8-26.9 / 37.7-39.6 ms after
(``benchmarks/results/scale-ab-retrieve-1000000.json``, ``benchmarks/ab.py`` against 965a76d;
``scale-1000000-before-threads.json`` is one earlier run of the whole benchmark before)."""

SERIAL_MAX_THREADS = 2
"""Small batches go serial only when torch's thread count is at most this."""

_default: int | None = None
_lock = threading.Lock()


def default_threads() -> int:
    """torch's thread count at hippo's first use of it: what every block restores."""
    global _default
    with _lock:
        if _default is None:
            import torch

            _default = int(torch.get_num_threads())
        return _default


@contextlib.contextmanager
def torch_threads_for(batch: int) -> Iterator[None]:
    """Run the block on one torch thread when ``batch`` <= :data:`SERIAL_UP_TO` and torch
    has at most :data:`SERIAL_MAX_THREADS` threads, else on :func:`default_threads`; set the
    calling thread back to :func:`default_threads` on exit, also after an exception.

    torch keeps the count per OS thread, and a thread that starts using torch takes the count
    of that moment: one that began inside another thread's serial block would stay on one
    thread. Setting the count at every entry and exit, for the calling thread, undoes that.
    """
    import torch

    default = default_threads()
    serial = batch <= SERIAL_UP_TO and 1 < default <= SERIAL_MAX_THREADS
    want = 1 if serial else default
    if torch.get_num_threads() != want:
        torch.set_num_threads(want)
    try:
        yield
    finally:
        if torch.get_num_threads() != default:
            torch.set_num_threads(default)
