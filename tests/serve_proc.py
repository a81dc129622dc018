"""A real ``hippo serve`` process on a free loopback port, for tests and benchmarks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
KEY_A = "key-alice-0123456789abcdef"
KEY_B = "key-bob-0123456789abcdef00"
KEY_READER = "key-reader-0123456789abcdef"
KEY_METRICS = "key-metrics-0123456789abcd"
KEYS = {
    KEY_A: {"namespaces": ["alice", "alice-*"], "write": True, "name": "alice"},
    KEY_B: {"namespaces": ["bob"], "write": True, "name": "bob"},
    KEY_READER: {"namespaces": ["alice"], "name": "alice-reader"},
    KEY_METRICS: {"namespaces": ["ops"], "metrics": True, "name": "ops"},
}
HASHING = ["--set", "embed.model=hashing:64"]
"""The documented test-only setting: a deterministic embedder with no model to load."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_with_repo(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIPPO_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.update(extra or {})
    return env


def write_keys(path: Path, keys: dict[str, Any] | None = None) -> Path:
    path.write_text(json.dumps(keys or KEYS), encoding="utf-8")
    return path


class ServerProcess:
    """``python -m hippo.cli.main serve --root ROOT --port <free> ARGS``; stderr to a log file."""

    def __init__(self, root: Path, *args: str, log: Path | None = None, env: dict[str, str] | None = None,
                 port: int | None = None) -> None:
        self.root = root
        self.args = list(args)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log or root.parent / f"serve-{self.port}.log"
        self.env = env_with_repo(env)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> ServerProcess:
        """Start and wait until ``/readyz`` answers 200."""
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hippo.cli.main", "serve", "--root", str(self.root), "--port", str(self.port),
             *self.args],
            stdout=subprocess.DEVNULL, stderr=self._log, env=self.env, cwd=str(REPO),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hippo serve exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"hippo serve did not become ready in {timeout} s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send ``sig`` and wait for the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._log.close()
        return code

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()


def keyed_server(base: Path) -> ServerProcess:
    """A server over ``base/root`` with the test keys (``base/keys.json``), no rate limit and the
    hashing embedder: the module fixture of the REST and MCP tests (``with keyed_server(base) as srv``)."""
    keys = write_keys(base / "keys.json")
    return ServerProcess(base / "root", "--keys", str(keys), "--rate", "0", *HASHING)


def index_state(path: Path) -> tuple[set[str], list[str]]:
    """The live passage ids of the index at ``path`` read from disk (its last commit), and the
    files whose sha256 differs from the one recorded when they were written."""
    from hippo.live.snapshot import Snapshot

    snap = Snapshot.open(path)
    try:
        alive = snap.passage_alive
        ids = {pid for i, pid in enumerate(snap.passage_ids) if alive is None or bool(alive[i])}
        bad = [b for view, entry in zip(snap.views, snap.manifest["segments"]) for b in view.files.verify(entry)]
        return ids, bad
    finally:
        snap.close()
