"""HGMem's LLM reasoner: strict parsers on golden strings, the loop driven by scripted replies
from the local fake OpenAI-compatible server, fallbacks, subqueries, and the CLI end to end."""

from __future__ import annotations

import json
import re

import pytest
from fake_openai import ReplayServer

from hippo.cli.main import main
from hippo.embed.hashing import HashingEmbedder
from hippo.engine import open_index
from hippo.hgmem import LLMReasoner, Plan, run
from hippo.hgmem.llm_reasoner import Concern, Judgement, MergeGroup, PointOp, parse_evolve, parse_merge, parse_plan
from hippo.hgmem.prompts import EVOLVE_SYSTEM, MERGE_SYSTEM, PLAN_SYSTEM
from hippo.llm.base import ParseError
from hippo.llm.scripted import ScriptedLLMClient
from hippo.testing import make_engine

pytestmark = pytest.mark.llm

QUESTION = "Where is the headquarters of the company that Alice Smith founded?"
SUBQUERY = "Where is Acme Corp headquartered?"
NAMES = {"alice smith": 0, "acme corp": 1, "berlin": 2}


@pytest.fixture(autouse=True)
def _no_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "idx"
    make_engine(path)
    return path


# ----------------------------------------------------------------------------- parsers (golden strings)

GOOD_EVOLVE = (
    '{"operations": ['
    '{"op": "update", "point": 0, "entities": ["Acme Corp"], "description": "Acme  Corp makes rockets", "facts": [2]}, '
    '{"op": "insert", "entities": ["alice smith", "ACME CORP."], "new_entities": ["rocket engines"], '
    '"description": "Alice Smith founded Acme Corp", "facts": [1, 1]}]}'
)
EXPECTED_EVOLVE = [
    PointOp("update", 0, (1,), (), "Acme Corp makes rockets", (1,)),
    PointOp("insert", None, (0, 1), ("rocket engines",), "Alice Smith founded Acme Corp", (0,)),
]


def test_parse_evolve_good_and_fenced():
    assert parse_evolve(GOOD_EVOLVE, NAMES, n_points=1, n_facts=2) == EXPECTED_EVOLVE
    fenced = f"Here is the update:\n```json\n{GOOD_EVOLVE}\n```\nHope this helps."
    assert parse_evolve(fenced, NAMES, n_points=1, n_facts=2) == EXPECTED_EVOLVE
    assert parse_evolve('{"operations": []}', NAMES, n_points=0, n_facts=0) == []


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("I would remember that Alice founded Acme.", "no JSON object with 'operations'"),
        ('{"operations": [{"op": "insert", "entities": ["alice smith"', "no JSON object with 'operations'"),
        ('{"operations": [{"op": "update", "point": 3, "entities": ["berlin"], "description": "x"}]}', "no memory point 3 \\(valid: 0..0\\)"),
        ('{"operations": [{"op": "update", "point": true, "entities": ["berlin"], "description": "x"}]}', "whole numbers"),
        ('{"operations": [{"op": "insert", "entities": ["Bob Jones"], "description": "x"}]}', "unknown entity 'Bob Jones'"),
        ('{"operations": [{"op": "insert", "entities": ["berlin"], "description": "x", "facts": [3]}]}', "no fact 3 \\(valid: 1..2\\)"),
        ('{"operations": [{"op": "insert", "entities": ["berlin"], "description": "x", "facts": [0]}]}', "no fact 0"),
        ('{"operations": [{"op": "delete", "point": 0}]}', "unknown op 'delete' \\(valid: insert, update\\)"),
        ('{"operations": [{"op": "insert", "entities": [], "description": "x"}]}', "at least one entity"),
        ('{"operations": [{"op": "insert", "entities": ["berlin"], "description": " "}]}', "'description' must be a non-empty string"),
        ('{"operations": [{"op": "update", "point": 0, "entities": ["berlin"], "description": "a"}, '
         '{"op": "update", "point": 0, "entities": ["berlin"], "description": "b"}]}', "updated twice"),
        ('{"operations": {"op": "insert"}}', "not a list"),
    ],
)
def test_parse_evolve_rejects(reply, message):
    with pytest.raises(ParseError, match=message):
        parse_evolve(reply, NAMES, n_points=1, n_facts=2)


