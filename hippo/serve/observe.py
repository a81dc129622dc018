"""Structured logs (one JSON object per line on stderr) and Prometheus metrics.

Log lines never hold a key, an ``Authorization`` header, a query string or passage text:
a request line has the method, the route template, the namespace, the status, the time and
the key's name (its ``name`` in the keys file, else a fingerprint).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_STD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...extra}`` per record, one line each."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in vars(record).items():
            if k not in _STD and not k.startswith("_") and k != "color_message":  # uvicorn's ANSI copy
                out[k] = v
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
            out["trace"] = self.formatException(record.exc_info)  # server log only, never a response
        return json.dumps(out, ensure_ascii=False, default=str)


def setup_logging(fmt: str = "json", level: str = "info") -> None:
    """Send every log record to stderr (stdout stays free for ``--mcp-stdio``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn.access", "httpx", "httpx2", "mcp", "sentence_transformers"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


class Metrics:
    """The service's Prometheus metrics, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("hippo_requests", "HTTP requests answered", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram(
            "hippo_request_seconds", "Time to answer a request", ["method", "route"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )
        self.queue = Gauge("hippo_write_queue_depth", "Writes queued or running", ["namespace"], registry=self.registry)
        self.passages = Gauge("hippo_namespace_passages", "Passages in a namespace (open namespaces)", ["namespace"],
                              registry=self.registry)
        self.engines = Gauge("hippo_open_namespaces", "Namespaces with an open engine", registry=self.registry)
        self.writers = Gauge("hippo_open_writers", "Namespaces whose writer holds its index open",
                             registry=self.registry)
        self.engine_bytes = Gauge("hippo_open_index_bytes", "Bytes of index files the open namespaces map",
                                  registry=self.registry)
        self.batches = Gauge("hippo_read_batches", "Batched retrieve calls made for single retrieves",
                             registry=self.registry)
        self.batched = Gauge("hippo_read_batched_queries", "Single retrieves answered by those calls",
                             registry=self.registry)
        self.rejected = Counter("hippo_rate_limited", "Requests refused by the per-key rate limit", registry=self.registry)
