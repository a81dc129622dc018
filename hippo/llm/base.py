"""The LLM client machinery that does not depend on any provider (no network, no openai).

:class:`BatchClient` runs a batch of chat requests with bounded concurrency, the response
cache, retries with exponential backoff and full jitter, and per-stage usage counting.
A concrete client only implements :meth:`BatchClient._send` (one HTTP attempt) and
classifies its failures as :class:`RetryableError`, :class:`RequestRejected` or
:class:`LLMUnavailableError`.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from hippo.errors import HippoError

T = TypeVar("T")

Message = dict[str, str]
"""One chat message: ``{"role": "system"|"user"|"assistant", "content": ...}``."""


class LLMUnavailableError(HippoError):
    """The server cannot serve any request (unreachable, refused key, unknown model):
    stop the whole run instead of failing every request one by one."""


class RetryableError(Exception):
    """One attempt failed in a way worth retrying (429, 5xx, timeout, dropped connection).

    ``retry_after`` is the server's Retry-After in seconds, when it sent one.
    """

    def __init__(self, reason: str, retry_after: float | None = None, connect: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.connect = connect
        """True when no connection could be made at all (the server is not there)."""


class RequestRejected(Exception):
    """The server refused this one request for good (e.g. 400: prompt too long); no retry."""


class ParseError(ValueError):
    """A reply that does not hold what the prompt asked for. ``retry=False`` when asking
    again cannot help (e.g. the reply hit the length limit)."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion to make. ``stage`` names what it is for (usage is counted per stage)."""

    messages: tuple[Message, ...]
    stage: str
    max_tokens: int | None = None
    """Cap on the reply length; None = the client's default."""
    json: bool = True
    """Ask for a JSON object (JSON mode where the server supports it)."""


@dataclass(frozen=True)
class ChatReply:
    """The text of a reply and what it cost."""

    content: str
    finish_reason: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """The parsed value of one request, or why there is none."""

    value: T | None
    error: str | None = None
    reply: ChatReply | None = None

    @property
    def ok(self) -> bool:
        """True when a value was parsed."""
        return self.error is None


@dataclass
class StageUsage:
    """What one stage asked and spent. Tokens count network replies only; ``cached_*`` what
    the cache saved."""

    requests: int = 0
    cache_hits: int = 0
    calls: int = 0
    """HTTP attempts made (retries included)."""
    retries: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON shape (seconds rounded)."""
        d = dict(self.__dict__)
        d["seconds"] = round(self.seconds, 3)
        return d


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter: attempt ``n`` (0-based) waits
    ``uniform(0, min(cap, base * 2**n))`` seconds, or the server's Retry-After if longer."""

    max_retries: int = 5
    base: float = 0.5
    cap: float = 20.0
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        wait = self.rng.uniform(0.0, min(self.cap, self.base * (2.0**attempt)))
        return max(wait, retry_after or 0.0)