def test_a_reply_cut_at_the_length_limit_fails_without_a_retry():
    with pytest.raises(ParseError, match="length limit") as info:
        parse_evolve(GOOD_EVOLVE, NAMES, n_points=1, n_facts=2, truncated=True)
    assert info.value.retry is False
    with pytest.raises(ParseError, match="length limit"):
        parse_plan('{"sufficient": true}', NAMES, n_points=0, truncated=True)


def test_parse_merge():
    assert parse_merge('```\n{"merge": [{"points": [2, 0], "description": "chain"}]}\n```', n_points=3) == [MergeGroup((2, 0), "chain")]
    assert parse_merge('{"merge": []}', n_points=3) == []
    for reply, message in [
        ('{"merge": [{"points": [0, 1], "description": "a"}, {"points": [1, 2], "description": "b"}]}', "more than one group"),
        ('{"merge": [{"points": [1, 1], "description": "a"}]}', "at least two distinct points"),
        ('{"merge": [{"points": [0, 5], "description": "a"}]}', "no memory point 5 \\(valid: 0..2\\)"),
        ('{"merge": [{"points": [0, 1]}]}', "'description' must be a non-empty string"),
        ("merge 0 and 1", "no JSON object with 'merge'"),
    ]:
        with pytest.raises(ParseError, match=message):
            parse_merge(reply, n_points=3)


def test_parse_plan():
    assert parse_plan('{"sufficient": true, "concerns": []}', NAMES, n_points=2) == Judgement(True)
    reply = json.dumps({"sufficient": False, "concerns": [
        {"concern": "where is acme based", "points": [1], "subquery": SUBQUERY, "entities": ["Acme Corp"]},
        {"concern": "founding year", "points": [], "subquery": "When was Acme Corp founded?", "entities": []},
        {"concern": "dropped", "points": [], "subquery": "a third", "entities": []},
    ]})
    assert parse_plan(reply, NAMES, n_points=2, max_concerns=2) == Judgement(False, (
        Concern("where is acme based", (1,), SUBQUERY, (1,)), Concern("founding year", (), "When was Acme Corp founded?", ()),
    ))
    for bad, message in [
        ('{"sufficient": "no", "concerns": []}', "must be true or false"),
        ('{"sufficient": false, "concerns": []}', "no concern"),
        ('{"sufficient": false, "concerns": [{"concern": "c", "points": [], "subquery": "s", "entities": ["Paris"]}]}', "unknown entity 'Paris'"),
        ('{"sufficient": false, "concerns": [{"concern": "c", "points": [2], "subquery": "s"}]}', "no memory point 2"),
        ('{"sufficient": false, "concerns": [{"concern": "c", "points": []}]}', "'subquery' must be a non-empty string"),
        ("The memory looks fine to me.", "no JSON object with 'sufficient'"),
    ]:
        with pytest.raises(ParseError, match=message):
            parse_plan(bad, NAMES, n_points=2)


# ----------------------------------------------------------------------------- scripted replies over HTTP


class Script:
    """Scripted HGMem replies for the fake server: evolve inserts a point over the first fact
    of the evidence (citing it); merge and plan replies are replayed from lists (the last one
    repeats). Records the stage of every request."""

    def __init__(self, plans, merges=('{"merge": []}',), evolve=None):
        self.plans = list(plans)
        self.merges = list(merges)
        self.evolve = evolve
        self.stages: list[str] = []
        self.prompts: list[str] = []

    @staticmethod
    def _next(replies):
        return replies.pop(0) if len(replies) > 1 else replies[0]

    def __call__(self, body):
        system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
        if system == EVOLVE_SYSTEM:
            self.stages.append("evolve")
            self.prompts.append(user)
            if self.evolve is not None:
                return self._next(self.evolve)
            n, s, _, o = re.findall(r"^\[(\d+)\] (.*?) \| (.*?) \| (.*)$", user, re.M)[0]
            return json.dumps({"operations": [{"op": "insert", "entities": [s, o], "description": f"{s} / {o}", "facts": [int(n)]}]})
        if system == MERGE_SYSTEM:
            self.stages.append("merge")
            return self._next(self.merges)
        if system.startswith(PLAN_SYSTEM[:60]):
            self.stages.append("plan")
            return self._next(self.plans)
        return None


