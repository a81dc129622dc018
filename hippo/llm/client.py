"""The chat client for any OpenAI-compatible server (OpenAI, vLLM, Ollama, LM Studio, ...).

Built on the ``openai`` package (the ``llm`` extra), imported only when a client is made.
The package's own retries are off: :class:`~hippo.llm.base.BatchClient` retries 429, 5xx,
timeouts and dropped connections itself, with backoff and jitter, and counts them.
The API key is read from an environment variable by :func:`make_llm_client` and handed
to the ``openai`` client only; it is never logged, cached or written into an index.
"""

from __future__ import annotations

import os
import threading
from typing import Any
from urllib.parse import urlparse

from hippo.config import LLMConfig
from hippo.errors import ConfigError
from hippo.llm.base import (
    BatchClient,
    ChatReply,
    ChatRequest,
    LLMUnavailableError,
    RequestRejected,
    RetryableError,
    RetryPolicy,
)

OPENAI_URL = "https://api.openai.com/v1"
NO_KEY = "no-key"
"""Sent as the key to a server given by --llm-base-url when the key variable is unset
(local servers such as vLLM, Ollama and LM Studio accept any key)."""


def _import_openai() -> Any:
    try:
        import openai
    except ImportError:
        raise ConfigError(
            "the LLM features need the openai package: pip install 'hippo[llm]' (or pip install openai)"
        ) from None
    return openai


def resolve_endpoint(config: LLMConfig, environ: dict[str, str] | None = None) -> tuple[str, str]:
    """(base URL, API key) from the config and the environment; a clear error when neither
    a key nor a server is given. The key comes from the variable ``config.api_key_env``."""
    env = os.environ if environ is None else environ
    base_url = config.base_url or env.get("OPENAI_BASE_URL", "")
    key = env.get(config.api_key_env, "")
    if not key:
        if not base_url:
            raise ConfigError(
                f"no API key for the LLM: set {config.api_key_env} (or name another variable with "
                f"--llm-api-key-env), or point --llm-base-url at an OpenAI-compatible server such as "
                f"http://localhost:8000/v1"
            )
        key = NO_KEY
    base_url = base_url or OPENAI_URL
    parsed = urlparse(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"invalid LLM base URL {base_url!r}; expected e.g. http://localhost:8000/v1")
    return base_url.rstrip("/"), key


class OpenAIClient(BatchClient):
    """Chat completions over the ``openai`` package against ``base_url``."""

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 60.0,
        concurrency: int = 8,
        retry: RetryPolicy | None = None,
        cache: Any = None,
        temperature: float = 0.0,
        max_tokens: int = 2048,
        json_mode: str = "auto",
    ) -> None:
        super().__init__(
            concurrency=concurrency, retry=retry, cache=cache,
            params={"temperature": temperature, "max_tokens": max_tokens},
        )
        openai = _import_openai()
        self._openai = openai
        self.model = model
        self.base_url = base_url
        self.timeout = timeout
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.json_mode = json_mode
        self._json_ok = json_mode != "off"
        self._cap_param = "max_tokens"
        self._compat_lock = threading.Lock()
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0)

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIClient(model={self.model!r}, base_url={self.base_url!r})"

    def _send(self, request: ChatRequest) -> ChatReply:
        openai = self._openai
        for _ in range(3):  # at most two compatibility fallbacks, then a real answer or error
            kwargs: dict[str, Any] = {
                "model": self.model,
                "messages": list(request.messages),
                "temperature": self.temperature,
                self._cap_param: request.max_tokens or self.max_tokens,
            }
            json_sent = request.json and self._json_ok
            if json_sent:
                kwargs["response_format"] = {"type": "json_object"}
            try:
                resp = self._client.chat.completions.create(**kwargs)
            except openai.APITimeoutError:
                raise RetryableError(f"timed out after {self.timeout:g} s") from None
            except openai.APIConnectionError as exc:
                raise RetryableError(f"connection to {self.base_url} failed: {exc}", connect=True) from None
            except openai.RateLimitError as exc:
                raise RetryableError("rate limited (HTTP 429)", retry_after=_retry_after(exc)) from None
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                raise LLMUnavailableError(
                    f"{self.base_url} refused the API key (HTTP {exc.status_code}); set the key variable "
                    f"(--llm-api-key-env, default OPENAI_API_KEY) to a valid key"
                ) from None
            except openai.NotFoundError:
                raise LLMUnavailableError(
                    f"model {self.model!r} or the chat endpoint was not found at {self.base_url} (HTTP 404); "
                    f"check --llm-model and --llm-base-url (it usually ends in /v1)"
                ) from None
            except openai.BadRequestError as exc:
                text = str(exc).lower()
                with self._compat_lock:
                    if json_sent and self.json_mode == "auto" and ("response_format" in text or "json" in text):
                        self._json_ok = False  # this server has no JSON mode: plain instructions from now on
                        continue
                    if self._cap_param == "max_tokens" and "max_tokens" in text and "max_completion_tokens" in text:
                        self._cap_param = "max_completion_tokens"
                        continue
                raise RequestRejected(f"the server rejected the request (HTTP 400): {_short(exc)}") from None
            except openai.APIStatusError as exc:
                if exc.status_code >= 500 or exc.status_code in (408, 409):
                    raise RetryableError(f"HTTP {exc.status_code} from the server") from None
                raise RequestRejected(f"HTTP {exc.status_code} from the server: {_short(exc)}") from None
            except openai.OpenAIError as exc:  # e.g. a body that is not a chat completion
                raise RetryableError(f"malformed response: {_short(exc)}") from None
            try:
                choice = resp.choices[0]
                content = choice.message.content or ""
                finish = str(choice.finish_reason or "")
            except (AttributeError, IndexError, TypeError):
                raise RetryableError("malformed response: no choices") from None
            usage = getattr(resp, "usage", None)
            return ChatReply(
                content, finish,
                int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0),
            )
        raise RequestRejected("the server rejected the request in every compatible form")  # pragma: no cover


def _retry_after(exc: Any) -> float | None:
    try:
        value = exc.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None


def _short(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text[:limit] + ("…" if len(text) > limit else "")


def make_llm_client(config: LLMConfig, cache: Any = None, environ: dict[str, str] | None = None) -> OpenAIClient:
    """The client a config describes: endpoint and key resolved, response cache opened
    (``llm.cache``: a path, empty for the default location, ``off`` for none)."""
    base_url, key = resolve_endpoint(config, environ)
    if cache is None and config.cache != "off":
        from hippo.llm.cache import ResponseCache, default_cache_path

        cache = ResponseCache(config.cache or default_cache_path())
    return OpenAIClient(
        config.model, base_url, key,
        timeout=config.timeout, concurrency=config.concurrency,
        retry=RetryPolicy(max_retries=config.max_retries, base=config.backoff_base),
        cache=cache, temperature=config.temperature, max_tokens=config.max_tokens, json_mode=config.json_mode,
    )
