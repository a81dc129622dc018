"""Retrievers as objects: one conformance test for every registered retriever, the registry,
a plugin retriever, and rankings equal to those recorded before the refactor."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from hippo import open_index
from hippo.embed import HashingEmbedder
from hippo.errors import ConfigError
from hippo.retrieval.retrievers import Dense, get_retriever, register, retriever_names
from hippo.testing import make_engine

RECORDED = Path(__file__).parent / "fixtures" / "sample_rankings.json"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_engine(tmp_path_factory.mktemp("retrievers") / "tiny")


@pytest.mark.parametrize("name", retriever_names())
def test_every_retriever_conforms(tiny, name):
    r = get_retriever(name)
    assert get_retriever(r.registry_name) is r and r.registry_name.endswith(".v1")
    queries = ["Who founded Acme Corp?", "Where is Berlin?"]
    batch = tiny.prepare(queries, name)
    assert len(batch) == 2 and (any(batch.entities) if r.names_entities else not any(batch.entities))
    rankings = r.rank(tiny, batch, 3, tiny.config.retrieval)
    assert len(rankings) == 2
    for g in rankings:
        assert 1 <= len(g.passages) <= 3 and len(set(g.passages.tolist())) == len(g.passages)
        assert np.all(np.diff(g.scores) <= 0)  # best first
        assert (g.memory is not None) == r.multi_step
    results = tiny.retrieve_many(queries, k=3, retriever=name)
    assert [x.retriever for x in results] == [name, name]
    assert [x.passage_ids for x in results] == [[tiny.passage_ids[i] for i in g.passages] for g in rankings]
    assert all((x.memory is not None) == r.multi_step for x in results)


def test_unknown_names_list_the_valid_ones(tiny):
    with pytest.raises(ConfigError, match="unknown retriever 'bm25'; valid: hippo, hipporag2, dense, hgmem"):
        tiny.retrieve("x", retriever="bm25")


def test_a_plugin_retriever_is_found_by_name(tiny):
    @dataclass(frozen=True)
    class Reversed(Dense):
        name: str = "reversed-dense"
        registry_name: str = "tests.retriever.reversed.v1"

        def rank(self, ctx, batch, k, config, linked=None, options=None):  # the worst passages first
            out = super().rank(ctx, batch, ctx.ranker.n_passages, config)
            return [dataclasses.replace(g, passages=g.passages[::-1][:k], scores=-g.scores[::-1][:k]) for g in out]

    register(Reversed())
    worst = tiny.retrieve("Who founded Acme Corp?", k=1, retriever="reversed-dense")
    best = tiny.retrieve("Who founded Acme Corp?", k=4, retriever="dense")
    assert worst.passage_ids == best.passage_ids[-1:] and worst.retriever == "reversed-dense"


@pytest.mark.slow
def test_rankings_equal_those_recorded_before_the_registry(tmp_path, sample_dir):
    """graphs/sample with the real embedder: every built-in retriever ranks exactly as hippo did
    at commit 16a81e8 (tests/fixtures/sample_rankings.json)."""
    from hippo.indexer import build_index

    recorded = json.loads(RECORDED.read_text())
    out = tmp_path / "idx"
    build_index(sample_dir / "corpus.json", out, openie=sample_dir / "openie_gpt-3.5-turbo-1106.json")
    engine = open_index(out)
    for name, expected in recorded["rankings"].items():
        got = engine.retrieve_many(recorded["queries"], k=10, retriever=name)
        assert [[h.passage_id for h in r.hits] for r in got] == [[h[0] for h in e] for e in expected], name
        # scores to float32 rounding: a single query's cosines (hgmem ranks one step at a time)
        # come from another, equally exact, product kernel than a batch's (max 1.5e-6 relative)
        assert np.allclose([h.score for r in got for h in r.hits], [h[1] for e in expected for h in e], rtol=1e-5), name


@pytest.mark.parametrize("name", ["hippo", "hipporag2"])
def test_facts_linked_ahead_rank_as_facts_linked_by_the_ranker(tiny, name):
    """A single question's facts are linked on the encoder's helper thread while its entities
    are found (hippo.queries); ranking with them equals ranking with the ranker's own linking."""
    for question in ["Who founded Acme Corp?", "Where is Berlin?", "What did Ada write about engines?"]:
        batch = tiny.prepare([question], name)
        cfg = tiny.config.retrieval
        own = tiny.ranker.link_facts(batch.fact_vectors, cfg.linking_top_k, cfg)
        if get_retriever(name).names_entities:  # NER runs, so the helper thread links meanwhile
            assert batch.linked_facts is not None
        if batch.linked_facts is not None:
            assert [(f.tolist(), s.tolist()) for f, s in batch.linked_facts] == [(f.tolist(), s.tolist()) for f, s in own]
        ahead = tiny.rank_prepared(batch, 4, name)
        after = tiny.rank_prepared(dataclasses.replace(batch, linked_facts=None), 4, name)
        assert [g.passages.tolist() for g in ahead] == [g.passages.tolist() for g in after]
        assert [g.facts.tolist() for g in ahead] == [g.facts.tolist() for g in after] and len(ahead[0].facts) > 0
