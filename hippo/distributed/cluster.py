"""Connecting to Ray and sizing the worker pools from the cluster's resources.

``--ray`` takes:

* ``local``: start a private Ray instance in this process with every core of this machine
  (shut down when the build ends);
* ``auto``: the cluster named by ``$RAY_ADDRESS``, else the one last started with
  ``ray start`` on this machine; when there is none, as ``local``;
* ``ray://HOST:PORT``: an existing cluster through Ray Client (the driver runs here);
* ``HOST:PORT``: an existing cluster's GCS address (the driver runs on one of its nodes).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from hippo.errors import ConfigError, HippoError

LOCAL_OBJECT_STORE_BYTES = 1 << 30
"""Object store of a private local instance: results stream through it and the driver
consumes them as they finish, so 1 GiB is plenty (Ray's default would take 30% of memory)."""


def import_ray() -> Any:
    """``ray`` with Ray Data, or one clear error naming the extra to install."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
        import ray.data  # noqa: F401 - the stages need Ray Data
    except ImportError:
        raise ConfigError("--ray needs Ray Data: pip install 'hippo[ray]' (or pip install 'ray[data]')") from None
    return ray


@dataclass
class Cluster:
    """A Ray connection this build uses, and what it offers."""

    address: str
    cpus: float
    gpus: float
    nodes: int
    started_here: bool
    """True when this process started the instance (it is shut down at the end)."""
    connect_s: float
    owns_connection: bool = True
    """False when Ray was already initialised by the caller: :meth:`close` leaves it be."""
    resources: dict[str, float] = field(default_factory=dict)

    def close(self) -> None:
        """Disconnect (and stop the instance if this process started it)."""
        ray = import_ray()
        if self.owns_connection and ray.is_initialized():
            with contextlib.redirect_stdout(sys.stderr):  # the notices it flushes on the way out
                ray.shutdown()

    def to_dict(self) -> dict[str, Any]:
        """JSON shape for ``--json``."""
        return {"address": self.address, "cpus": self.cpus, "gpus": self.gpus, "nodes": self.nodes,
                "started_here": self.started_here, "connect_s": round(self.connect_s, 3)}


class _MainThreadStdout:
    """``sys.stdout`` for the main thread, ``sys.stderr`` for every other thread."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self._out, self._err = out, err

    def _target(self) -> TextIO:
        return self._out if threading.current_thread() is threading.main_thread() else self._err

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._out, name)


@contextlib.contextmanager
def main_thread_stdout() -> Iterator[None]:
    """Keep standard output for this thread's prints while the block runs; everything else goes
    to stderr. Ray prints its notices (e.g. "A worker died ...", "Task ... will be retried")
    on stdout from threads of its own and from its C++ core straight to file descriptor 1, and
    the processes it starts inherit that descriptor: any of it would corrupt ``hippo index
    --json`` (a run with 12 killed workers printed them before its report). So for the block,
    descriptor 1 points at stderr, and the main thread's Python prints go to a duplicate of
    the real stdout."""
    sys.stdout.flush()
    try:
        fd, err_fd = sys.stdout.fileno(), sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # not real files (e.g. captured): Python-level only
        with contextlib.redirect_stdout(_MainThreadStdout(sys.stdout, sys.stderr)):
            yield
        return
    saved = os.dup(fd)
    real = open(saved, "w", closefd=False, encoding=sys.stdout.encoding or "utf-8", errors="replace")
    os.dup2(err_fd, fd)
    try:
        with contextlib.redirect_stdout(_MainThreadStdout(real, sys.stderr)):
            yield
    finally:
        real.flush()
        sys.stderr.flush()
        os.dup2(saved, fd)
        os.close(saved)


def _running_cluster() -> str | None:
    """``$RAY_ADDRESS``, else the cluster ``ray start`` last started on this machine, else None.
    (Not Ray's legacy ``auto``, which attaches to any Ray process it finds, e.g. another
    command's private instance.)"""
    try:
        from ray._private.services import get_ray_address_from_environment

        found = get_ray_address_from_environment(None, None)  # type: ignore[arg-type]  # None: only a started cluster
    except Exception:  # noqa: BLE001 - no cluster, or a Ray without this helper
        return None
    return str(found) if found else None


def connect(address: str, num_cpus: int | None = None) -> Cluster:
    """Connect to (or start) the Ray instance ``address`` names; see the module docstring."""
    ray = import_ray()
    if not address:
        raise ConfigError("--ray needs an address: local, auto, ray://HOST:PORT or HOST:PORT")
    t = time.perf_counter()
    started, owns = False, True
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": "WARNING", "configure_logging": True}
    if address == "auto":
        address = _running_cluster() or "local"
    if ray.is_initialized():
        used, owns = "already connected", False
    elif address == "local":
        ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False,
                 object_store_memory=LOCAL_OBJECT_STORE_BYTES, **quiet)
        started, used = True, "local"
    else:
        if num_cpus:
            raise ConfigError("--ray-cpus applies to --ray local only: an existing cluster has its own resources")
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise HippoError(
                f"cannot connect to the Ray cluster at {address}: {exc}; start one with `ray start --head`, "
                f"or use --ray local for a private instance on this machine"
            ) from None
        used = address
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # no per-dataset INFO lines on stderr
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # we draw our own bar
    res = ray.cluster_resources()
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    return Cluster(used, float(res.get("CPU", 0)), float(res.get("GPU", 0)), nodes, started,
                   time.perf_counter() - t, owns, {k: float(v) for k, v in res.items()})


def pool_size(cluster: Cluster, parts: int, cpus_per_worker: float, gpus_per_worker: float, cap: int | None) -> int:
    """Actors for a stage: as many as the cluster fits (GPUs first when asked), never more
    than there are parts, nor more than ``cap``."""
    if gpus_per_worker > 0:
        fits = int(cluster.gpus // gpus_per_worker)
    else:
        fits = int(cluster.cpus // max(cpus_per_worker, 1e-9))
    n = max(1, min(fits, parts))
    return max(1, min(n, cap)) if cap else n