SUFFICIENT = '{"sufficient": true, "concerns": []}'
ASK_ACME = json.dumps({"sufficient": False, "concerns": [
    {"concern": "where is the company based?", "points": [0], "subquery": SUBQUERY, "entities": ["acme corp"]}]})


@pytest.fixture
def serve(tiny_index):
    """``serve(script)`` -> an engine whose LLM is the fake server answering with ``script``."""
    servers = []

    def make(script):
        server = ReplayServer(handlers=[script]).start()
        servers.append(server)
        engine = open_index(
            tiny_index, {"retrieval.query_ner": False, "llm.base_url": server.base_url, "llm.cache": "off", "llm.backoff_base": 0.001},
            embedder=HashingEmbedder(64),
        )
        return engine, server

    yield make
    for s in servers:
        s.stop()


def test_stops_when_the_llm_judges_the_memory_sufficient(serve):
    script = Script([ASK_ACME, SUFFICIENT])
    engine, _ = serve(script)
    mem = engine.memory()
    result = engine.retrieve(QUESTION, k=3, memory=mem, steps=5, reasoner="llm")
    steps = result.memory["steps"]
    assert [s["step"] for s in steps] == [1, 2] and script.stages == ["evolve", "plan", "evolve", "merge", "plan"]
    assert steps[0]["concerns"] == ["where is the company based?"] and steps[0]["subqueries"] == [SUBQUERY]
    assert steps[0]["next"] == ["acme corp"] and not steps[0]["stop"]
    # the subquery, not the question, is what step 2 ranked and what its evolve prompt shows
    assert steps[1]["queries"] == [SUBQUERY] and steps[1]["mode"] == "local" and steps[1]["seeds"] == ["acme corp"]
    assert f"This step searched for:\n- {SUBQUERY}\n" in script.prompts[1] and SUBQUERY not in script.prompts[0]
    assert steps[1]["stop"] and steps[1]["reason"] == "the LLM judged the memory sufficient"
    assert result.memory["reasoner"] == "llm" and len(mem.points) == 2  # merge is asked from step 2; it merged nothing
    assert {"acme corp", "berlin"} in [set(p["vertices"]) for p in result.memory["points"]]
    assert "headquartered in" in script.prompts[1]  # step 2 read the Acme Corp passage


def test_respects_the_step_budget(serve):
    script = Script([ASK_ACME])  # never satisfied
    engine, _ = serve(script)
    result = engine.retrieve(QUESTION, k=3, steps=2, reasoner="llm")
    assert [s["step"] for s in result.memory["steps"]] == [1, 2]
    assert script.stages.count("plan") == 1  # the last step does not ask: the budget is spent
    assert result.memory["steps"][-1]["reason"] == "step budget spent"
    usage = engine.llm.usage()
    assert usage["hgmem.evolve"]["requests"] == 2 and usage["hgmem.plan"]["requests"] == 1


def test_merge_takes_the_union_of_the_merged_points(serve):
    script = Script([ASK_ACME, SUFFICIENT], merges=['{"merge": [{"points": [1, 0], "description": "Alice founded Acme, based in Berlin"}]}'])
    engine, _ = serve(script)
    mem = engine.memory()
    result = engine.retrieve(QUESTION, k=3, memory=mem, steps=3, reasoner="llm")
    assert script.stages == ["evolve", "plan", "evolve", "merge", "plan"]
    before = [set(p.split(" / ")) for p in re.findall(r"insert #\d \{[^}]*\}: (.*)", "\n".join(result.memory["steps"][0]["operations"] + result.memory["steps"][1]["operations"]))]
    assert len(before) == 2 and len(mem.points) == 1
    merged = mem.points[0]
    names = {engine.entity_names[v] for v in merged.vertices}
    assert names == before[0] | before[1] and merged.description == "Alice founded Acme, based in Berlin"
    assert merged.step == 2 and len(merged.passages) >= 2  # provenance is the union too
    assert result.memory["steps"][1]["operations"][-1] == "merge [1, 0] -> #0: Alice founded Acme, based in Berlin"


