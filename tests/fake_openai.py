"""A replay server: a real OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

It is not a model. It answers hippo's OpenIE prompts by *replaying* the extractions recorded
from gpt-3.5-turbo in a HippoRAG OpenIE file, for the passage it finds verbatim in the last
user message (the prompts' wire contract): the entity step (asks for ``named_entities``, never
says "triple") gets the recorded entities, the triple step the recorded triples. Other
requests (the recognition filter, the QA reader) are answered by scripted handlers.
``/v1/embeddings`` returns the deterministic hashing embedder's vectors.

Faults are injected deterministically: a request's fate depends on a seed, its body and how
often that body was seen, so a retry of a failed request can succeed. Kinds: HTTP 500,
HTTP 429 (Retry-After: 0), timeouts (the reply is held longer than the client waits), garbage
or truncated JSON for chosen passages, and a fixed latency per request.

Run standalone (prints the base URL, serves until killed)::

    python tests/fake_openai.py --openie ../shared/data/musique100/openie_gpt-3.5-turbo-1106.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Handler = Callable[[dict[str, Any]], "str | tuple[str, str] | None"]
"""Scripted reply for a request body: content, (content, finish_reason), or None to pass."""


class Recording:
    """Recorded extractions by passage text, found inside a prompt by substring search."""

    KEY = 32

    def __init__(self, path: str | Path) -> None:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        docs = data["docs"] if isinstance(data, dict) else data
        self.by_passage: dict[str, dict[str, Any]] = {}
        for doc in docs:
            passage = doc.get("passage")
            if not isinstance(passage, str):
                title, text = doc.get("title"), doc.get("text", "")
                passage = f"{title}\n{text}" if title else text
            self.by_passage.setdefault(passage, doc)
        self._heads: dict[str, list[str]] = {}
        for p in self.by_passage:
            self._heads.setdefault(p[: self.KEY], []).append(p)
        for group in self._heads.values():
            group.sort(key=len, reverse=True)

    def find(self, text: str) -> str | None:
        """The longest recorded passage that occurs verbatim in ``text``."""
        best: str | None = None
        for i in range(max(0, len(text) - self.KEY + 1)):
            for p in self._heads.get(text[i : i + self.KEY], ()):
                if (best is None or len(p) > len(best)) and text.startswith(p, i):
                    best = p
                    break
        if best is None:  # passages shorter than the key
            short = [p for p in self.by_passage if len(p) < self.KEY and p in text]
            best = max(short, key=len) if short else None
        return best


class ReplayServer:
    """The server; ``start()`` serves on a free port of 127.0.0.1 in a background thread."""

    def __init__(
        self,
        recording: Recording | str | Path | None = None,
        *,
        seed: int = 0,
        error_rate: float = 0.0,
        timeout_rate: float = 0.0,
        rate_limit_rate: float = 0.0,
        hold_seconds: float = 2.0,
        latency: float = 0.0,
        garbage: Callable[[str], bool] | None = None,
        truncate: Callable[[str], bool] | None = None,
        handlers: list[Handler] | None = None,
        embed_dim: int = 64,
        force_status: int | None = None,
        reject_json_mode: bool = False,
    ) -> None:
        self.recording = recording if isinstance(recording, Recording) or recording is None else Recording(recording)
        self.seed = seed
        self.error_rate = error_rate
        self.timeout_rate = timeout_rate
        self.rate_limit_rate = rate_limit_rate
        self.hold_seconds = hold_seconds
        self.latency = latency
        self.garbage = garbage
        self.truncate = truncate
        self.handlers = list(handlers or [])
        self.embed_dim = embed_dim
        self.force_status = force_status
        """Answer every chat request with this HTTP status (e.g. 401, 404)."""
        self.reject_json_mode = reject_json_mode
        """Answer 400 to requests with ``response_format``, as servers without JSON mode do."""
        self.lock = threading.Lock()
        self.seen: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests: list[dict[str, Any]] = []
        self._httpd: ThreadingHTTPServer | None = None

    # --------------------------------------------------------------------- lifecycle

    def start(self) -> ReplayServer:
        """Serve on 127.0.0.1 (a free port) in a daemon thread."""
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": "replay", "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                server._enter()
                try:
                    status, payload, headers = server.handle(self.path, raw)
                finally:
                    server._leave()
                if status == -1:  # a dropped connection
                    self.close_connection = True
                    return
                self._send(status, payload, headers)

            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                body = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        class _Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self._httpd.serve_forever, name="replay-server", daemon=True).start()
        return self

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``."""
        assert self._httpd is not None, "start() the server first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def heal(self) -> None:
        """No more injected faults: a healthy server from now on."""
        self.error_rate = self.timeout_rate = self.rate_limit_rate = 0.0
        self.garbage = self.truncate = None

    def count(self, kind: str) -> int:
        """Requests of ``kind`` served so far (``ner``, ``triples``, ``handler``, ``embeddings``,
        ``error500``, ``error429``, ``timeout``, ``garbage``, ``truncated``, ``unknown``)."""
        with self.lock:
            return self.counts.get(kind, 0)

    # --------------------------------------------------------------------- behaviour

    def _enter(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def _bump(self, kind: str) -> None:
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1

    def _fate(self, raw: bytes) -> float:
        digest = hashlib.sha256(raw).hexdigest()
        with self.lock:
            attempt = self.seen.get(digest, 0)
            self.seen[digest] = attempt + 1
        return random.Random(f"{self.seed}:{digest}:{attempt}").random()

    def handle(self, path: str, raw: bytes) -> tuple[int, Any, dict[str, str]]:
        """(status, JSON payload, headers) for one POST; status -1 drops the connection."""
        if self.latency:
            time.sleep(self.latency)
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {"error": {"message": "body is not JSON"}}, {}
        if path.rstrip("/").endswith("/embeddings"):
            return self._embeddings(body)
        if not path.rstrip("/").endswith("/chat/completions"):
            return 404, {"error": {"message": f"no route {path}"}}, {}
        with self.lock:
            self.requests.append(body)
        if self.force_status is not None:
            return self.force_status, {"error": {"message": f"injected HTTP {self.force_status}"}}, {}
        if self.reject_json_mode and "response_format" in body:
            return 400, {"error": {"message": "response_format is not supported by this server"}}, {}
        fate = self._fate(raw)
        if fate < self.timeout_rate:
            self._bump("timeout")
            time.sleep(self.hold_seconds)
            return -1, None, {}
        fate -= self.timeout_rate
        if fate < self.error_rate:
            self._bump("error500")
            return 500, {"error": {"message": "injected server error"}}, {}
        fate -= self.error_rate
        if fate < self.rate_limit_rate:
            self._bump("error429")
            return 429, {"error": {"message": "injected rate limit"}}, {"retry-after": "0"}
        content, finish = self._reply(body)
        if content is None:
            self._bump("unknown")
            return 422, {"error": {"message": "the replay server has no recording for this prompt"}}, {}
        return 200, self._completion(body, content, finish), {}

    def _reply(self, body: dict[str, Any]) -> tuple[str | None, str]:
        for handler in self.handlers:
            out = handler(body)
            if out is not None:
                self._bump("handler")
                return (out, "stop") if isinstance(out, str) else out
        messages = body.get("messages") or []
        everything = " ".join(str(m.get("content", "")) for m in messages)
        last_user = next((str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), "")
        if self.recording is None:
            return None, "stop"
        passage = self.recording.find(last_user)
        if passage is None:
            return None, "stop"
        doc = self.recording.by_passage[passage]
        template = everything.replace(passage, " ")  # the passage itself may say "triple"
        is_triples = "triple" in template.lower()
        if not is_triples and "named_entities" not in template:
            return None, "stop"
        if self.garbage is not None and self.garbage(passage):
            self._bump("garbage")
            return "Sure! Here is what I found in the paragraph: lots of interesting things.", "stop"
        if is_triples:
            self._bump("triples")
            content = json.dumps({"triples": doc.get("extracted_triples", [])})
        else:
            self._bump("ner")
            content = json.dumps({"named_entities": doc.get("extracted_entities", [])})
        if self.truncate is not None and self.truncate(passage) and is_triples:
            self._bump("truncated")
            return content[: max(12, len(content) // 2)], "length"
        return content, "stop"

    def _completion(self, body: dict[str, Any], content: str, finish: str) -> dict[str, Any]:
        prompt_words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])
        return {
            "id": "replay-" + hashlib.md5(content.encode()).hexdigest()[:12],
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "replay"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_words, "completion_tokens": len(content.split()),
                      "total_tokens": prompt_words + len(content.split())},
        }

    def _embeddings(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        from hippo.embed.hashing import HashingEmbedder

        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        self._bump("embeddings")
        vecs = HashingEmbedder(self.embed_dim).encode_documents(texts) if texts else []
        data = [{"object": "embedding", "index": i, "embedding": [float(x) for x in v]} for i, v in enumerate(vecs)]
        return 200, {"object": "list", "data": data, "model": body.get("model", "replay"),
                     "usage": {"prompt_tokens": sum(len(t.split()) for t in texts), "total_tokens": 0}}, {}


def share(rate: float, salt: str) -> Callable[[str], bool]:
    """A fixed share of passages, chosen by hash: the same ones every run."""
    def pick(passage: str) -> bool:
        h = int(hashlib.md5(f"{salt}:{passage}".encode()).hexdigest()[:8], 16)
        return h / 0xFFFFFFFF < rate

    return pick


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted; print the base URL on stdout."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--openie", required=True, help="HippoRAG OpenIE file to replay")
    ap.add_argument("--error-rate", type=float, default=0.0)
    ap.add_argument("--timeout-rate", type=float, default=0.0)
    ap.add_argument("--hold-seconds", type=float, default=2.0)
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--garbage-rate", type=float, default=0.0, help="share of passages always answered with garbage")
    ap.add_argument("--truncate-rate", type=float, default=0.0, help="share of passages whose triple reply is cut (finish_reason=length)")
    args = ap.parse_args(argv)
    server = ReplayServer(
        args.openie, seed=args.seed, error_rate=args.error_rate, timeout_rate=args.timeout_rate,
        hold_seconds=args.hold_seconds, latency=args.latency,
        garbage=share(args.garbage_rate, "garbage") if args.garbage_rate else None,
        truncate=share(args.truncate_rate, "truncate") if args.truncate_rate else None,
    ).start()
    print(server.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
