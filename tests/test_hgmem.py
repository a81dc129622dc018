"""Hypergraph memory: operation semantics, validation, serialisation, and the multi-step loop."""

import numpy as np
import pytest

from hippo.hgmem import GraphView, HGMemError, HypergraphMemory, OfflineReasoner, Plan, run
from hippo.testing import make_engine


def test_insert_appends_update_keeps_index_merge_is_union():
    mem = HypergraphMemory(n_entities=10)
    assert mem.insert({1, 2}, "a", passages={0}) == 0
    assert mem.insert({3}, "b", facts={7}) == 1
    assert mem.insert({4, 5}, "c") == 2
    mem.update(1, {3, 6}, "b2", passages={4})
    assert mem.points[1].vertices == {3, 6} and mem.points[1].description == "b2"
    assert mem.points[1].passages == {4} and mem.points[1].facts == {7}  # provenance accumulates
    new = mem.merge([[0, 2]], ["a+c"])
    assert new == [1] and len(mem.points) == 2
    assert mem.points[0].description == "b2"  # the unmerged point moved up
    assert mem.points[1].vertices == {1, 2, 4, 5} and mem.points[1].passages == {0}
    mem.remove(0)
    assert [p.description for p in mem.points] == ["a+c"]


@pytest.mark.parametrize(
    ("op", "message"),
    [
        (lambda m: m.insert(set(), "x"), "at least one vertex"),
        (lambda m: m.insert({10}, "x"), "neither index entities"),
        (lambda m: m.insert({-1}, "x"), "neither index entities"),
        (lambda m: m.update(5, {1}), "no memory point 5"),
        (lambda m: m.merge([[0, 1], [1, 2]]), "more than one group"),
        (lambda m: m.merge([[0, 0]]), "two distinct points"),
        (lambda m: m.merge([[0, 9]]), "no memory point 9"),
        (lambda m: m.merge([[0, 1]], ["one", "two"]), "2 descriptions"),
        (lambda m: m.remove(-1), "no memory point -1"),
    ],
)
def test_bad_operations_fail_and_change_nothing(op, message):
    mem = HypergraphMemory(n_entities=10)
    for i in range(3):
        mem.insert({i}, str(i))
    before = mem.to_json()
    with pytest.raises(HGMemError, match=message):
        op(mem)
    assert mem.to_json() == before


def test_provisional_vertices_and_json_round_trip():
    mem = HypergraphMemory(n_entities=3)
    v = mem.add_provisional("Some  New Thing")
    assert v == -1 and mem.add_provisional("Some New Thing") == -1 and mem.add_provisional("other") == -2
    mem.insert({0, v}, "uses a provisional vertex", passages={2}, facts={1}, step=2)
    again = HypergraphMemory.from_json(mem.to_json())
    assert again == mem
    with pytest.raises(HGMemError, match="malformed memory JSON"):
        HypergraphMemory.from_json("{")
    with pytest.raises(HGMemError, match="not a serialised"):
        HypergraphMemory.from_json('{"points": []}')


def _view(engine):
    indptr, indices = engine.snapshot.passage_facts
    return GraphView(
        engine.ranker, engine.config.retrieval, indptr, indices,
        engine.entity_names, lambda f: engine.facts[f].as_text(), engine.solver.adj,
    )


class ScriptedReasoner:
    """Replays plans; records what the loop showed it."""

    def __init__(self, plans):
        self.plans = list(plans)
        self.seen = []

    def evolve(self, question, memory, evidence, step):
        self.seen.append((step, evidence.passages))
        memory.insert({evidence.seeds[0]} if evidence.seeds else {0}, f"step {step}", evidence.passages, step=step)
        return [f"insert step {step}"]

    def plan(self, question, memory, hints, step):
        return self.plans.pop(0)


def test_loop_obeys_the_plan_and_the_step_budget(tmp_path):
    engine = make_engine(tmp_path / "idx")
    view = _view(engine)
    batch = engine.prepare(["Where is the company Alice Smith founded based?"])
    acme = engine.entity_names.index("acme corp")
    reasoner = ScriptedReasoner([Plan(False, (acme,)), Plan(True, reason="enough")])
    result = run(view, batch.queries[0], batch.fact_vectors[0], batch.passage_vectors[0], batch.entities[0], reasoner, steps=5)
    assert [t.step for t in result.trace] == [1, 2] and [t.mode for t in result.trace] == ["global", "local"]
    assert result.trace[1].seeds == (acme,) and result.trace[-1].plan.reason == "enough"
    assert len(result.memory.points) == 2
    budget = ScriptedReasoner([Plan(False, (acme,))] * 5)
    result = run(view, batch.queries[0], batch.fact_vectors[0], batch.passage_vectors[0], batch.entities[0], budget, steps=2)
    assert len(result.trace) == 2 and result.trace[-1].plan.reason == "step budget spent"


