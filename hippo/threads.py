"""Thread counts for small work on few cores.

torch parallelises even a single query over its OpenMP pool, and afterwards the idle worker
spins on the other core for a while. On 2 cores that spinning slows whatever runs next (the
PageRank, the next query's embedding), so a serving process loses more than the second thread
gave. Small batches therefore run on one torch thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

SERIAL_UP_TO = 8
"""Batches of at most this many queries or texts run on one torch thread. Measured on 2 cores,
200 queries one at a time: at 10^6 passages retrieve p50 / p95 went from 44 / 136 ms to
27 / 40 ms (query embedding), at 10^5 the ranking p50 from 31 to 21 ms (exact passage scan)."""


@contextlib.contextmanager
def torch_threads_for(batch: int) -> Iterator[None]:
    """One torch thread inside the block when ``batch`` <= :data:`SERIAL_UP_TO`, else
    unchanged. The thread count is process-wide: it is restored on exit, and a concurrent
    large batch in another Python thread runs serially meanwhile (slower, still correct)."""
    import torch

    threads = torch.get_num_threads()
    serial = batch <= SERIAL_UP_TO and threads > 1
    if serial:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if serial:
            torch.set_num_threads(threads)
