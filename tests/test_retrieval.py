import numpy as np
import pytest

from hippo.retrieval.hipporag import entity_seed_weights, minmax, top_k_indices
from hippo.testing import make_engine, tiny_passages


def test_minmax_and_constant_input():
    assert minmax(np.array([1.0, 3.0, 2.0])).tolist() == [0.0, 1.0, 0.5]
    assert minmax(np.array([2.0, 2.0])).tolist() == [1.0, 1.0]
    m = minmax(np.array([[1.0, 5.0], [3.0, 5.0]]), axis=0)
    assert m.tolist() == [[0.0, 1.0], [1.0, 1.0]]


def test_top_k_breaks_ties_by_index():
    s = np.array([0.5, 0.9, 0.5, 0.9, 0.1])
    assert top_k_indices(s, 3).tolist() == [1, 3, 0]
    assert top_k_indices(s, 10).tolist() == [1, 3, 0, 2, 4]
    assert top_k_indices(s, 0).tolist() == []


def test_entity_seed_weights_formula():
    # facts: 0 = (e0, e1), 1 = (e0, e2), 2 = (e3, e3)
    subj = np.array([0, 0, 3])
    obj = np.array([1, 2, 3])
    n_passages_of = np.array([2, 1, 4, 1])
    ents, w = entity_seed_weights(np.array([0, 1, 2]), np.array([1.0, 0.5, 0.8]), subj, obj, n_passages_of, seed_top_k=10)
    got = dict(zip(ents.tolist(), w.tolist()))
    # e0: mean(1.0, 0.5) / 2; e1: 1.0 / 1; e2: 0.5 / 4; e3: mean(0.8, 0.8) / 1
    assert got == pytest.approx({0: 0.375, 1: 1.0, 2: 0.125, 3: 0.8})
    assert ents.tolist() == [1, 3, 0, 2]  # best first
    top2, _ = entity_seed_weights(np.array([0, 1, 2]), np.array([1.0, 0.5, 0.8]), subj, obj, n_passages_of, seed_top_k=2)
    assert top2.tolist() == [1, 3]


def test_graph_ranking_follows_hops(tmp_path):
    from hippo import open_index
    from hippo.embed import HashingEmbedder

    make_engine(tmp_path / "idx")
    # Pure graph (no passage seeds), one linked fact: mass decays with hops from Alice Smith.
    engine = open_index(tmp_path / "idx", {"retrieval.passage_node_weight": 0.0, "retrieval.linking_top_k": 1},
                        embedder=HashingEmbedder(64))
    result = engine.retrieve("Alice Smith", k=4)
    assert result.mode == "ppr"
    titles = [h.title for h in result.hits]
    assert titles[0] == "Alice Smith"
    assert titles[-1] == "Berlin"  # two hops away (alice -> acme corp -> berlin)
    assert [h.rank for h in result.hits] == [0, 1, 2, 3]
    assert all(a.score >= b.score for a, b in zip(result.hits, result.hits[1:]))
    assert len(result.facts) == 1 and result.facts[0].fact.subject == "alice smith"
    assert {s.name for s in result.seeds} <= {"alice smith", "paris", "acme corp"}


def test_result_explains_itself(tmp_path):
    result = make_engine(tmp_path / "idx").retrieve("Who founded Acme Corp?", k=4)
    assert len(result.facts) == 5 and len(result.seeds) == 5
    assert [f.score for f in result.facts] == sorted((f.score for f in result.facts), reverse=True)
    assert result.facts[0].score == 1.0  # min-max normalised over all facts
    assert result.seeds[0].weight >= result.seeds[-1].weight
    assert {"embed", "rank"} <= set(result.timings_ms)


def test_retrieve_many_equals_retrieve(tmp_path):
    engine = make_engine(tmp_path / "idx")
    qs = ["Who founded Acme Corp?", "capital of France", "rockets made in Berlin"]
    many = engine.retrieve_many(qs, k=3)
    for q, r in zip(qs, many):
        one = engine.retrieve(q, k=3)
        assert one.passage_ids == r.passage_ids
        assert [h.score for h in one.hits] == pytest.approx([h.score for h in r.hits], abs=1e-6)


def test_dense_retriever_and_fallback_without_facts(tmp_path):
    engine = make_engine(tmp_path / "idx", triples={})
    r = engine.retrieve("capital of France", k=2)
    assert r.mode == "dense" and r.facts == () and r.seeds == ()
    assert r.hits[0].title == "Paris"
    d = make_engine(tmp_path / "idx2").retrieve("capital of France", k=2, retriever="dense")
    assert d.mode == "dense" and d.hits[0].title == "Paris"


