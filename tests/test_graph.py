import numpy as np
import pytest

from hippo.graph.build import CONTEXT, RELATION, SYNONYM, build_graph, synonymy_pairs
from hippo.kb import build_kb
from hippo.testing import TINY_TRIPLES, ScriptedExtractor, tiny_passages


def unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def edges_of(graph, names, n_p):
    label = lambda i: f"P{i}" if i < n_p else names[i - n_p]  # noqa: E731
    return {
        (int(k), label(int(s)), label(int(d))): round(float(w), 5)
        for s, d, w, k in zip(graph.src, graph.dst, graph.weight, graph.kind)
    }


def tiny_kb(extra=None):
    passages = tiny_passages()
    triples = dict(TINY_TRIPLES)
    if extra:
        triples.update(extra)
    ex = ScriptedExtractor(triples).extract(passages)
    return passages, build_kb(passages, ex)


def test_kb_normalises_and_numbers_by_first_appearance():
    _, kb = tiny_kb({"Paris": [("Paris", "capital of", "France"), ("PARIS!", "Capital of", "france"), ("", "x", "y")]})
    assert kb.entity_names == ["alice smith", "paris", "acme corp", "berlin", "rockets", "germany", "france"]
    assert kb.facts[0].as_text("tuple") == "('alice smith', 'born in', 'paris')"
    assert kb.facts[0].as_text() == "alice smith born in paris"
    assert len(kb.facts) == 6  # the shouted duplicate collapses, the empty subject is dropped
    assert kb.dropped_triples == 1
    assert kb.entity_passage_count.tolist() == [1, 2, 2, 2, 1, 1, 1]


def test_exact_edges_reference_and_single_weights():
    passages, kb = tiny_kb({"Berlin": [("Berlin", "capital of", "Germany"), ("Acme Corp", "headquartered in", "Berlin")]})
    n_p, n_e = len(passages), len(kb.entity_names)
    # Vectors: only "berlin" and "germany" are similar (cos 0.9).
    vecs = np.eye(n_e, dtype=np.float32)
    b, g = kb.entity_names.index("berlin"), kb.entity_names.index("germany")
    vecs[g] = unit(0.9 * vecs[b] + np.sqrt(1 - 0.81) * vecs[g])
    eligible = np.ones(n_e, bool)
    ref = build_graph(n_p, n_e, kb.fact_subject, kb.fact_object, kb.fact_passage_count,
                      kb.passage_entity_rows, kb.passage_entity_cols, vecs, eligible, 0.8, 100, "reference")
    got = edges_of(ref, kb.entity_names, n_p)
    expected = {
        (RELATION, "alice smith", "paris"): 2.0,
        (RELATION, "alice smith", "acme corp"): 2.0,
        (RELATION, "acme corp", "berlin"): 4.0,  # stated by two passages, both orientations
        (RELATION, "acme corp", "rockets"): 2.0,
        (RELATION, "berlin", "germany"): 0.0,  # both directions overwritten by the synonym
        (RELATION, "paris", "france"): 2.0,
        (CONTEXT, "P0", "alice smith"): 1.0, (CONTEXT, "P0", "paris"): 1.0, (CONTEXT, "P0", "acme corp"): 1.0,
        (CONTEXT, "P1", "acme corp"): 1.0, (CONTEXT, "P1", "berlin"): 1.0, (CONTEXT, "P1", "rockets"): 1.0,
        (CONTEXT, "P2", "berlin"): 1.0, (CONTEXT, "P2", "germany"): 1.0, (CONTEXT, "P2", "acme corp"): 1.0,
        (CONTEXT, "P3", "paris"): 1.0, (CONTEXT, "P3", "france"): 1.0,
        (SYNONYM, "berlin", "germany"): 1.8,  # cos 0.9, accepted from both ends
    }
    assert got == {k: v for k, v in expected.items() if v > 0}
    single = build_graph(n_p, n_e, kb.fact_subject, kb.fact_object, kb.fact_passage_count,
                         kb.passage_entity_rows, kb.passage_entity_cols, vecs, eligible, 0.8, 100, "single")
    halved = {k: (v / 2 if k[0] != CONTEXT else v) for k, v in expected.items()}
    halved[(RELATION, "berlin", "germany")] = 1.0  # single mode sums relation and synonym
    assert edges_of(single, kb.entity_names, n_p) == halved
    assert ref.edge_counts() == {"relation": 5, "context": 11, "synonym": 1}
    # single mode: the adjacency sums the parallel relation and synonym edges.
    adj = single.adjacency()
    assert adj[n_p + b, n_p + g] == pytest.approx(1.0 + 0.9)
    assert (adj != adj.T).nnz == 0


def test_reference_overwrite_in_one_direction_only():
    # A synonym accepted by one endpoint only overwrites that direction's fact count.
    passages, kb = tiny_kb()
    n_p, n_e = len(passages), len(kb.entity_names)
    vecs = np.eye(n_e, dtype=np.float32)
    b, g = kb.entity_names.index("berlin"), kb.entity_names.index("germany")
    vecs[g] = unit(0.9 * vecs[b] + np.sqrt(1 - 0.81) * vecs[g])
    eligible = np.ones(n_e, bool)
    eligible[g] = False  # "germany" looks for no synonyms of its own
    ref = build_graph(n_p, n_e, kb.fact_subject, kb.fact_object, kb.fact_passage_count,
                      kb.passage_entity_rows, kb.passage_entity_cols, vecs, eligible, 0.8, 101, "reference")
    got = edges_of(ref, kb.entity_names, n_p)
    assert got[(RELATION, "berlin", "germany")] == 1.0 and got[(SYNONYM, "berlin", "germany")] == 0.9


def brute_force_synonyms(vecs, eligible, thr, cap):
    sims = vecs @ vecs.T
    n = len(vecs)
    accepted = {}
    for i in range(n):
        if not eligible[i]:
            continue
        cands = [(float(sims[i, j]), j) for j in range(n) if j != i and sims[i, j] >= thr]
        cands.sort(key=lambda x: (-x[0], x[1]))
        for s, j in cands[:cap]:
            key = (min(i, j), max(i, j))
            accepted[key] = accepted.get(key, 0) + 1
    return accepted


@pytest.mark.parametrize("cap", [1, 3, 100])
def test_synonymy_pairs_equal_brute_force(cap):
    rng = np.random.default_rng(cap)
    base = unit(rng.normal(size=(8, 16)))
    vecs = unit(np.repeat(base, 6, axis=0) + 0.1 * rng.normal(size=(48, 16)))
    eligible = rng.random(48) > 0.2
    i, j, cos, acc = synonymy_pairs(vecs, eligible, 0.8, cap, block=7)
    got = {(int(a), int(b)): int(c) for a, b, c in zip(i, j, acc)}
    assert got == brute_force_synonyms(vecs, eligible, 0.8, cap)
    assert len(got) > 0
    assert np.allclose(cos, np.sum(vecs[i] * vecs[j], axis=1), atol=1e-6)
    assert np.all(i < j)


def test_short_entities_get_no_synonyms_of_their_own():
    vecs = unit([[1, 0], [1, 0.01], [0, 1]])
    i, j, _, acc = synonymy_pairs(vecs, np.array([False, False, True]), 0.8, 100)
    assert len(i) == 0
    i, j, _, acc = synonymy_pairs(vecs, np.array([True, False, True]), 0.8, 100)
    assert (i.tolist(), j.tolist(), acc.tolist()) == ([0], [1], [1])
