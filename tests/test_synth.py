"""The synthetic corpus generator of benchmarks/synth.py on a small corpus."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("synth", REPO / "benchmarks" / "synth.py")
assert _spec is not None and _spec.loader is not None
synth = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synth)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("synth")
    return out, synth.generate(2000, out, seed=3, dim=128)


def strings(folder: Path, name: str) -> list[str]:
    data = (folder / f"{name}.bin").read_bytes()
    off = np.load(folder / f"{name}.off.npy")
    return [data[a:b].decode() for a, b in zip(off[:-1], off[1:])]


def test_shapes_csr_and_names(corpus):
    out, meta = corpus
    p, e, f = meta["passages"], meta["entities"], meta["facts"]
    s, o = np.load(out / "fact_subject.npy"), np.load(out / "fact_object.npy")
    rel = np.load(out / "fact_relation.npy")
    indptr, idx = np.load(out / "passage_fact_indptr.npy"), np.load(out / "passage_fact_indices.npy")
    assert s.shape == o.shape == rel.shape == (f,) and s.dtype == np.int64 and rel.dtype == np.int32
    assert 0 <= min(s.min(), o.min()) and max(s.max(), o.max()) < e
    assert rel.max() < len(json.loads((out / "relations.json").read_text()))
    assert (s == o).mean() < 0.01
    assert indptr.shape == (p + 1,) and indptr[0] == 0 and indptr[-1] == len(idx) and (np.diff(indptr) >= 0).all()
    assert idx.dtype == np.int64 and 0 <= idx.min() and idx.max() < f
    rows = np.repeat(np.arange(p), np.diff(indptr))
    assert len(np.unique(rows * f + idx)) == len(idx)  # a passage lists a fact once
    assert set(np.unique(idx)) == set(range(f))  # every fact is stated somewhere
    assert set(np.concatenate([s, o]).tolist()) == set(range(e))  # every entity is in a fact
    assert 0 < (np.bincount(idx) > 1).mean() < 0.05  # a few facts are shared
    names = strings(out, "entity_names")
    assert len(names) == e and len({n.lower() for n in names}) == e
    assert all(n[0].isupper() and " " in n for n in names[:50])
    texts, titles = strings(out, "passage_texts"), strings(out, "passage_titles")
    assert len(texts) == len(titles) == p
    first = int(idx[indptr[0]])
    assert texts[0].startswith(f"{names[s[first]]} ") and texts[0].endswith(".")


def test_vectors_are_unit_and_queries_find_their_fact(corpus):
    out, meta = corpus
    rows = {"entity": meta["entities"], "fact": meta["facts"], "passage": meta["passages"]}
    vec = {k: np.load(out / f"{k}_vectors.npy").astype(np.float32) for k in rows}
    for k, n in rows.items():
        assert vec[k].shape == (n, 128) and np.load(out / f"{k}_vectors.npy").dtype == np.float16
        assert np.allclose(np.linalg.norm(vec[k], axis=1), 1, atol=2e-3)
    queries = np.load(out / "queries.npy").astype(np.float32)
    info = json.loads((out / "queries.json").read_text())
    assert queries.shape == (1000, 128) and len(info) == 1000
    target = np.array([q["fact"] for q in info])
    cos = np.einsum("qd,qd->q", queries, vec["fact"][target])
    assert 0.68 < cos.min() and cos.max() < 0.82
    assert ((queries @ vec["fact"].T).argmax(axis=1) == target).mean() > 0.9
    # A query also lands near its passage: closer than to a random one.
    passage = np.array([q["passages"][0] for q in info])
    assert np.einsum("qd,qd->q", queries, vec["passage"][passage]).mean() > 0.15


def test_planted_synonyms_pass_the_threshold(corpus):
    out, meta = corpus
    ent = np.load(out / "entity_vectors.npy")
    syn = synth.synonymy_stats(ent, sample=2000)  # exact neighbours of 2,000 random entities
    # The MuSiQue index has about 30 % of entities with a synonym at cosine >= 0.8.
    assert 0.2 < syn["fraction_with_synonym"] < 0.4
    assert syn["cosine_quantiles"][0] >= 0.8
    pairs = syn["mean_synonyms"] * meta["entities"] / 2
    assert 0.75 < pairs / meta["model"]["planted_synonym_pairs"] < 1.1


def test_same_seed_same_corpus(tmp_path):
    a, b, c = (synth.generate(300, tmp_path / name, seed=seed, dim=32) for name, seed in (("a", 1), ("b", 1), ("c", 2)))
    assert a["entities"] == b["entities"]
    for name in ("passage_fact_indices.npy", "entity_names.bin", "passage_texts.bin", "fact_vectors.npy", "queries.npy"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "fact_vectors.npy").read_bytes() != (tmp_path / "c" / "fact_vectors.npy").read_bytes()