class BatchClient:
    """Batch-first chat client: ``chat_many`` runs requests concurrently (at most
    ``concurrency`` in flight), serves repeats from ``cache``, retries transient failures,
    and counts usage per stage. Subclasses implement :meth:`_send`."""

    model: str = ""

    def __init__(
        self,
        *,
        concurrency: int = 8,
        retry: RetryPolicy | None = None,
        cache: Any = None,
        params: dict[str, Any] | None = None,
        parse_retries: int = 1,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.concurrency = concurrency
        self.retry = retry or RetryPolicy()
        self.cache = cache
        self.params = dict(params or {})
        """Generation parameters that shape replies (temperature, default max_tokens): part of the cache key."""
        self.parse_retries = parse_retries
        self._sleep = sleep
        self._lock = threading.Lock()
        self._usage: dict[str, StageUsage] = {}

    # ----------------------------------------------------------------- subclass API

    def _send(self, request: ChatRequest) -> ChatReply:  # pragma: no cover - abstract
        """One attempt; raise RetryableError, RequestRejected or LLMUnavailableError on failure."""
        raise NotImplementedError

    # ----------------------------------------------------------------- public API

    def usage(self) -> dict[str, dict[str, Any]]:
        """Per stage: requests, cache hits, calls, retries, failures, tokens."""
        with self._lock:
            return {stage: u.to_dict() for stage, u in sorted(self._usage.items())}

    def cache_key_of(self, request: ChatRequest) -> str:
        """The response-cache key: model + generation parameters + prompt (hashed)."""
        from hippo.llm.cache import request_key

        return request_key(self.model, request, self.params)

    def chat_many(
        self,
        requests: Sequence[ChatRequest],
        parse: Callable[[ChatReply], T],
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Outcome[T]]:
        """Run ``requests``; ``parse`` turns a reply into a value or raises :class:`ParseError`.
        ``progress(done, total)`` is called as requests finish.

        Only replies that parse are cached. A reply that does not parse is asked again
        ``parse_retries`` times (bypassing the cache), then reported in its Outcome.
        Transient HTTP failures are retried per :class:`RetryPolicy`; a request that still
        fails is reported in its Outcome. :class:`LLMUnavailableError` stops the batch.
        """
        if not requests:
            return []
        stop = threading.Event()
        fatal: list[BaseException] = []
        done = [0]

        def run(req: ChatRequest) -> Outcome[T]:
            if stop.is_set():
                return Outcome(None, "not run: the batch stopped")
            try:
                return self._one(req, parse)
            except LLMUnavailableError as exc:
                stop.set()
                fatal.append(exc)
                return Outcome(None, str(exc))
            finally:
                if progress is not None:
                    with self._lock:
                        done[0] += 1
                        progress(done[0], len(requests))

        if self.concurrency == 1 or len(requests) == 1:
            results = [run(r) for r in requests]
        else:
            pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests)), thread_name_prefix="hippo-llm")
            try:
                results = list(pool.map(run, requests))
            except BaseException:  # Ctrl-C: queued requests are skipped; replies received are cached
                stop.set()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            pool.shutdown()
        if fatal:
            raise fatal[0]
        return results

    # ----------------------------------------------------------------- internals

    def _stage(self, name: str) -> StageUsage:
        u = self._usage.get(name)
        if u is None:
            u = self._usage[name] = StageUsage()
        return u

    def _one(self, req: ChatRequest, parse: Callable[[ChatReply], T]) -> Outcome[T]:
        t0 = time.perf_counter()
        key = self.cache_key_of(req) if self.cache is not None else ""
        with self._lock:
            self._stage(req.stage).requests += 1
        try:
            if self.cache is not None:
                hit = self.cache.get(key)
                if hit is not None:
                    try:
                        value = parse(hit)
                    except ParseError:
                        pass  # a stale entry (the parser changed): ask again
                    else:
                        with self._lock:
                            u = self._stage(req.stage)
                            u.cache_hits += 1
                            u.cached_prompt_tokens += hit.prompt_tokens
                            u.cached_completion_tokens += hit.completion_tokens
                        return Outcome(value, None, hit)
            last = ""
            for _ in range(1 + self.parse_retries):
                reply = self._with_retries(req)
                if isinstance(reply, str):
                    with self._lock:
                        self._stage(req.stage).failures += 1
                    return Outcome(None, reply)
                try:
                    value = parse(reply)
                except ParseError as exc:
                    last = f"{exc} (finish_reason={reply.finish_reason})"
                    if not exc.retry:
                        break
                    continue
                if self.cache is not None:
                    self.cache.put(key, reply, self.model, req.stage)
                return Outcome(value, None, reply)
            with self._lock:
                self._stage(req.stage).failures += 1
            return Outcome(None, f"unusable reply: {last}")
        finally:
            with self._lock:
                self._stage(req.stage).seconds += time.perf_counter() - t0

    def _with_retries(self, req: ChatRequest) -> ChatReply | str:
        """A reply, or the reason the last attempt failed once retries ran out."""
        attempt = 0
        while True:
            with self._lock:
                self._stage(req.stage).calls += 1
            try:
                reply = self._send(req)
            except RequestRejected as exc:
                return str(exc)
            except RetryableError as exc:
                if attempt >= self.retry.max_retries:
                    if exc.connect:
                        raise LLMUnavailableError(
                            f"cannot reach the LLM server ({exc.reason}) after {attempt + 1} attempts; "
                            f"start it or fix --llm-base-url"
                        ) from None
                    return f"{exc.reason} (gave up after {attempt + 1} attempts)"
                with self._lock:
                    self._stage(req.stage).retries += 1
                self._sleep(self.retry.delay(attempt, exc.retry_after))
                attempt += 1
                continue
            with self._lock:
                u = self._stage(req.stage)
                u.prompt_tokens += reply.prompt_tokens
                u.completion_tokens += reply.completion_tokens
            return reply
