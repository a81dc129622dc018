"""A deterministic bag-of-words embedder: no model, no randomness across runs.

It exists for tests and examples. Texts sharing words get similar vectors, so
retrieval on it behaves sensibly on toy corpora.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from hippo.ids import normalize
from hippo.protocols import FloatArray


class HashingEmbedder:
    """Signed feature hashing of word unigrams and character trigrams, L2-normalised."""

    def __init__(self, dim: int = 64) -> None:
        if dim < 8:
            raise ValueError("HashingEmbedder needs dim >= 8")
        self._dim = dim

    @property
    def id(self) -> str:
        """Identifies this embedder and its dimension."""
        return f"hashing:{self._dim}"

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return self._dim

    def _vector(self, text: str) -> FloatArray:
        vec = np.zeros(self._dim, dtype=np.float32)
        words = normalize(text).split()
        feats = words + [w[i : i + 3] for w in words for i in range(max(1, len(w) - 2))]
        for feat in feats:
            h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(), "little")
            vec[h % self._dim] += 1.0 if (h >> 32) & 1 else -1.0
        norm = float(np.linalg.norm(vec))
        if norm == 0.0:
            vec[0] = 1.0
            return vec
        return vec / norm

    def encode_documents(self, texts: Sequence[str]) -> FloatArray:
        """Shape (len(texts), dim)."""
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts])

    def encode_queries(self, texts: Sequence[str], instruction: str = "") -> FloatArray:
        """Shape (len(texts), dim); the instruction is ignored (it would only add noise)."""
        return self.encode_documents(texts)
