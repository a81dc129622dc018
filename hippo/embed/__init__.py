"""Embedders: sentence-transformers (default), OpenAI-compatible servers, and a deterministic
hashing embedder for tests."""

from __future__ import annotations

from hippo.config import EmbedConfig, LLMConfig
from hippo.embed.hashing import HashingEmbedder
from hippo.embed.st import SentenceTransformerEmbedder, resolve_model_path
from hippo.protocols import Embedder

__all__ = ["HashingEmbedder", "SentenceTransformerEmbedder", "make_embedder", "resolve_model_path"]


def make_embedder(config: EmbedConfig, llm: LLMConfig | None = None) -> Embedder:
    """The embedder a config names. ``hashing:<dim>`` gives the test embedder;
    ``openai:<model>`` an OpenAI-compatible server (endpoint and key from ``llm``)."""
    if config.model.startswith("hashing:"):
        return HashingEmbedder(dim=int(config.model.split(":", 1)[1]))
    if config.model.startswith("openai:"):
        from hippo.embed.openai_embed import make_openai_embedder

        return make_openai_embedder(config.model.split(":", 1)[1], config.batch_size, llm)
    return SentenceTransformerEmbedder(
        config.model,
        batch_size=config.batch_size,
        precision=config.precision,
        max_seq_length=config.max_seq_length,
        device=config.device,
    )