def test_unusable_replies_fall_back_to_the_offline_decision_in_the_trace(serve):
    garbage_plan = json.dumps({"sufficient": False, "concerns": [{"concern": "c", "points": [], "subquery": "s", "entities": ["Atlantis"]}]})
    script = Script([garbage_plan], evolve=["Sure! I will remember the important parts."])
    engine, server = serve(script)
    result = engine.retrieve(QUESTION, k=3, steps=2, reasoner="llm")
    offline = engine.retrieve(QUESTION, k=3, steps=2)
    first = result.memory["steps"][0]
    assert first["operations"][0].startswith("fallback to offline: unusable reply: no JSON object with 'operations'")
    assert first["operations"][1:] == offline.memory["steps"][0]["operations"]
    assert first["reason"].startswith("fallback to offline: unusable reply: concern 0: unknown entity 'Atlantis'")
    assert first["next"] == offline.memory["steps"][0]["next"]
    assert result.passage_ids == offline.passage_ids  # every step fell back: the offline run exactly
    assert script.stages == ["evolve", "evolve", "plan", "plan", "evolve", "evolve"]  # each asked twice


def test_new_entities_become_provisional_vertices_and_index_names_map_back(serve):
    evolve = json.dumps({"operations": [{"op": "insert", "entities": ["alice smith"], "new_entities": ["Solid Rocket Boosters", "Berlin"],
                                         "description": "x", "facts": []}]})
    engine, _ = serve(Script([SUFFICIENT], evolve=[evolve]))
    mem = engine.memory()
    result = engine.retrieve(QUESTION, k=3, memory=mem, steps=2, reasoner="llm")
    assert mem.provisional == {"Solid Rocket Boosters": -1}
    assert mem.points[0].vertices == {-1, engine.entity_names.index("alice smith"), engine.entity_names.index("berlin")}
    assert set(result.memory["points"][0]["vertices"]) == {"Solid Rocket Boosters", "alice smith", "berlin"}


def test_the_default_reasoner_asks_no_llm(tiny_index):
    client = ScriptedLLMClient(lambda req: pytest.fail("the offline reasoner must not call the LLM"))
    engine = open_index(tiny_index, {"retrieval.query_ner": False}, embedder=HashingEmbedder(64), llm=client)
    result = engine.retrieve(QUESTION, k=3, steps=3)
    assert result.memory["reasoner"] == "offline" and not client.requests
    with pytest.raises(Exception, match="unknown reasoner 'gpt'; valid: offline, llm"):
        engine.retrieve(QUESTION, reasoner="gpt")


def test_subqueries_drive_the_step_ranking(tiny_index):
    engine = open_index(tiny_index, {"retrieval.query_ner": False}, embedder=HashingEmbedder(64))
    view = engine._memory_view()
    batch = engine.prepare([QUESTION])
    encoded: list[tuple[str, ...]] = []

    def encode(queries):
        encoded.append(tuple(queries))
        return engine.encode_queries(queries)

    class Replan:
        def __init__(self, plan):
            self.next = plan

        def evolve(self, question, memory, evidence, step):
            return []

        def plan(self, question, memory, hints, step):
            return self.next

    paris = engine.passage_ids.index(next(p for p, t in zip(engine.passage_ids, engine.passage_titles) if t == "Paris"))
    args = (view, QUESTION, batch.fact_vectors[0], batch.passage_vectors[0], ())
    plain = run(*args, Replan(Plan(False)), steps=2, encode=encode)
    sub = run(*args, Replan(Plan(False, subqueries=("Paris is the capital of France.",))), steps=2, encode=encode)
    assert encoded == [("Paris is the capital of France.",)]
    assert plain.trace[1].passages[0] != paris and sub.trace[1].passages[0] == paris
    assert sub.trace[1].queries == ("Paris is the capital of France.",)
    with pytest.raises(ValueError, match="pass encode="):
        run(*args, Replan(Plan(False, subqueries=("x",))), steps=2)


