"""The ONNX query encoder gives sentence-transformers' vectors (issue 22)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from hippo.embed import onnx_query
from hippo.embed.onnx_query import cache_path, lean_layout, query_encoder
from hippo.embed.st import SentenceTransformerEmbedder

QUESTIONS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "musique100" / "questions.json"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hippo-cache")


@pytest.fixture()
def fresh(cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Exports go to a cache of this module; no encoder made by another test is reused."""
    monkeypatch.setenv("HIPPO_CACHE_DIR", str(cache))
    monkeypatch.setattr(onnx_query, "_ENCODERS", {})
    return cache


def test_a_broken_cached_graph_is_exported_again(fresh: Path, caplog: pytest.LogCaptureFixture) -> None:
    emb = SentenceTransformerEmbedder()
    graph = cache_path(emb._path)
    assert graph.parent == fresh / "onnx"
    graph.parent.mkdir(parents=True, exist_ok=True)
    graph.write_bytes(b"not an onnx graph")
    with caplog.at_level(logging.WARNING, logger="hippo.embed.onnx_query"):
        encoder = query_encoder(emb._path, emb.max_seq_length)
    assert encoder is not None
    assert "exporting it again" in caplog.text
    assert graph.stat().st_size > 10_000_000  # the real export replaced the broken file
    assert not list(graph.parent.glob(".*.tmp"))  # no temporary file left behind


def test_query_vectors_match_sentence_transformers(fresh: Path) -> None:
    questions = [q["question"] for q in json.loads(QUESTIONS.read_text())]
    assert len(questions) == 100
    emb = SentenceTransformerEmbedder()
    assert query_encoder(emb._path, emb.max_seq_length) is not None  # the fast path is the one tested
    fast = np.concatenate([emb.encode_queries([q]) for q in questions])
    reference = emb.encode_documents(questions)  # sentence-transformers' encode, as at index time
    assert fast.shape == reference.shape == (100, emb.dim) and fast.dtype == np.float32
    cosine = (fast * reference).sum(axis=1)
    assert cosine.min() >= 0.9999
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    # A question with its NER mentions (different lengths, as Engine.prepare encodes them) and an instruction.
    mixed = [questions[0], "Aschenbrodel", "the Halvorsen Mill Company", questions[1]]
    assert (emb.encode_queries(mixed) * emb.encode_documents(mixed)).sum(axis=1).min() >= 0.9999
    prefixed = emb.encode_queries(questions[:2], "query: ")
    assert (prefixed * emb.encode_documents([f"query: {q}" for q in questions[:2]])).sum(axis=1).min() >= 0.9999


def test_only_lean_folders_take_the_fast_path(tmp_path: Path, fresh: Path) -> None:
    emb = SentenceTransformerEmbedder()
    assert lean_layout(emb._path) == 384 == emb.dim
    dense = tmp_path / "with-dense"
    dense.mkdir()
    modules = json.loads((emb._path / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (dense / "modules.json").write_text(json.dumps(modules))
    (dense / "tokenizer.json").write_text("{}")
    (dense / "1_Pooling").mkdir()
    (dense / "1_Pooling" / "config.json").write_text((emb._path / "1_Pooling" / "config.json").read_text())
    assert lean_layout(dense) is None
    assert query_encoder(dense, 256) is None  # callers keep sentence-transformers
    cls = json.loads((emb._path / "1_Pooling" / "config.json").read_text()) | {"pooling_mode_mean_tokens": False,
                                                                               "pooling_mode_cls_token": True}
    modules.pop(2)
    (dense / "modules.json").write_text(json.dumps(modules))
    (dense / "1_Pooling" / "config.json").write_text(json.dumps(cls))
    assert lean_layout(dense) is None


def test_cache_key_follows_the_model_files(tmp_path: Path, fresh: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"one")
    first = cache_path(folder)
    (folder / "model.safetensors").write_bytes(b"other weights")
    assert cache_path(folder) != first
    assert cache_path(folder).parent == fresh / "onnx"
