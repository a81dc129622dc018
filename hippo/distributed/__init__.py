"""Distributed indexing on Ray: the extract and embed stages as Ray Data stages.

``hippo index CORPUS --out DIR --ray local|auto|ray://HOST:PORT|HOST:PORT`` runs extraction
and embedding on a Ray cluster and writes the same index a single-process build writes.
:class:`RayRunner` is the drop-in for the indexer's local loop (``build_index(...,
runner=RayRunner(connect("local")))``); graph assembly stays on the driver. Needs the
``ray`` extra (``pip install 'hippo[ray]'``); see ``docs/ray.md``.
"""

from __future__ import annotations

from hippo.distributed.cluster import Cluster, connect, pool_size
from hippo.distributed.runner import RayRunner

__all__ = ["Cluster", "RayRunner", "connect", "pool_size"]
