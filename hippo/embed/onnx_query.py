"""Short queries on ONNX Runtime: the sentence-transformers encoder without its per-call cost.

A query is ~20 tokens; MiniLM-L6 needs ~0.4 GFLOP for it, a few milliseconds on one core.
Through sentence-transformers most of a call was framework cost (module dispatch, feature
dicts, the tokenizer wrapper). :class:`OnnxQueryEncoder` runs the same network as one ONNX
graph (transformer, mask-weighted mean pooling, L2 normalisation) on one ONNX Runtime thread,
fed by the Rust ``tokenizers`` tokenizer of the model folder: 1.9-2.8x faster per question on
the 2-core machine (``benchmarks/query_encoders.py``, ``docs/query-path.md``).

The graph is exported from the local model folder with ``torch.onnx`` once per machine and
model, checked against torch on probe texts, and cached under ``$HIPPO_CACHE_DIR/onnx`` (else
``$XDG_CACHE_HOME/hippo/onnx`` or ``~/.cache/hippo/onnx``); it is keyed by the model files'
names, sizes and modification times, so a changed model exports anew. Only folders laid out as
Transformer + mean Pooling (+ Normalize) qualify (:func:`lean_layout`), which covers
all-MiniLM-L6-v2; anything else keeps the sentence-transformers path.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hippo.errors import HippoError
from hippo.protocols import FloatArray

log = logging.getLogger(__name__)

EXPORT_VERSION = 1
"""Changes when the exported graph changes (its inputs, outputs or pooling): old files are
ignored."""
OPSET = 17
PROBES = (
    "Where was the founder of the Halvorsen Mill Company born?",
    "Aschenbrodel",
    "Who is the spouse of the performer of Green?",
)
"""Texts the export is checked on, alone and as one padded batch."""
MIN_PROBE_COSINE = 0.99999
_MODULE_KINDS = ("Transformer", "Pooling", "Normalize")


def lean_layout(model_dir: Path) -> int | None:
    """The embedding dimension if ``model_dir`` is a sentence-transformers folder of a
    Transformer, a mean Pooling and optionally a Normalize module with a ``tokenizer.json``
    (what :class:`OnnxQueryEncoder` reproduces), else None."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
        kinds = [str(m["type"]).rsplit(".", 1)[-1] for m in modules]
        if kinds not in (list(_MODULE_KINDS), list(_MODULE_KINDS[:2])) or not (model_dir / "tokenizer.json").exists():
            return None
        pooling = json.loads((model_dir / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v is True}
    if modes != {"pooling_mode_mean_tokens"} and pooling.get("pooling_mode") != "mean":
        return None
    dim = pooling.get("word_embedding_dimension", pooling.get("embedding_dimension"))
    return int(dim) if isinstance(dim, int) else None


def cache_dir() -> Path:
    """Where exported graphs are kept: ``$HIPPO_CACHE_DIR/onnx``, else the XDG or home cache."""
    root = os.environ.get("HIPPO_CACHE_DIR") or str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hippo")
    return Path(root) / "onnx"


def cache_path(model_dir: Path) -> Path:
    """The cached graph of ``model_dir``: named by the folder and a hash of its files' names,
    sizes and modification times (a re-installed or edited model exports anew)."""
    digest = hashlib.sha256(f"v{EXPORT_VERSION} opset{OPSET} {model_dir.resolve()}".encode())
    for f in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        st = f.stat()
        digest.update(f"\n{f.relative_to(model_dir)} {st.st_size} {st.st_mtime_ns}".encode())
    name = f"{model_dir.parent.name}-{model_dir.name}" if model_dir.name == "model" else model_dir.name
    return cache_dir() / f"{name}-{digest.hexdigest()[:16]}.onnx"


def export_onnx(model_dir: Path, out: Path) -> None:
    """Export the model folder's transformer with mean pooling and normalisation to ``out``
    (atomically), after checking it against torch on :data:`PROBES`. Needs ``torch``,
    ``transformers``, ``onnx`` and ``onnxruntime``."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    model = AutoModel.from_pretrained(str(model_dir)).eval()
    graph = _pooled(model).eval()
    encoder = _tokenizer(model_dir, 512)
    ids, mask = _batch(encoder, list(PROBES))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with torch.inference_mode():
            expected = graph(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on the attention code: the probes check the result
            torch.onnx.export(
                graph, (torch.from_numpy(ids), torch.from_numpy(mask)), str(tmp),
                input_names=["input_ids", "attention_mask"], output_names=["sentence_embedding"],
                dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                              "sentence_embedding": {0: "batch"}},
                opset_version=OPSET, dynamo=False,
            )
        check = OnnxQueryEncoder(model_dir, 512, tmp)
        padded, alone = check.encode(list(PROBES)), np.concatenate([check.encode([p]) for p in PROBES])
        worst = float(min((padded * expected).sum(axis=1).min(), (alone * expected).sum(axis=1).min()))
        if worst < MIN_PROBE_COSINE:
            raise HippoError(f"the ONNX export of {model_dir} differs from torch (cosine {worst:.6f})")
        tmp.chmod(0o644)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _pooled(model: Any) -> Any:
    """``model`` wrapped as a torch module from token ids and mask to sentence vectors."""
    import torch

    class Pooled(torch.nn.Module):
        """Transformer, mask-weighted mean of the token vectors, L2 normalisation (as the
        Pooling and Normalize modules of sentence-transformers)."""

        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            tokens = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    return Pooled(model)


def _tokenizer(model_dir: Path, max_seq_length: int) -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_seq_length)
    return tok


def _batch(tok: Any, texts: list[str]) -> tuple[Any, Any]:
    """Token ids and attention mask (B, T), padded with 0 to the longest text."""
    encoded = tok.encode_batch(texts) if len(texts) > 1 else [tok.encode(texts[0])]
    width = max(len(e.ids) for e in encoded)
    ids = np.zeros((len(encoded), width), dtype=np.int64)
    mask = np.zeros((len(encoded), width), dtype=np.int64)
    for row, e in enumerate(encoded):
        ids[row, : len(e.ids)] = e.ids
        mask[row, : len(e.ids)] = 1
    return ids, mask


class OnnxQueryEncoder:
    """A few short texts at a time on one ONNX Runtime thread: (B, dim) L2-normalised float32
    rows equal (cosine >= 0.9999) to sentence-transformers' ``encode`` of the same folder.

    ``graph`` is the exported file (:func:`export_onnx`). Thread-safe: ONNX Runtime sessions
    and the Rust tokenizer serve concurrent calls.
    """

    def __init__(self, model_dir: Path, max_seq_length: int, graph: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        self._tok = _tokenizer(model_dir, max_seq_length)

    def encode(self, texts: Sequence[str]) -> FloatArray:
        """Shape (len(texts), dim), as one batch padded to the longest text (a question and its
        NER mentions measured as fast padded as one by one)."""
        texts = list(texts)
        if not texts:
            raise ValueError("encode needs at least one text")
        return self._run(*_batch(self._tok, texts))

    def _run(self, ids: Any, mask: Any) -> FloatArray:
        out = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return np.asarray(out, dtype=np.float32)


_ENCODERS: dict[tuple[str, int], OnnxQueryEncoder | None] = {}
"""Query encoders made in this process, by (model folder, max length); None: not possible."""
_MAKING = threading.Lock()


def query_encoder(model_dir: Path, max_seq_length: int) -> OnnxQueryEncoder | None:
    """The ONNX query encoder of ``model_dir``, exporting its graph on first use on this
    machine; None (logged once) when the folder is not a lean layout, ``onnxruntime`` is not
    installed, or the export fails or differs from torch: callers then use
    sentence-transformers."""
    key = (str(model_dir), max_seq_length)
    if key in _ENCODERS:
        return _ENCODERS[key]
    with _MAKING:  # one export and one session, however many threads ask first
        if key not in _ENCODERS:
            _ENCODERS[key] = _make(model_dir, max_seq_length)
        return _ENCODERS[key]


def _make(model_dir: Path, max_seq_length: int) -> OnnxQueryEncoder | None:
    encoder: OnnxQueryEncoder | None = None
    try:
        if lean_layout(model_dir) is None:
            log.info("%s is not a Transformer + mean Pooling folder; queries use sentence-transformers", model_dir)
        else:
            import onnxruntime  # noqa: F401 - a missing runtime is logged below

            graph = cache_path(model_dir)
            if graph.exists():
                try:
                    encoder = OnnxQueryEncoder(model_dir, max_seq_length, graph)
                except Exception as exc:  # noqa: BLE001 - an unreadable cached file is exported again
                    log.warning("cannot load %s (%s); exporting it again", graph, exc)
            if encoder is None:
                log.info("exporting %s to ONNX for fast query encoding (once per machine): %s", model_dir, graph)
                export_onnx(model_dir, graph)
                encoder = OnnxQueryEncoder(model_dir, max_seq_length, graph)
    except Exception as exc:  # noqa: BLE001 - any failure keeps the (slower) sentence-transformers path
        log.warning("fast query encoding is off (%s: %s); queries use sentence-transformers", type(exc).__name__, exc)
        encoder = None
    return encoder
