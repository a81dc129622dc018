"""Embedders: sentence-transformers (default) and a deterministic hashing embedder for tests."""

from __future__ import annotations

from hippo.config import EmbedConfig
from hippo.embed.hashing import HashingEmbedder
from hippo.embed.st import SentenceTransformerEmbedder, resolve_model_path
from hippo.protocols import Embedder

__all__ = ["HashingEmbedder", "SentenceTransformerEmbedder", "make_embedder", "resolve_model_path"]


def make_embedder(config: EmbedConfig) -> Embedder:
    """The embedder a config names. ``hashing:<dim>`` gives the test embedder."""
    if config.model.startswith("hashing:"):
        return HashingEmbedder(dim=int(config.model.split(":", 1)[1]))
    return SentenceTransformerEmbedder(
        config.model,
        batch_size=config.batch_size,
        precision=config.precision,
        max_seq_length=config.max_seq_length,
        device=config.device,
    )