def test_local_investigation_stays_in_the_neighbourhood(tmp_path):
    engine = make_engine(tmp_path / "idx")
    view = _view(engine)
    batch = engine.prepare(["Berlin"])
    berlin = engine.entity_names.index("berlin")
    reasoner = ScriptedReasoner([Plan(False, (berlin,)), Plan(True)])
    result = run(view, "Berlin", batch.fact_vectors[0], batch.passage_vectors[0], batch.entities[0], reasoner, steps=2, hops=1)
    allowed = set(view.k_hop([berlin], 1).tolist())
    assert result.trace[1].passages and set(result.trace[1].passages) <= allowed
    assert set(result.trace[0].passages) - allowed  # the global step was not restricted


def test_offline_reasoner_is_deterministic_and_follows_bridges(tmp_path):
    engine = make_engine(tmp_path / "idx")
    view = _view(engine)
    q = "Where is the headquarters of the company that Alice Smith founded?"
    batch = engine.prepare([q])
    outs = []
    for _ in range(2):
        reasoner = OfflineReasoner(view, batch.entities[0])
        r = run(view, q, batch.fact_vectors[0], batch.passage_vectors[0], batch.entities[0], reasoner, steps=3)
        outs.append((r.passages.tolist(), r.memory.to_json(), [t.plan for t in r.trace]))
    assert outs[0] == outs[1]
    trace = [t for t in r.trace]
    assert trace[0].operations and r.memory.points
    named = set(batch.entities[0])
    assert all(set(t.seeds).isdisjoint(named) for t in trace[1:])  # bridges are never the question's own names


def test_engine_hgmem_retriever_explains_and_keeps_a_given_memory(tmp_path):
    from hippo import open_index
    from hippo.embed import HashingEmbedder

    make_engine(tmp_path / "idx")
    engine = open_index(tmp_path / "idx", {"retrieval.query_ner": False}, embedder=HashingEmbedder(64))
    q = "Where is the headquarters of the company that Alice Smith founded?"
    mem = engine.memory()
    result = engine.retrieve(q, k=3, memory=mem, steps=2)
    assert result.retriever == "hgmem" and result.mode == "hgmem" and len(result.hits) == 3
    assert mem.points, "the caller's memory object is the one filled"
    assert [s["step"] for s in result.memory["steps"]][0] == 1
    assert all(isinstance(v, str) for p in result.memory["points"] for v in p["vertices"])  # names, not indices
    again = engine.retrieve_many([q], k=3, retriever="hgmem", steps=2)[0]
    assert [h.passage_id for h in again.hits] == [h.passage_id for h in result.hits]
    one = engine.retrieve(q, k=3, steps=1)
    hippo = engine.retrieve(q, k=3)
    assert [h.passage_id for h in one.hits] == [h.passage_id for h in hippo.hits]  # one step = the hippo ranking
    with pytest.raises(Exception, match="steps must be >= 1"):
        engine.retrieve(q, steps=0)


def test_cli_query_memory_explain_and_eval(tmp_path, capsys):
    import json

    from hippo.cli.main import main

    make_engine(tmp_path / "idx")
    q = "Where is the headquarters of the company that Alice Smith founded?"
    code = main(["query", str(tmp_path / "idx"), q, "--memory", "hgmem", "--steps", "2", "--explain", "-k", "3",
                 "--set", "retrieval.query_ner=false"])
    out = capsys.readouterr().out
    assert code == 0 and "hypergraph memory" in out and "step 1 (global)" in out and "memory points:" in out
    questions = tmp_path / "q.json"
    questions.write_text(json.dumps([{"id": "2hop__1", "question": q, "paragraphs": [
        {"title": "Acme Corp", "paragraph_text": "Acme Corp is headquartered in Berlin. Acme Corp makes rockets.", "is_supporting": True}]}]))
    code = main(["eval", str(tmp_path / "idx"), "--questions", str(questions), "--retriever", "hgmem", "--json",
                 "--set", "retrieval.query_ner=false"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["retriever"] == "hgmem" and report["gold_missing"] == 0
