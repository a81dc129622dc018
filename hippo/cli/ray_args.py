"""The ``--ray*`` flags of ``hippo index``: run extraction and embedding on a Ray cluster."""

from __future__ import annotations

import argparse
from typing import Any


def add_ray_args(parser: argparse.ArgumentParser) -> None:
    """``--ray ADDRESS``, ``--ray-workers N``, ``--ray-cpus N``, ``--ray-gpus N``."""
    group = parser.add_argument_group("distributed indexing on Ray (pip install 'hippo[ray]'; docs/ray.md)")
    group.add_argument(
        "--ray", metavar="ADDRESS",
        help="extract and embed on Ray: local (a private instance, all cores), auto (the running cluster, else "
        "local), ray://HOST:PORT (Ray Client) or HOST:PORT (a cluster's GCS); the index is the same",
    )
    group.add_argument("--ray-workers", type=int, metavar="N", help="at most N actors per stage (default: what the cluster fits)")
    group.add_argument("--ray-cpus", type=int, metavar="N", help="CPUs of a --ray local instance (default: all cores)")
    group.add_argument("--ray-gpus", type=float, metavar="N",
                       help="GPUs per embedding actor (default: 1 when the cluster has GPUs; 0 = CPU actors)")


def ray_runner(args: argparse.Namespace, threads: int) -> Any:
    """A :class:`hippo.distributed.RayRunner` for the flags, or None without ``--ray``."""
    if not getattr(args, "ray", None):
        return None
    from hippo.distributed import RayRunner, connect
    from hippo.errors import ConfigError

    for flag in ("ray_workers", "ray_cpus"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ConfigError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    if args.ray_gpus is not None and args.ray_gpus < 0:
        raise ConfigError(f"--ray-gpus must be >= 0, got {args.ray_gpus}")
    return RayRunner(connect(args.ray, args.ray_cpus), workers=args.ray_workers, gpus=args.ray_gpus, embed_threads=threads)
