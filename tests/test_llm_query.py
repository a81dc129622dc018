"""Recognition memory, the QA reader, EM/F1, ``hippo estimate`` and the OpenAI-compatible embedder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from fake_openai import ReplayServer

from hippo.cli.main import main
from hippo.config import LLMConfig, load_config
from hippo.embed import make_embedder
from hippo.embed.hashing import HashingEmbedder
from hippo.engine import open_index
from hippo.errors import ConfigError
from hippo.evaluation import exact_match, normalize_answer, qa_metrics, token_f1
from hippo.llm.base import ChatRequest
from hippo.llm.estimate import approx_tokens, estimate_openie
from hippo.llm.scripted import ScriptedLLMClient
from hippo.retrieval.recognition import map_to_candidates
from hippo.testing import make_engine, tiny_passages

pytestmark = pytest.mark.llm

QUESTION = "Which country is the city where the founder of Acme Corp works the capital of?"


@pytest.fixture(autouse=True)
def _no_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "idx"
    make_engine(path)
    return path


def candidates_of(request: ChatRequest) -> list[list[str]]:
    last = request.messages[-1]["content"]
    return json.loads(last.split("Candidate facts: ", 1)[1])["fact"]


def engine_with(tiny_index, reply, **overrides):
    client = ScriptedLLMClient(reply)
    engine = open_index(tiny_index, {"llm.filter": True, **overrides}, embedder=HashingEmbedder(64), llm=client)
    return engine, client


# ----------------------------------------------------------------------------- recognition memory


def test_strict_mapping_drops_invented_facts_and_keeps_llm_order():
    cands = [("alice smith", "founded", "acme corp"), ("acme corp", "headquartered in", "berlin"), ("paris", "capital of", "france")]
    returned = [["Acme Corp", "headquartered in", "Berlin."], ["alice smith", "founded", "rockets inc"], ["alice smith", "founded", "acme corp"],
                ["acme corp", "headquartered in", "berlin"], ["x", "y"]]
    assert map_to_candidates(cands, returned, limit=5) == [1, 0]
    assert map_to_candidates(cands, returned, limit=1) == [1]
    assert map_to_candidates(cands, [], limit=5) == []


def test_filter_keeps_the_chosen_facts_and_seeds_only_their_entities(tiny_index):
    def reply(req):
        first = candidates_of(req)[0]
        return json.dumps({"fact": [first, ["alice smith", "invented", "a fact"]]})

    engine, client = engine_with(tiny_index, reply)
    result = engine.retrieve(QUESTION, k=3, retriever="hipporag2")
    plain = engine.with_overrides({"llm.filter": False}).retrieve(QUESTION, k=3, retriever="hipporag2")
    assert len(client.requests) == 1 and client.requests[0].stage == "filter"
    assert result.filter == "kept" and result.mode == "ppr"
    assert [f.fact for f in result.facts] == [plain.facts[0].fact]
    assert result.facts[0].score == pytest.approx(plain.facts[0].score)
    assert [f.fact for f in result.rejected_facts] == [f.fact for f in plain.facts[1:]]
    kept = plain.facts[0].fact
    assert {s.name for s in result.seeds} <= {kept.subject, kept.object}
    assert plain.filter == "" and not plain.rejected_facts


def test_filter_keeping_nothing_falls_back_to_dense_as_the_reference(tiny_index):
    engine, _ = engine_with(tiny_index, lambda req: '{"fact": []}')
    result = engine.retrieve(QUESTION, k=3, retriever="hipporag2")
    dense = engine.retrieve(QUESTION, k=3, retriever="dense")
    assert result.filter == "none kept" and result.mode == "dense" and not result.facts
    assert result.passage_ids == dense.passage_ids
    assert len(result.rejected_facts) == engine.config.retrieval.linking_top_k


def test_filter_with_an_unusable_reply_keeps_every_candidate(tiny_index):
    engine, client = engine_with(tiny_index, lambda req: "I think the second one.")
    result = engine.retrieve(QUESTION, k=3, retriever="hipporag2")
    plain = engine.with_overrides({"llm.filter": False}).retrieve(QUESTION, k=3, retriever="hipporag2")
    assert result.filter.startswith("failed: unusable reply")
    assert result.passage_ids == plain.passage_ids and len(result.facts) == len(plain.facts)
    assert len(client.requests) == 2  # asked again once


def test_no_filter_no_llm_call_and_ranking_unchanged(tiny_index):
    engine, client = engine_with(tiny_index, lambda req: pytest.fail("no LLM call expected"), **{"llm.filter": False})
    batch = engine.prepare([QUESTION])
    linked = engine.ranker.link_facts(batch.fact_vectors, engine.config.retrieval.linking_top_k)
    a = engine.rank_prepared(batch, 4)[0]
    b = engine.rank_prepared(batch, 4, linked=linked)[0]
    assert a.passages.tolist() == b.passages.tolist() and np.allclose(a.scores, b.scores)
    assert engine.retrieve(QUESTION).filter == "" and not client.requests


# ----------------------------------------------------------------------------- the reader


def test_answer_reads_the_top_passages(tiny_index):
    engine, client = engine_with(tiny_index, lambda req: "Thought: Acme is in Berlin, the capital of Germany.\nAnswer: Germany\n", **{"llm.filter": False})
    answer = engine.answer(QUESTION, k=2)
    assert answer.answer == "Germany" and not answer.error
    assert len(answer.passages) == 2 and answer.passages == answer.retrieval.hits[:2]
    prompt = client.requests[0].messages[-1]["content"]
    for hit in answer.passages:
        assert f"Wikipedia Title: {hit.content}\n\n" in prompt
    assert prompt.endswith(f"Question: {QUESTION}\nThought: ") and client.requests[0].json is False


def test_answer_without_answer_marker_is_the_whole_reply(tiny_index):
    engine, _ = engine_with(tiny_index, lambda req: "Germany", **{"llm.filter": False})
    assert engine.answer(QUESTION).answer == "Germany"


def test_em_f1_with_hipporag_normalisation():
    assert normalize_answer("The  Acme-Corp, Inc.!") == "acmecorp inc"
    assert exact_match("the Germany", ["Germany"]) == 1.0 and exact_match("Germany.", ["France", "germany"]) == 1.0
    assert exact_match("Berlin, Germany", ["Germany"]) == 0.0
    assert token_f1("Berlin Germany", ["Germany"]) == pytest.approx(2 / 3)
    assert token_f1("", ["Germany"]) == 0.0
    assert qa_metrics(["Germany", "Paris France", "no"], [["Germany"], ["Paris"], ["yes"]]) == {"em": pytest.approx(1 / 3, abs=1e-4), "f1": pytest.approx((1 + 2 / 3) / 3, abs=1e-4)}


# ----------------------------------------------------------------------------- CLI over real HTTP


def filter_and_reader(body):
    """Scripted filter (keep the first candidate) and reader (answer Germany)."""
    last = body["messages"][-1]["content"]
    if "Candidate facts: " in last:
        first = json.loads(last.split("Candidate facts: ", 1)[1])["fact"][:1]
        return json.dumps({"fact": first})
    if last.endswith("Thought: "):
        return "Thought: Acme Corp is in Berlin, capital of Germany.\nAnswer: Germany"
    return None


def test_cli_query_filter_ask_and_eval_qa(capsys, tiny_index, tmp_path):
    questions = tmp_path / "q.json"
    questions.write_text(json.dumps([
        {"id": "q1", "question": QUESTION, "answer": "Germany", "paragraphs": [
            {"title": p.title, "paragraph_text": p.text, "is_supporting": True} for p in tiny_passages()[1:3]]},
        {"id": "q2", "question": "Where was Alice Smith born?", "answer": "Paris", "answer_aliases": ["Paris, France"],
         "paragraphs": [{"title": "Alice Smith", "paragraph_text": tiny_passages()[0].text, "is_supporting": True}]},
    ]))
    with ReplayServer(handlers=[filter_and_reader]) as server:
        llm = ["--llm-base-url", server.base_url, "--set", f"llm.cache={tmp_path / 'c.sqlite'}"]
        assert main(["query", str(tiny_index), QUESTION, "--filter", "llm", "--json", *llm]) == 0
        result = json.loads(capsys.readouterr()[0])
        assert result["filter"] == "kept" and len(result["facts"]) == 1 and len(result["rejected_facts"]) == 4
        assert main(["query", str(tiny_index), QUESTION, "--filter", "llm", *llm]) == 0
        text = capsys.readouterr()[0]
        assert "recognition filter (gpt-4o-mini): kept" in text and "the filter dropped" in text
        assert main(["ask", str(tiny_index), QUESTION, *llm]) == 0
        text = capsys.readouterr()[0]
        assert text.startswith("Answer: Germany\n") and "Passages read (4)" in text  # the whole tiny corpus
        assert main(["ask", str(tiny_index), QUESTION, "-k", "2", "--json", *llm]) == 0
        data = json.loads(capsys.readouterr()[0])
        assert data["answer"] == "Germany" and len(data["passages"]) == 2 and data["llm_usage"]["qa"]["cache_hits"] == 0
        assert main(["eval", str(tiny_index), "--questions", str(questions), "--qa", "--filter", "llm", "--json", *llm]) == 0
        report = json.loads(capsys.readouterr()[0])
        assert report["qa"]["em"] == 0.5 and report["qa"]["f1"] == 0.5 and report["qa"]["unanswered"] == 0
        assert set(report["recall"]) >= {"1", "5"}
        # retrieval for Recall@k, then again for the reader: the second filter round is cached,
        # and so was the first for q1 (the query above asked it)
        assert report["llm_usage"]["filter"]["requests"] == 4 and report["llm_usage"]["filter"]["cache_hits"] == 3
        served = len(server.requests)
        assert main(["eval", str(tiny_index), "--questions", str(questions), "--qa", "--filter", "llm", "--json", *llm]) == 0
        again = json.loads(capsys.readouterr()[0])
        assert len(server.requests) == served and again["qa"] == report["qa"]  # all from the cache


def test_cli_ask_with_unreachable_server_is_one_error_line(capsys, tiny_index):
    code = main(["ask", str(tiny_index), QUESTION, "--llm-base-url", "http://127.0.0.1:9/v1",
                 "--set", "llm.cache=off", "--set", "llm.max_retries=0"])
    _, err = capsys.readouterr()
    assert code == 1 and err.count("\n") == 1 and "cannot reach the LLM server" in err


def test_llm_settings_change_at_query_time_other_index_settings_do_not(tiny_index):
    engine = open_index(tiny_index, {"llm.model": "other", "llm.qa_top_k": 3}, embedder=HashingEmbedder(64))
    assert engine.config.llm.model == "other" and engine.config.llm.qa_top_k == 3
    with pytest.raises(ConfigError, match="llm.\\* can"):
        open_index(tiny_index, {"graph.synonymy_threshold": 0.5}, embedder=HashingEmbedder(64))
    with pytest.raises(ConfigError, match="llm.concurrency"):
        load_config(overrides=["llm.concurrency=0"], env={})
    with pytest.raises(ConfigError, match="llm.json_mode"):
        load_config(overrides=["llm.json_mode=maybe"], env={})
    assert load_config(overrides=["extract.extractor=llm"], env={}).extract.extractor == "llm"


# ----------------------------------------------------------------------------- estimate


def test_estimate_counts_prompts_and_leaves_out_cached_passages(capsys, tmp_path):
    sample = Path(__file__).resolve().parent.parent / "graphs" / "sample"
    items = json.loads((sample / "corpus.json").read_text())[:10]
    corpus = tmp_path / "c.json"
    corpus.write_text(json.dumps(items))
    cache = tmp_path / "cache.sqlite"
    args = ["estimate", str(corpus), "--llm-model", "gpt-4o-mini", "--price-in", "0.15", "--price-out", "0.6",
            "--tokenizer", "approx", "--set", f"llm.cache={cache}", "--json"]
    assert main(args) == 0
    est = json.loads(capsys.readouterr()[0])
    assert est["passages"] == 10 and est["calls"] == 20 and est["cached_passages"] == 0 and not cache.exists()
    assert 600 * 10 < est["input_tokens"]["total"] < 2000 * 10
    expected = (est["input_tokens"]["total"] * 0.15 + est["output_tokens_expected"]["total"] * 0.6) / 1e6
    assert est["cost"] == pytest.approx(expected, abs=1e-4)
    # index 4 of them through the replay server, then estimate again: those cost nothing now
    (tmp_path / "four.json").write_text(json.dumps(items[:4]))
    with ReplayServer(sample / "openie_gpt-3.5-turbo-1106.json") as server:
        assert main(["index", str(tmp_path / "four.json"), "--out", str(tmp_path / "idx"), "--extractor", "llm",
                     "--llm-base-url", server.base_url, "--set", "embed.model=hashing:64", "--set", f"llm.cache={cache}"]) == 0
    capsys.readouterr()
    assert main(args) == 0
    again = json.loads(capsys.readouterr()[0])
    assert again["cached_passages"] == 4 and again["calls"] == 12 and again["cost"] < est["cost"]
    assert main(args[:-1]) == 0
    text = capsys.readouterr()[0]
    assert re.search(r"calls:\s+12", text) and "cost:" in text and "4 passages are already in the response cache" in text


def test_estimate_token_approximation_is_sane():
    assert approx_tokens("") == 0
    assert 8 <= approx_tokens("The Journal of Mathematical Physics is a peer-reviewed journal.") <= 16
    est = estimate_openie(tiny_passages(), "m", approx_tokens, "approx")
    assert est.calls == 8 and est.cost is None and est.input_tokens["triples"] > est.input_tokens["entities"] > 0


def test_estimate_rejects_an_unknown_tokenizer(capsys, tmp_path):
    sample = Path(__file__).resolve().parent.parent / "graphs" / "sample" / "corpus.json"
    assert main(["estimate", str(sample), "--tokenizer", "nope"]) == 2
    assert "valid: auto, approx" in capsys.readouterr()[1]


# ----------------------------------------------------------------------------- embedder


def test_openai_compatible_embedder_over_http(tmp_path):
    with ReplayServer(embed_dim=64) as server:
        cfg = LLMConfig(base_url="http://127.0.0.1:9/v1", embed_base_url=server.base_url)
        emb = make_embedder(load_config(overrides=["embed.model=openai:replay-embed", "embed.batch_size=3"], env={}).embed, cfg)
        assert emb.id == "openai:replay-embed" and emb.dim == 64
        texts = [p.content for p in tiny_passages()]
        got = emb.encode_documents(texts)
        assert got.dtype == np.float32 and got.shape == (4, 64)
        assert np.allclose(got, HashingEmbedder(64).encode_documents(texts), atol=1e-6)
        assert server.count("embeddings") == 1 + 2  # the dimension probe, then 3 + 1 texts
        assert np.allclose(emb.encode_queries(["x"], "q: "), HashingEmbedder(64).encode_documents(["q: x"]), atol=1e-6)
