"""The LLM client against real HTTP on 127.0.0.1 (the replay server), and defensive parsing."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest
from fake_openai import ReplayServer

from hippo.config import LLMConfig
from hippo.errors import ConfigError
from hippo.llm import make_llm_client
from hippo.llm.base import ChatReply, ChatRequest, LLMUnavailableError, ParseError
from hippo.llm.cache import ResponseCache
from hippo.llm.client import resolve_endpoint
from hippo.llm.parse import close_truncated, parse_entities, parse_facts, parse_triples
from hippo.llm.scripted import ScriptedLLMClient

pytestmark = pytest.mark.llm


def echo_handler(body):
    last = body["messages"][-1]["content"]
    return json.dumps({"echo": last})


def echo(reply: ChatReply) -> str:
    try:
        return json.loads(reply.content)["echo"]
    except (ValueError, KeyError):
        raise ParseError("not an echo") from None


def requests(n, stage="test"):
    return [ChatRequest(({"role": "user", "content": f"message {i}"},), stage) for i in range(n)]


def client_for(server, tmp_path=None, **llm):
    cfg = LLMConfig(base_url=server.base_url, cache=str(tmp_path / "cache.sqlite") if tmp_path else "off",
                    backoff_base=0.001, **llm)
    return make_llm_client(cfg, environ={})


# ----------------------------------------------------------------------------- conformance


@pytest.fixture(params=["openai", "scripted"])
def make_client(request, tmp_path):
    """Both LLMClient implementations, each with a response cache, and a call counter."""
    if request.param == "scripted":
        seen: list[ChatRequest] = []

        def backend(req: ChatRequest) -> str:
            seen.append(req)
            return echo_handler({"messages": req.messages})

        cache = ResponseCache(tmp_path / "c.sqlite")
        yield lambda: (ScriptedLLMClient(backend, cache=cache), lambda: len(seen))
        return
    server = ReplayServer(handlers=[echo_handler]).start()
    try:
        yield lambda: (client_for(server, tmp_path, concurrency=4), lambda: len(server.requests))
    finally:
        server.stop()


def test_results_in_order_and_cached_on_rerun(make_client):
    client, calls = make_client()
    out = client.chat_many(requests(12), echo)
    assert [o.value for o in out] == [f"message {i}" for i in range(12)]
    assert calls() == 12
    again, calls2 = make_client()  # a new client, the same cache file: a re-run
    out2 = again.chat_many(requests(12), echo)
    assert [o.value for o in out2] == [o.value for o in out]
    assert calls2() == 12  # no new request reached the backend
    usage = again.usage()["test"]
    assert usage["cache_hits"] == 12 and usage["calls"] == 0 and usage["prompt_tokens"] == 0
    assert usage["cached_prompt_tokens"] > 0


def test_unparsable_reply_is_asked_again_and_never_cached(make_client):
    client, calls = make_client()

    def never(reply: ChatReply) -> str:
        raise ParseError("no")

    out = client.chat_many(requests(3), never)
    assert all(not o.ok and "unusable reply" in (o.error or "") for o in out)
    assert calls() == 6  # each asked twice (one parse retry)
    assert client.usage()["test"]["failures"] == 3
    out = client.chat_many(requests(3), echo)  # nothing was cached: asked again, now parsed
    assert all(o.ok for o in out) and calls() == 9


# ----------------------------------------------------------------------------- HTTP behaviour


def test_retries_injected_500s_429s_and_timeouts():
    with ReplayServer(handlers=[echo_handler], error_rate=0.3, rate_limit_rate=0.1, timeout_rate=0.1, hold_seconds=0.6, seed=3) as server:
        client = client_for(server, concurrency=8, timeout=0.25, max_retries=8)
        out = client.chat_many(requests(40), echo)
        assert [o.value for o in out] == [f"message {i}" for i in range(40)]
        assert server.count("error500") > 0 and server.count("error429") > 0 and server.count("timeout") > 0
        u = client.usage()["test"]
        assert u["retries"] == server.count("error500") + server.count("error429") + server.count("timeout")
        assert u["calls"] == 40 + u["retries"] and u["failures"] == 0


def test_retries_run_out_into_a_reported_failure():
    with ReplayServer(handlers=[echo_handler], error_rate=1.0) as server:
        client = client_for(server, max_retries=2)
        out = client.chat_many(requests(2), echo)
        assert all(not o.ok for o in out)
        assert "HTTP 500" in out[0].error and "after 3 attempts" in out[0].error
        assert server.count("error500") == 6


def test_concurrency_is_bounded():
    with ReplayServer(handlers=[echo_handler], latency=0.05) as server:
        client = client_for(server, concurrency=4)
        t = time.perf_counter()
        client.chat_many(requests(32), echo)
        elapsed = time.perf_counter() - t
        assert server.max_in_flight == 4
        assert elapsed < 32 * 0.05 / 2  # really concurrent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_stops_the_batch_with_one_clear_error():
    cfg = LLMConfig(base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=1, backoff_base=0.001, cache="off")
    client = make_llm_client(cfg, environ={})
    with pytest.raises(LLMUnavailableError, match="cannot reach the LLM server.*--llm-base-url"):
        client.chat_many(requests(5), echo)


@pytest.mark.parametrize("status, message", [(401, "refused the API key"), (404, "not found at")])
def test_refused_key_or_unknown_model_is_fatal_and_names_the_fix(status, message):
    with ReplayServer(force_status=status) as server:
        client = make_llm_client(LLMConfig(base_url=server.base_url, cache="off"), environ={"OPENAI_API_KEY": "sk-SENTINEL-123"})
        with pytest.raises(LLMUnavailableError, match=message) as err:
            client.chat_many(requests(3), echo)
        assert "SENTINEL" not in str(err.value) and "SENTINEL" not in repr(client)
        assert len(server.requests) <= 3


def test_json_mode_is_dropped_when_the_server_rejects_it():
    with ReplayServer(handlers=[echo_handler], reject_json_mode=True) as server:
        client = client_for(server, concurrency=1)
        out = client.chat_many(requests(3), echo)
        assert all(o.ok for o in out)
        assert "response_format" in server.requests[0] and all("response_format" not in b for b in server.requests[1:])


def test_json_mode_and_parameters_are_sent():
    with ReplayServer(handlers=[echo_handler]) as server:
        client = client_for(server, model="my-model", max_tokens=321)
        client.chat_many(requests(1), echo)
        body = server.requests[0]
        assert body["model"] == "my-model" and body["temperature"] == 0.0 and body["max_tokens"] == 321
        assert body["response_format"] == {"type": "json_object"}


def test_endpoint_resolution_names_the_fix():
    with pytest.raises(ConfigError, match="set OPENAI_API_KEY.*--llm-base-url"):
        resolve_endpoint(LLMConfig(), {})
    assert resolve_endpoint(LLMConfig(), {"OPENAI_API_KEY": "k"}) == ("https://api.openai.com/v1", "k")
    assert resolve_endpoint(LLMConfig(base_url="http://localhost:8000/v1/"), {})[0] == "http://localhost:8000/v1"
    assert resolve_endpoint(LLMConfig(api_key_env="MY_KEY", base_url="http://h/v1"), {"MY_KEY": "x"})[1] == "x"
    with pytest.raises(ConfigError, match="invalid LLM base URL"):
        resolve_endpoint(LLMConfig(base_url="localhost:8000"), {"OPENAI_API_KEY": "k"})


def test_missing_openai_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(ConfigError, match=r"pip install 'hippo\[llm\]'"):
        make_llm_client(LLMConfig(base_url="http://127.0.0.1:9/v1"), environ={})


def test_core_paths_do_not_import_openai():
    code = (
        "import sys, hippo, hippo.engine, hippo.cli.main, hippo.indexer, hippo.extract, hippo.llm, hippo.embed; "
        "sys.exit(1 if 'openai' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# ----------------------------------------------------------------------------- parsing


def test_parse_code_fences_trailing_text_and_python_literals():
    assert parse_entities('```json\n{"named_entities": ["A", "B", "A"]}\n```\nHope this helps!') == ("A", "B")
    assert parse_entities("{'named_entities': ['X', 2]}") == ("X", "2")
    assert parse_triples('noise {"other": 1} {"triples": [["a", "b", "c"]]} tail') == ((("a", "b", "c"),), 0)
    assert parse_triples('[["a", "b", "c"]]') == ((("a", "b", "c"),), 0)


def test_parse_wrong_arity_and_duplicates():
    triples, invalid = parse_triples('{"triples": [["a", "b", "c"], ["a", "b"], ["a", "b", "c"], ["x", "y", 3], ["p", ["q"], "r"]]}')
    assert triples == (("a", "b", "c"), ("x", "y", "3")) and invalid == 2


def test_parse_truncated_json_keeps_complete_items():
    cut = '{"triples": [["a", "b", "c"], ["d", "e", "f"], ["g", "h'
    with pytest.raises(ParseError):
        parse_triples(cut)  # not marked truncated: garbage
    triples, _ = parse_triples(cut, truncated=True)
    assert triples == (("a", "b", "c"), ("d", "e", "f"))
    assert close_truncated('{"named_entities": ["A", "B", "C') == {"named_entities": ["A", "B"]}
    assert parse_entities('{"named_entities": ["A", "B\\" x', truncated=True) == ("A",)


def test_parse_never_evaluates_code():
    marker = "hippo_parse_ran_code"
    payload = '{"named_entities": __import__("builtins").setattr(__import__("builtins"), "%s", 1)}' % marker
    with pytest.raises(ParseError):
        parse_entities(payload)
    import builtins

    assert not hasattr(builtins, marker)


@pytest.mark.parametrize("text", ["", "   ", "I cannot help with that.", '{"named": []}', '{"named_entities": "A"}'])
def test_parse_garbage_is_an_error(text):
    with pytest.raises(ParseError):
        parse_entities(text)


def test_parse_filter_facts():
    assert parse_facts('{"fact": [["a", "b", "c"], ["bad"]]}') == [("a", "b", "c")]
    assert parse_facts('{"fact": []}') == []