def test_damping_override_changes_scores(tmp_path):
    from hippo import open_index
    from hippo.embed import HashingEmbedder

    make_engine(tmp_path / "idx")
    a = open_index(tmp_path / "idx", embedder=HashingEmbedder(64)).retrieve("Alice Smith", k=4)
    b = open_index(tmp_path / "idx", {"retrieval.damping": 0.85}, embedder=HashingEmbedder(64)).retrieve("Alice Smith", k=4)
    assert [h.score for h in a.hits] != pytest.approx([h.score for h in b.hits])


def test_bad_k_and_retriever(tmp_path):
    from hippo.errors import ConfigError, HippoError

    engine = make_engine(tmp_path / "idx", passages=tiny_passages())
    with pytest.raises(HippoError, match="k must be"):
        engine.retrieve("x", k=0)
    with pytest.raises(ConfigError, match="valid: hippo, hipporag2, dense"):
        engine.retrieve("x", retriever="bm25")


def test_torch_top_facts_equal_full_minmax():
    from hippo.retrieval.scorer import CosineScorer

    rng = np.random.default_rng(3)
    facts = rng.normal(size=(500, 16)).astype(np.float32)
    facts[10] = facts[20]  # an exact tie must break by index
    q = np.stack([facts[10] + 0.01, rng.normal(size=16)]).astype(np.float32)
    scorer = CosineScorer(np.zeros((3, 16), np.float32), facts)
    for b, (idx, scores) in enumerate(scorer.top_facts(q, 5)):
        full = minmax(facts.astype(np.float64) @ q[b].astype(np.float64))
        expected = top_k_indices(full, 5)
        assert idx.tolist() == expected.tolist()
        assert scores == pytest.approx(full[expected], abs=1e-5)
    assert scorer.top_facts(q[:1], 5)[0][0][:2].tolist() == [10, 20]


def test_zero_weight_seeds_are_not_listed():
    subj, obj = np.array([0, 2]), np.array([1, 3])
    ents, w = entity_seed_weights(np.array([0, 1]), np.array([1.0, 0.0]), subj, obj, np.ones(4, np.int64), 5)
    assert ents.tolist() == [0, 1] and w.tolist() == [1.0, 1.0]


@pytest.mark.parametrize("method", ["cg", "push"])
def test_warm_loads_the_first_query_costs_without_asking_the_llm(tmp_path, method):
    from hippo import open_index
    from hippo.embed import HashingEmbedder
    from hippo.llm.scripted import ScriptedLLMClient

    make_engine(tmp_path / "idx")
    overrides = {"retrieval.ppr_method": method, "llm.filter": True}
    cold = open_index(tmp_path / "idx", overrides, embedder=HashingEmbedder(64))
    llm = ScriptedLLMClient(lambda request: '{"fact": []}')
    cold._llm = llm
    assert cold.queries._recognizer is None and cold.solver._push is None and cold.solver._sym is None
    parts = cold.warm()
    assert set(parts) == {"prepare", "rank"} | ({"prefetch"} if method == "push" else set())
    assert all(s >= 0 for s in parts.values())
    assert llm.requests == []  # the filter is on, but warming asks nothing
    assert cold.queries._recognizer is not None  # spaCy's NER is loaded
    assert cold._commit._nearest is not None and cold._commit._nearest._vectors is not None  # the warm query's mention was matched to its nearest entity
    assert (cold.solver._push if method == "push" else cold.solver._sym) is not None
    assert "memory" in cold.warm("hgmem") and cold._commit.view is not None
    # Warming changes no result.
    fresh = open_index(tmp_path / "idx", {"retrieval.ppr_method": method}, embedder=HashingEmbedder(64))
    warmed = cold.with_overrides({"llm.filter": False})
    for q in ["Who founded Acme Corp?", "capital of France"]:
        assert warmed.retrieve(q, k=4).passage_ids == fresh.retrieve(q, k=4).passage_ids
    from hippo.errors import ConfigError

    with pytest.raises(ConfigError, match="valid: hippo"):
        cold.warm("bm25")


def test_small_batches_run_on_one_torch_thread(monkeypatch):
    import threading

    import torch  # a dependency of sentence-transformers

    import hippo.threads as threads

    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "_default", 2)  # a 2-core machine
    try:
        with threads.torch_threads_for(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with threads.torch_threads_for(threads.SERIAL_UP_TO + 1):
            assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), threads.torch_threads_for(threads.SERIAL_UP_TO):
            raise RuntimeError("restored even so")
        assert torch.get_num_threads() == 2

        seen = []

        def stuck_worker():  # a thread that started on one torch thread (inside another's block)
            torch.set_num_threads(1)
            with threads.torch_threads_for(100):
                seen.append(torch.get_num_threads())
            seen.append(torch.get_num_threads())

        worker = threading.Thread(target=stuck_worker)
        worker.start()
        worker.join()
        assert seen == [2, 2]

        monkeypatch.setattr(threads, "_default", 4)  # more cores: small batches keep every thread
        torch.set_num_threads(4)
        with threads.torch_threads_for(1):
            assert torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(before)
