"""A persistent response cache in SQLite, so that an interrupted or repeated run never pays twice.

The key is the SHA-256 of the canonical JSON of the model name, the generation parameters
(temperature, default reply cap, ...) and the request (messages, reply cap, JSON mode). The
base URL and the API key are not part of it: the same model behind another address (a
restarted local server on a new port) reuses the cache, and no secret is ever written.
Only replies that parsed are stored. Each insert is committed at once (WAL journal), so a
run killed at any point keeps everything it had received.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from hippo.errors import HippoError
from hippo.llm.base import ChatReply, ChatRequest

SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    stage TEXT NOT NULL,
    content TEXT NOT NULL,
    finish_reason TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL
)
"""


def request_key(model: str, request: ChatRequest, params: dict[str, Any]) -> str:
    """SHA-256 hex of model + parameters + request (messages, reply cap, JSON mode)."""
    payload = {
        "model": model,
        "params": params,
        "messages": list(request.messages),
        "max_tokens": request.max_tokens,
        "json": request.json,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def default_cache_path() -> Path:
    """``$HIPPO_CACHE_DIR/llm-cache.sqlite``, else ``$XDG_CACHE_HOME/hippo/...``, else ``~/.cache/hippo/...``."""
    root = os.environ.get("HIPPO_CACHE_DIR") or str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hippo")
    return Path(root) / "llm-cache.sqlite"


class ResponseCache:
    """Thread-safe SQLite cache of chat replies (one connection, one lock)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(SCHEMA)
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise HippoError(
                f"cannot open the LLM response cache {self.path}: {exc}; point --set llm.cache=PATH elsewhere "
                f"or turn it off with --set llm.cache=off"
            ) from None
        self._lock = threading.Lock()

    def get(self, key: str) -> ChatReply | None:
        """The cached reply for ``key``, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT content, finish_reason, prompt_tokens, completion_tokens FROM replies WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        return ChatReply(row[0], row[1], int(row[2]), int(row[3]), cached=True)

    def put(self, key: str, reply: ChatReply, model: str = "", stage: str = "") -> None:
        """Store ``reply`` under ``key`` (committed at once)."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, model, stage, reply.content, reply.finish_reason, reply.prompt_tokens, reply.completion_tokens, time.time()),
            )
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM replies").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