def test_answer_from_memory(serve, tiny_index):
    engine, _ = serve(Script([ASK_ACME, SUFFICIENT]))
    mem = engine.memory()
    result = engine.retrieve(QUESTION, k=3, memory=mem, steps=3, reasoner="llm")
    client = ScriptedLLMClient(lambda req: "Thought: Acme Corp is in Berlin.\nAnswer: Berlin")
    reasoner = LLMReasoner(client, engine._memory_view(), (), lambda p: engine.passage_contents[p], lambda f: engine.facts[f].triple)
    ranking = [engine.passage_ids.index(h) for h in result.passage_ids]
    out = reasoner.answer(QUESTION, mem, ranking)
    assert out.value == "Berlin" and out.reply is not None
    prompt = client.requests[0].messages[-1]["content"]
    assert prompt.endswith(f"Question: {QUESTION}\nThought: ") and "#0 [" in prompt and "#1 [" in prompt
    assert "Wikipedia Title: Acme Corp\nAcme Corp is headquartered in Berlin." in prompt
    assert client.requests[0].stage == "hgmem.answer"


# ----------------------------------------------------------------------------- CLI end to end


def test_cli_query_explain_and_eval_with_the_llm_reasoner(capsys, tiny_index, tmp_path):
    script = Script([ASK_ACME, SUFFICIENT])
    with ReplayServer(handlers=[script]) as server:
        llm = ["--llm-base-url", server.base_url, "--set", f"llm.cache={tmp_path / 'c.sqlite'}", "--set", "retrieval.query_ner=false"]
        assert main(["query", str(tiny_index), QUESTION, "--memory", "hgmem", "--reasoner", "llm", "--steps", "3", "--explain", "-k", "3", *llm]) == 0
        out = capsys.readouterr().out
        assert "reasoner: llm" in out and "step 1 (global)" in out and "step 2 (local from acme corp)" in out
        assert "     concern: where is the company based?\n     subquery: Where is Acme Corp headquartered?\n     next: acme corp" in out
        assert "(the LLM judged the memory sufficient)" in out and "memory: insert #0 {" in out
        questions = tmp_path / "q.json"
        questions.write_text(json.dumps([{"id": "2hop__1", "question": QUESTION, "paragraphs": [
            {"title": "Acme Corp", "paragraph_text": "Acme Corp is headquartered in Berlin. Acme Corp makes rockets.", "is_supporting": True}]}]))
        script.plans = [ASK_ACME, SUFFICIENT]
        assert main(["eval", str(tiny_index), "--questions", str(questions), "--retriever", "hgmem", "--reasoner", "llm", "--json", *llm]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["reasoner"] == {"name": "llm", "model": "gpt-4o-mini"} and report["recall"]["5"] == 1.0
        # same prompts as the query above: the evolve and plan replies come from the response cache
        assert report["llm_usage"]["hgmem.evolve"]["cache_hits"] == 2 and report["llm_usage"]["hgmem.plan"]["cache_hits"] == 2
    assert main(["eval", str(tiny_index), "--questions", str(questions), "--reasoner", "llm"]) == 2
    assert "--reasoner applies to a multi-step retriever (--retriever hgmem)" in capsys.readouterr().err


def test_cli_llm_reasoner_with_unreachable_server_is_one_error_line(capsys, tiny_index):
    code = main(["query", str(tiny_index), QUESTION, "--reasoner", "llm", "--llm-base-url", "http://127.0.0.1:9/v1",
                 "--set", "llm.cache=off", "--set", "llm.max_retries=0", "--set", "retrieval.query_ner=false"])
    _, err = capsys.readouterr()
    assert code == 1 and err.count("\n") == 1 and "cannot reach the LLM server" in err

