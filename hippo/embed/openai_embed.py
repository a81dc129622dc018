"""Embeddings from an OpenAI-compatible server (OpenAI, vLLM, Ollama, LM Studio, TEI, ...).

``embed.model = "openai:<model>"`` selects it. The server is ``llm.embed_base_url``, else
``llm.base_url`` (else ``$OPENAI_BASE_URL``, else OpenAI), with the key from the same
variable as the chat client. Vectors are L2-normalised float32; the dimension is learnt from
the first reply (one probe call when it is asked for first). The ``openai`` package's own
retries (with backoff) cover 429, 5xx and timeouts here.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from hippo.config import LLMConfig
from hippo.errors import HippoError
from hippo.protocols import FloatArray

PREFIX = "openai:"


class OpenAIEmbedder:
    """Embeds through ``POST {base_url}/embeddings``, ``batch_size`` texts per request."""

    def __init__(self, model: str, base_url: str, api_key: str, *, batch_size: int = 64,
                 timeout: float = 60.0, max_retries: int = 5) -> None:
        from hippo.llm.client import _import_openai

        openai = _import_openai()
        self._openai = openai
        self.model = model
        self.base_url = base_url
        self.batch_size = batch_size
        self._dim: int | None = None
        self._lock = threading.Lock()
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries)

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIEmbedder(model={self.model!r}, base_url={self.base_url!r})"

    @property
    def id(self) -> str:
        """``openai:<model>``: recorded in the index."""
        return PREFIX + self.model

    @property
    def dim(self) -> int:
        """Vector dimension (asks the server once if no text was embedded yet)."""
        if self._dim is None:
            self._embed(["dimension probe"])
        assert self._dim is not None
        return self._dim

    def _embed(self, texts: Sequence[str]) -> FloatArray:
        openai = self._openai
        try:
            resp = self._client.embeddings.create(model=self.model, input=list(texts))
        except openai.APIConnectionError as exc:
            raise HippoError(f"cannot reach the embedding server {self.base_url} ({exc}); start it or fix llm.embed_base_url") from None
        except openai.APIStatusError as exc:
            raise HippoError(
                f"the embedding server {self.base_url} answered HTTP {exc.status_code} for model {self.model!r}; "
                f"check embed.model=openai:<model>, llm.embed_base_url and the key variable"
            ) from None
        rows = sorted(resp.data, key=lambda d: d.index)
        if len(rows) != len(texts):
            raise HippoError(f"the embedding server returned {len(rows)} vectors for {len(texts)} texts")
        vecs = np.asarray([r.embedding for r in rows], dtype=np.float32)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        vecs = (vecs / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        with self._lock:
            if self._dim is None:
                self._dim = int(vecs.shape[1])
        return vecs

    def encode_documents(self, texts: Sequence[str]) -> FloatArray:
        """Shape (len(texts), dim), rows L2-normalised."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [self._embed(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        return np.concatenate(parts).astype(np.float32)

    def encode_queries(self, texts: Sequence[str], instruction: str = "") -> FloatArray:
        """Shape (len(texts), dim); ``instruction`` prefixes each query."""
        return self.encode_documents([f"{instruction}{t}" for t in texts])


def make_openai_embedder(model: str, batch_size: int, llm: LLMConfig | None) -> OpenAIEmbedder:
    """The embedder for ``embed.model = "openai:<model>"`` with the endpoint of ``llm``."""
    from hippo.llm.client import resolve_endpoint

    cfg = llm or LLMConfig()
    if cfg.embed_base_url:
        cfg = replace(cfg, base_url=cfg.embed_base_url)
    base_url, key = resolve_endpoint(cfg)
    return OpenAIEmbedder(model, base_url, key, batch_size=batch_size, timeout=cfg.timeout, max_retries=cfg.max_retries)
