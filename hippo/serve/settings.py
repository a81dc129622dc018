"""Settings of a ``hippo serve`` process: where, who, and how much."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hippo.config import Config
from hippo.serve.keys import KeyRing

# Hard caps of the request schema (the OpenAPI document states them); the limits below may
# only be lower.
MAX_PASSAGES = 1000
MAX_TEXT_CHARS = 200_000
MAX_TITLE_CHARS = 1000
MAX_ID_CHARS = 256
MAX_QUERIES = 256
MAX_QUERY_CHARS = 8000
MAX_K = 200


@dataclass(frozen=True)
class Limits:
    """Per-request and per-key limits (each has a ``hippo serve --max-*``/``--rate`` flag)."""

    max_body_bytes: int = 8 << 20
    """Largest request body; larger ones get 413 before they are read to the end."""
    max_passages: int = 256
    """Passages (or ids) in one write request."""
    max_queries: int = 64
    """Queries in one batch retrieve."""
    max_k: int = 100
    """Largest ``k``."""
    rate: float = 50.0
    """Requests per second each key may make on average (token bucket); 0 = unlimited."""
    burst: int = 100
    """Requests a key may make at once before the rate applies."""
    read_timeout: float = 30.0
    """Seconds a read (retrieve, info, ask) may take before it is answered 504."""
    write_timeout: float = 600.0
    """Seconds a request waits for its write; then 504 (the write may still complete)."""
    write_queue: int = 64
    """Writes queued per namespace before new ones get 503."""
    read_threads: int = 4
    """Reads computed at once (the rest wait their turn)."""
    batch_reads: bool = True
    """Answer concurrent single retrieves of one namespace with one batched call."""
    write_threads: int = 2
    """Namespaces written at once."""
    max_engines: int = 32
    """Namespaces kept open (LRU)."""
    cache_bytes: int = 8 << 30
    """Bytes of index files the open namespaces may map before the least recently used closes."""
    writer_idle: float = 60.0
    """Seconds a namespace's writer keeps its index (and writer lock) open after its last write."""

    def __post_init__(self) -> None:
        for name, cap in (("max_passages", MAX_PASSAGES), ("max_queries", MAX_QUERIES), ("max_k", MAX_K)):
            value = getattr(self, name)
            if not 1 <= value <= cap:
                raise ValueError(f"{name} must be between 1 and {cap}, got {value}")


@dataclass(frozen=True)
class ServeSettings:
    """Everything :func:`hippo.serve.create_app` needs besides the models."""

    root: Path
    config: Config
    keys: KeyRing | None
    """None only with ``--no-auth`` (every request gets full access)."""
    host: str = "127.0.0.1"
    limits: Limits = field(default_factory=Limits)
    cors_origins: tuple[str, ...] = ()
    """Origins allowed by CORS; empty = CORS off (no CORS headers at all)."""
    public_metrics: bool = False
    """``/metrics`` without a key (else a key with ``"metrics": true``)."""
    drain_timeout: float = 60.0
    """Seconds shutdown waits for running writes."""
