"""``hippo serve`` REST API against a real server process (uvicorn on a loopback port)."""

from __future__ import annotations

import json
import re
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("mcp")

import hippo  # noqa: E402
from hippo.cli.main import main  # noqa: E402
from hippo.client import ServerError  # noqa: E402
from hippo.types import QueryResult  # noqa: E402
from serve_proc import HASHING, KEY_A, KEY_B, KEY_METRICS, KEY_READER, ServerProcess, index_state, keyed_server, write_keys  # noqa: E402

ALICE = [
    {"title": "Alice Smith", "text": "Alice Smith was born in Paris. She founded Acme Corp."},
    {"title": "Acme Corp", "text": "Acme Corp is headquartered in Berlin. Acme Corp makes rockets."},
    {"title": "Berlin", "text": "Berlin is the capital of Germany."},
]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    with keyed_server(tmp_path_factory.mktemp("serve")) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: ServerProcess):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def alice(server: ServerProcess, http: httpx.Client) -> list[str]:
    r = http.post("/v1/ns/alice/passages", json={"passages": ALICE}, headers=auth(KEY_A))
    assert r.status_code == 200, r.text
    return list(r.json()["ids"])


def test_health_ready_docs_and_openapi_need_no_key(http: httpx.Client) -> None:
    assert http.get("/healthz").json()["status"] == "ok"
    assert http.get("/readyz").json()["status"] == "ready"
    spec = http.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert {"/v1/ns", "/v1/ns/{ns}", "/v1/ns/{ns}/passages", "/v1/ns/{ns}/retrieve", "/v1/ns/{ns}/ask"} <= paths
    assert set(spec["paths"]["/v1/ns/{ns}/passages"]) == {"post", "put", "delete"}
    assert "swagger" in http.get("/docs").text.lower()


def test_auth_failures_are_401_problems(http: httpx.Client) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {KEY_A}"}, {"Authorization": "Bearer"}):
        r = http.get("/v1/ns/alice/retrieve", params={"q": "x"}, headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["title"] == "Unauthorized" and "Traceback" not in r.text
    assert http.post("/mcp", json={}).status_code == 401


def test_the_issue_curl_works_without_a_content_type(server: ServerProcess) -> None:
    import subprocess

    out = subprocess.run(["curl", "-s", "-H", f"Authorization: Bearer {KEY_A}", "-X", "POST",
                          f"{server.url}/v1/ns/alice-curl/passages", "-d", '{"passages":[{"text":"Gina owns a red kayak."}]}'],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["ids"][0].startswith("p-")
    out = subprocess.run(["curl", "-s", "-H", f"Authorization: Bearer {KEY_A}",
                          f"{server.url}/v1/ns/alice-curl/retrieve?q=Who+owns+a+kayak&k=5"],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["hits"][0]["content"] == "Gina owns a red kayak."


def test_add_retrieve_info_and_list(http: httpx.Client, alice: list[str]) -> None:
    assert len(alice) == 3 and all(i.startswith("p-") for i in alice)
    r = http.get("/v1/ns/alice/retrieve", params={"q": "Where is the company Alice Smith founded?", "k": 2},
                 headers=auth(KEY_A))
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["namespace"] == "alice" and len(data["hits"]) == 2
    hit = data["hits"][0]
    assert {"passage_id", "title", "content", "score", "rank", "document_id", "span"} <= set(hit)
    assert hit["passage_id"] in alice and data["facts"] and data["seeds"]
    info = http.get("/v1/ns/alice", headers=auth(KEY_READER)).json()
    assert info["counts"]["passages"] == 3 and info["embedder"]["id"] == "hashing:64" and "path" not in info
    listed = http.get("/v1/ns", headers=auth(KEY_A)).json()
    names = [n["name"] for n in listed["namespaces"]]
    assert "alice" in names and all(n == "alice" or n.startswith("alice-") for n in names) and listed["key"]["write"]
    assert http.get("/v1/ns", headers=auth(KEY_B)).json()["namespaces"] == []


def test_batch_retrieve_matches_single(http: httpx.Client, alice: list[str]) -> None:
    qs = ["Who founded Acme Corp?", "What is the capital of Germany?"]
    batch = http.post("/v1/ns/alice/retrieve", json={"queries": qs, "k": 3}, headers=auth(KEY_A)).json()
    assert [r["query"] for r in batch["results"]] == qs
    for q, res in zip(qs, batch["results"]):
        one = http.get("/v1/ns/alice/retrieve", params={"q": q, "k": 3}, headers=auth(KEY_A)).json()
        assert [h["passage_id"] for h in one["hits"]] == [h["passage_id"] for h in res["hits"]]


def test_concurrent_retrieves_are_batched_and_answer_as_alone(server: ServerProcess, http: httpx.Client,
                                                              alice: list[str]) -> None:
    import asyncio

    qs = ["Who founded Acme Corp?", "What is the capital of Germany?", "Where was Alice Smith born?",
          "What does Acme Corp make?"] * 12
    alone = {q: [h["passage_id"] for h in http.get("/v1/ns/alice/retrieve", params={"q": q, "k": 3},
                                                   headers=auth(KEY_A)).json()["hits"]] for q in set(qs)}

    async def burst() -> list[dict[str, object]]:
        async with httpx.AsyncClient(base_url=server.url, headers=auth(KEY_A), timeout=60) as c:
            rs = await asyncio.gather(*(c.get("/v1/ns/alice/retrieve", params={"q": q, "k": 3}) for q in qs))
        return [r.json() for r in rs]

    for q, data in zip(qs, asyncio.run(burst())):
        assert data["query"] == q and [h["passage_id"] for h in data["hits"]] == alone[q]  # type: ignore[index]
    text = http.get("/metrics", headers=auth(KEY_METRICS)).text
    batches = float(re.search(r"^hippo_read_batches (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]
    queries = float(re.search(r"^hippo_read_batched_queries (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]
    assert queries >= len(qs) and batches < queries


def test_empty_namespace_retrieves_nothing_and_info_is_404(http: httpx.Client) -> None:
    r = http.get("/v1/ns/alice-empty/retrieve", params={"q": "anything"}, headers=auth(KEY_A))
    assert r.status_code == 200 and r.json()["hits"] == [] and r.json()["mode"] == "empty"
    assert http.get("/v1/ns/alice-empty", headers=auth(KEY_A)).status_code == 404


def test_update_conflict_and_delete(http: httpx.Client, server: ServerProcess) -> None:
    ns, h = "/v1/ns/alice-edit/passages", auth(KEY_A)
    ids = http.post(ns, json={"passages": [{"id": "n1", "text": "The meeting is on Monday."},
                                           {"id": "n2", "text": "Bob likes green tea."}]}, headers=h).json()["ids"]
    assert ids == ["n1", "n2"]
    clash = http.post(ns, json={"passages": [{"id": "n1", "text": "The meeting is on Friday."}]}, headers=h)
    assert clash.status_code == 409 and clash.json()["ids"] == ["n1"]
    assert http.put(ns, json={"passages": [{"id": "n1", "text": "The meeting is on Friday."}]}, headers=h).json()["ids"] == ["n1"]
    hits = http.get("/v1/ns/alice-edit/retrieve", params={"q": "When is the meeting?", "k": 2}, headers=h).json()["hits"]
    assert any("Friday" in x["content"] for x in hits) and not any("Monday" in x["content"] for x in hits)
    gone = http.request("DELETE", ns, json={"ids": ["n2", "missing"]}, headers=h)
    assert gone.status_code == 404 and gone.json()["ids"] == ["missing"]
    assert http.get("/v1/ns/alice-edit", headers=h).json()["counts"]["passages"] == 2  # nothing was deleted
    assert http.request("DELETE", ns, json={"ids": ["n2"]}, headers=h).json()["deleted"] == ["n2"]
    assert http.get("/v1/ns/alice-edit", headers=h).json()["counts"]["passages"] == 1
    assert http.request("DELETE", ns, json={"ids": ["n1"]}, headers=h).status_code == 200  # the last one
    assert http.get("/v1/ns/alice-edit", headers=h).json()["counts"]["passages"] == 0  # an empty index stays
    r = http.get("/v1/ns/alice-edit/retrieve", params={"q": "When is the meeting?"}, headers=h).json()
    assert r["hits"] == [] and r["mode"] == "empty"
    assert http.post(ns, json={"passages": [{"id": "n3", "text": "The meeting moved to Oslo."}]}, headers=h).status_code == 200
    hits = http.get("/v1/ns/alice-edit/retrieve", params={"q": "Where did Zed Quux move?", "k": 2}, headers=h).json()["hits"]
    assert [x["passage_id"] for x in hits] == ["n3"]


def test_metadata_is_stored_and_returned_on_hits(http: httpx.Client) -> None:
    ns, h = "/v1/ns/alice-meta/passages", auth(KEY_A)
    meta = {"source": "notes/2024-05.md", "headings": ["May", "Travel"], "span": [10, 52], "document_id": "doc-7",
            "mood": {"score": 0.8}}
    assert http.post(ns, json={"passages": [{"id": "m1", "text": "Kim flew to Lima on May 3.", "metadata": meta}]},
                     headers=h).status_code == 200
    hit = http.get("/v1/ns/alice-meta/retrieve", params={"q": "Where did Kim fly?"}, headers=h).json()["hits"][0]
    assert hit["passage_id"] == "m1" and hit["metadata"] == meta
    assert (hit["source"], hit["headings"], hit["span"], hit["document_id"]) == (
        "notes/2024-05.md", ["May", "Travel"], [10, 52], "doc-7")
    bad = http.post(ns, json={"passages": [{"text": "Kim flew home.", "metadata": {"span": "10-52"}}]}, headers=h)
    assert bad.status_code == 422 and '"span"' in bad.json()["detail"]
    assert http.get("/v1/ns/alice-meta", headers=h).json()["counts"]["passages"] == 1


def test_readers_pick_up_commits_of_another_process(http: httpx.Client, server: ServerProcess) -> None:
    from hippo.embed.hashing import HashingEmbedder

    h = auth(KEY_A)
    folder = server.root / "alice-ext"
    # another process (here: this test, as `hippo add` would) creates and writes the namespace's index
    with hippo.open_index(folder, writable=True, create=True, embedder=HashingEmbedder(64),
                          config=hippo.load_config().replace({"embed.model": "hashing:64"})) as mem:
        mem.add([{"id": "ext-0", "text": "Hana paints murals in Kyoto."}])
        assert http.get("/v1/ns/alice-ext", headers=h).json()["counts"]["passages"] == 1
        blocked = http.post("/v1/ns/alice-ext/passages", json={"passages": [{"text": "Lea rows."}]}, headers=h)
        assert blocked.status_code == 409 and blocked.json()["title"] == "Locked"  # the other writer holds the lock
        mem.add([{"id": "ext-1", "text": "Ivan repairs clocks in Tartu."}])
        # the very next read sees it (runtime.refresh_seconds = 0: every read checks CURRENT)
        hits = http.get("/v1/ns/alice-ext/retrieve", params={"q": "Who repairs clocks?", "k": 1}, headers=h).json()["hits"]
        assert hits[0]["passage_id"] == "ext-1"
        mem.delete(["ext-1"])
        hits = http.get("/v1/ns/alice-ext/retrieve", params={"q": "Who repairs clocks?", "k": 2}, headers=h).json()["hits"]
        assert [x["passage_id"] for x in hits] == ["ext-0"]
    assert http.post("/v1/ns/alice-ext/passages", json={"passages": [{"text": "Lea rows."}]}, headers=h).status_code == 200
    assert http.get("/v1/ns/alice-ext", headers=h).json()["counts"]["passages"] == 2


def test_an_unexpected_error_is_a_500_problem_without_a_trace(http: httpx.Client, server: ServerProcess) -> None:
    h = auth(KEY_A)
    assert http.post("/v1/ns/alice-broken/passages", json={"passages": [{"text": "Jon sells maps."}]},
                     headers=h).status_code == 200
    folder = server.root / "alice-broken"
    (folder / "CURRENT").write_text('{"format": "hippo-index", "generation": 9')  # a torn manifest: a broken index
    r = http.get("/v1/ns/alice-broken/retrieve", params={"q": "maps"}, headers=h)
    assert r.status_code == 500 and r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["request_id"] == r.headers["x-request-id"] and "Traceback" not in r.text
    time.sleep(0.2)
    logged = [json.loads(x) for x in server.log().splitlines() if problem["request_id"] in x and '"trace"' in x]
    assert logged and "CURRENT is not valid JSON" in logged[0]["error"]


def test_read_only_key_cannot_write(http: httpx.Client, alice: list[str]) -> None:
    r = http.post("/v1/ns/alice/passages", json={"passages": [{"text": "x y z"}]}, headers=auth(KEY_READER))
    assert r.status_code == 403 and "may read but not write" in r.json()["detail"]
    assert http.request("DELETE", "/v1/ns/alice/passages", json={"ids": alice[:1]}, headers=auth(KEY_READER)).status_code == 403


def test_malformed_bodies_get_422_with_details(http: httpx.Client) -> None:
    h = auth(KEY_A)
    cases = [
        ({"passages": [{"title": "no text"}]}, ["body", "passages", 0, "text"]),
        ({"passages": []}, ["body", "passages"]),
        ({"passages": [{"text": "   "}]}, ["body", "passages", 0, "text"]),
        ({"passages": [{"text": "ok", "colour": "red"}]}, ["body", "passages", 0, "colour"]),
        ({"items": []}, ["body", "passages"]),
    ]
    for body, loc in cases:
        r = http.post("/v1/ns/alice-x/passages", json=body, headers=h)
        assert r.status_code == 422, body
        problem = r.json()
        assert problem["status"] == 422 and any(e["loc"] == loc for e in problem["errors"]), problem
    r = http.post("/v1/ns/alice-x/passages", content=b'{"passages": [', headers={**h, "content-type": "application/json"})
    assert r.status_code == 422 and r.json()["errors"][0]["type"] == "json_invalid"
    r = http.post("/v1/ns/alice-x/passages", content=b"\xff\xfe+\x01", headers={**h, "content-type": "application/json"})
    assert r.status_code == 422 and r.json()["errors"][0]["type"] == "json_invalid"
    r = http.get("/v1/ns/alice/retrieve", params={"q": "x", "k": 0}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "k"]


def test_ask_without_llm_is_501(http: httpx.Client, alice: list[str]) -> None:
    r = http.post("/v1/ns/alice/ask", json={"question": "Who founded Acme?"}, headers=auth(KEY_A))
    assert r.status_code == 501 and "--llm-base-url" in r.json()["detail"]


def test_metrics_need_a_metrics_key(http: httpx.Client, alice: list[str]) -> None:
    assert http.get("/metrics").status_code == 401
    assert http.get("/metrics", headers=auth(KEY_A)).status_code == 403
    text = http.get("/metrics", headers=auth(KEY_METRICS)).text
    assert 'hippo_requests_total{method="GET",route="/v1/ns/{ns}/retrieve",status="200"}' in text
    assert "hippo_request_seconds_bucket" in text and 'hippo_namespace_passages{namespace="alice"} 3.0' in text
    assert "hippo_open_namespaces" in text


def test_logs_are_json_lines_without_keys(server: ServerProcess, http: httpx.Client, alice: list[str]) -> None:
    http.get("/v1/ns/alice/retrieve", params={"q": "secret-query-text"}, headers=auth(KEY_A))
    time.sleep(0.2)
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    requests = [x for x in lines if x.get("msg") == "request"]
    assert requests and all({"method", "route", "status", "ms", "key"} <= set(x) for x in requests)
    assert any(x["key"] == "alice" and x["route"] == "/v1/ns/{ns}/retrieve" for x in requests)
    log = server.log()
    for secret in (KEY_A, KEY_B, KEY_READER, "secret-query-text"):
        assert secret not in log


def test_python_client_has_the_engine_methods(server: ServerProcess, alice: list[str]) -> None:
    with hippo.Client(server.url, KEY_A, namespace="alice-client") as mem:
        ids = mem.add([{"text": "Carol Jones teaches physics in Lyon.", "title": "Carol"}, "Dave Brown plays chess."])
        assert len(ids) == 2
        result = mem.retrieve("Who teaches physics?", k=1)
        assert isinstance(result, QueryResult) and result.hits[0].passage_id == ids[0]
        assert result.hits[0].title == "Carol" and result.hits[0].span[1] > 0
        many = mem.retrieve_many(["Who plays chess?", "Who teaches physics?"], k=1)
        assert [r.hits[0].passage_id for r in many] == [ids[1], ids[0]]
        assert mem.info()["counts"]["passages"] == 2
        assert mem.delete([ids[1]]) == [ids[1]]
        with pytest.raises(ServerError) as err:
            mem.delete(["not-there"])
        assert err.value.status == 404 and "not-there" in str(err.value)
        assert "alice-client" in mem.namespaces()
        with pytest.raises(ServerError) as err:
            mem.namespace("bob").retrieve("x")
        assert err.value.status == 403


def _raw(port: int, data: bytes, close_after: float = 0.0) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(data)
        time.sleep(close_after)


def test_client_disconnecting_mid_request_leaves_nothing_half_written(server: ServerProcess, http: httpx.Client) -> None:
    body = json.dumps({"passages": [{"id": f"d{i}", "text": f"Disconnect test passage number {i} about owls."}
                                    for i in range(3)]}).encode()
    head = (f"POST /v1/ns/alice-cut/passages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY_A}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    _raw(server.port, head + body[: len(body) // 2])  # half the body, then gone: nothing may be written
    time.sleep(0.5)
    assert not (server.root / "alice-cut").exists()
    _raw(server.port, head + body)  # the whole body, gone before the answer: all of it or nothing
    h = auth(KEY_A)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and http.get("/v1/ns/alice-cut", headers=h).status_code == 404:
        time.sleep(0.2)
    info = http.get("/v1/ns/alice-cut", headers=h).json()
    assert info["counts"]["passages"] == 3
    ids, bad = index_state(server.root / "alice-cut")
    assert ids == {"d0", "d1", "d2"} and bad == []


def _reader(body: dict[str, object]) -> str | None:
    """The fake LLM's QA reader (tests/fake_openai.py serves it over real HTTP)."""
    last = str(body["messages"][-1]["content"])  # type: ignore[index]
    return "Thought: Acme Corp is in Berlin, the capital of Germany.\nAnswer: Germany" if "Berlin" in last else None


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory):
    """A server with low limits, and an LLM (the local fake OpenAI server) for ask."""
    from fake_openai import ReplayServer

    base = tmp_path_factory.mktemp("limited")
    keys = write_keys(base / "keys.json")
    with ReplayServer(handlers=[_reader]) as llm:
        args = ["--keys", str(keys), "--rate", "1", "--burst", "8", "--max-body-bytes", "4000", "--max-batch", "3",
                "--max-queries", "2", "--max-k", "10", "--read-timeout", "2", *HASHING, "--llm-base-url", llm.base_url,
                "--set", f"llm.cache={base / 'llm.sqlite'}"]
        with ServerProcess(base / "root", *args, env={"OPENAI_API_KEY": "fake"}) as srv:
            yield srv


def test_ask_with_an_llm(limited: ServerProcess) -> None:
    with hippo.Client(limited.url, KEY_A, namespace="alice-ask") as mem:
        mem.add(ALICE[:2])
        mem.add(ALICE[2:])
        answer = mem.answer("In which country is the company Alice Smith founded?", k=3)
    assert answer.answer == "Germany" and answer.passages and answer.retrieval.hits
    assert any("Berlin" in h.content for h in answer.passages)


def test_limits(limited: ServerProcess) -> None:
    with httpx.Client(base_url=limited.url, headers=auth(KEY_A), timeout=30) as c:
        big = c.post("/v1/ns/alice/passages", json={"passages": [{"text": "x" * 5000}]})
        assert big.status_code == 413 and big.json()["title"] == "Body Too Large"
        many = c.post("/v1/ns/alice/passages", json={"passages": [{"text": f"t{i}"} for i in range(4)]})
        assert many.status_code == 413 and "at most 3" in many.json()["detail"]
        qs = c.post("/v1/ns/alice/retrieve", json={"queries": ["a", "b", "c"]})
        assert qs.status_code == 413 and "at most 2" in qs.json()["detail"]
        assert c.get("/v1/ns/alice/retrieve", params={"q": "a", "k": 11}).status_code == 422
    with httpx.Client(base_url=limited.url, headers=auth(KEY_B), timeout=30) as c:
        codes = [c.get("/v1/ns/bob/retrieve", params={"q": "a"}) for _ in range(20)]
        limited_ = [r for r in codes if r.status_code == 429]
        assert limited_ and all(r.status_code in (200, 429) for r in codes)
        assert int(limited_[0].headers["retry-after"]) >= 1
    with httpx.Client(base_url=limited.url, headers=auth(KEY_READER), timeout=30) as c:
        assert c.get("/v1/ns/alice/retrieve", params={"q": "a"}).status_code == 200  # limits are per key


def test_a_body_that_never_arrives_times_out(limited: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", limited.port)) as s:
        s.sendall((f"POST /v1/ns/alice/passages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY_A}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"passages\"").encode())
        s.settimeout(10)
        t0 = time.monotonic()
        answer = s.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 408") and 1.5 < time.monotonic() - t0 < 8
    assert not (limited.root / "alice").exists()


def _serve(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["serve", *args])
    return code, capsys.readouterr().err


def test_startup_errors_are_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(tmp_path / "root")
    bad = {
        "missing": None,
        "malformed": "{not json",
        "no-namespace": json.dumps({"k" * 20: {"namespaces": [], "write": True}}),
        "bad-pattern": json.dumps({"k" * 20: {"namespaces": ["../etc"]}}),
        "unknown-field": json.dumps({"k" * 20: {"namespaces": ["a"], "admin": True}}),
    }
    for name, text in bad.items():
        path = tmp_path / f"{name}.json"
        if text is not None:
            path.write_text(text)
        code, err = _serve(capsys, "--root", root, "--keys", str(path))
        assert code == 1, name
        assert len(err.strip().splitlines()) == 1 and err.startswith("hippo: error:"), err
        assert "k" * 20 not in err  # a key is never printed
    (tmp_path / "file").write_text("x")
    keys = write_keys(tmp_path / "keys.json")
    code, err = _serve(capsys, "--root", str(tmp_path / "file" / "sub"), "--keys", str(keys))
    assert code == 1 and "not a writable folder" in err and len(err.strip().splitlines()) == 1
    code, err = _serve(capsys, "--root", root, "--no-auth", "--host", "0.0.0.0")
    assert code == 2 and "loopback" in err
    code, err = _serve(capsys, "--root", root)
    assert code == 2 and "--keys" in err


def test_serve_help_documents_the_contract(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    for word in ("--keys", "--no-auth", "--mcp-stdio", "--rate", "--max-body-bytes", "/v1/ns/{ns}/retrieve", "/mcp",
                 "remember", "recall", "problem details", "hashing:64", "503", "SIGTERM"):
        assert word in out, word


def test_graceful_shutdown_finishes_or_rejects_writes(tmp_path: Path) -> None:
    keys = write_keys(tmp_path / "keys.json")
    srv = ServerProcess(tmp_path / "root", "--keys", str(keys), "--rate", "0", *HASHING).start()
    outcomes: list[int] = []

    def write(i: int) -> None:
        try:
            r = httpx.post(srv.url + "/v1/ns/alice/passages", headers=auth(KEY_A), timeout=60,
                           json={"passages": [{"id": f"s{i}-{j}", "text": f"Shutdown passage {i}.{j} on herons."}
                                              for j in range(3)]})
            outcomes.append(r.status_code)
        except httpx.HTTPError:
            outcomes.append(-1)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    assert srv.stop(signal.SIGTERM) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean shutdown
    stopped = [json.loads(x) for x in srv.log().splitlines() if '"event": "stop"' in x]
    assert stopped and stopped[0]["unfinished"] == 0
    for t in threads:
        t.join()
    assert all(code in (200, 503, -1) for code in outcomes), outcomes
    stored, bad = index_state(tmp_path / "root" / "alice")
    assert bad == []
    for i in range(3):  # each request is either wholly in the index or not at all
        assert len({f"s{i}-{j}" for j in range(3)} & stored) in (0, 3)
    assert outcomes.count(200) <= len(stored) // 3


@pytest.mark.slow
def test_real_default_pipeline(tmp_path: Path) -> None:
    """The default embedder (all-MiniLM-L6-v2) and spaCy OpenIE, loaded once by the server."""
    import asyncio

    import httpx2
    from mcp.client import Client
    from mcp.client.streamable_http import streamable_http_client

    keys = write_keys(tmp_path / "keys.json")
    with ServerProcess(tmp_path / "root", "--keys", str(keys)) as srv:
        with hippo.Client(srv.url, KEY_A, namespace="alice") as mem:
            ids = mem.add(ALICE + [{"title": "Paris", "text": "Paris is the capital of France."}])
            result = mem.retrieve("In which country is the headquarters of the company Alice Smith founded?", k=2)
            assert result.mode == "ppr" and ids[1] in result.passage_ids
            assert mem.info()["embedder"]["id"] != "hashing:64"

        async def recall() -> dict[str, object]:
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY_A}"}, timeout=60)
            async with Client(streamable_http_client(srv.url + "/mcp", http_client=http)) as c:
                r = await c.call_tool("recall", {"namespace": "alice", "query": "Which city is the capital of France?",
                                                 "k": 1})
                assert r.structured_content is not None
                return r.structured_content

        out = asyncio.run(recall())
        assert out["memories"][0]["id"] == ids[3]  # type: ignore[index]
        loads = [x for x in srv.log().splitlines() if "Load pretrained SentenceTransformer" in x]
        assert len(loads) <= 1  # the model is loaded once per server process



def test_reads_stay_consistent_while_writes_merge_and_compact(tmp_path: Path) -> None:
    """Readers share an engine while the writer commits and its background policy merges and
    compacts (which renumbers rows): every hit must still be the passage its id names."""
    import asyncio

    from hippo.store import read_history

    keys = write_keys(tmp_path / "keys.json")
    policy = ["--set", "runtime.compact_min_rows=0", "--set", "runtime.compact_ratio=0.5", "--set", "runtime.max_segments=3"]
    written: dict[str, str] = {}
    statuses: list[int] = []
    checked = [0]

    async def run(url: str) -> None:
        done = asyncio.Event()
        async with httpx.AsyncClient(base_url=url, headers=auth(KEY_A), timeout=60) as c:
            async def writer() -> None:
                for i in range(24):
                    text = f"Person{i} Vale lives in City{i}."
                    written[f"c{i}"] = text  # readers may see it before the answer arrives
                    r = await c.post("/v1/ns/alice-churn/passages", json={"passages": [{"id": f"c{i}", "text": text}]})
                    statuses.append(r.status_code)
                    if i % 4 == 3:  # tombstones too
                        r = await c.request("DELETE", "/v1/ns/alice-churn/passages", json={"ids": [f"c{i - 2}"]})
                        statuses.append(r.status_code)
                done.set()

            async def reader(seed: int) -> None:
                n = seed
                while not done.is_set():
                    n += 7
                    r = await c.get("/v1/ns/alice-churn/retrieve", params={"q": f"Where does Person{n % 24} Vale live?",
                                                                           "k": 3})
                    statuses.append(r.status_code)
                    for hit in r.json().get("hits", []):
                        assert written.get(hit["passage_id"]) == hit["content"], hit
                        checked[0] += 1

            await asyncio.gather(writer(), *(reader(s) for s in range(6)))

    with ServerProcess(tmp_path / "root", "--keys", str(keys), "--rate", "0", *HASHING, *policy) as srv:
        asyncio.run(run(srv.url))
        info = httpx.get(srv.url + "/v1/ns/alice-churn", headers=auth(KEY_A)).json()
    assert set(statuses) == {200} and checked[0] > 50
    assert info["counts"]["passages"] == 24 - 6
    operations = [h["operation"] for h in read_history(tmp_path / "root" / "alice-churn")]
    assert "compact" in operations, operations
    ids, bad = index_state(tmp_path / "root" / "alice-churn")
    assert bad == [] and ids == set(written) - {f"c{i - 2}" for i in range(3, 24, 4)}


def test_a_format1_namespace_is_503_until_upgraded(http: httpx.Client, server: ServerProcess,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    folder = server.root / "alice-old"
    shutil.copytree(Path(__file__).parent / "fixtures" / "format1-tiny", folder)  # written before the living index
    h = auth(KEY_A)
    for r in (http.get("/v1/ns/alice-old/retrieve", params={"q": "Who founded Acme Corp?"}, headers=h),
              http.post("/v1/ns/alice-old/passages", json={"passages": [{"text": "Nia sings."}]}, headers=h)):
        assert r.status_code == 503 and r.json()["title"] == "Upgrade Needed" and "hippo upgrade" in r.json()["detail"]
        assert str(server.root) not in r.text  # the server's paths are not the client's business
    assert main(["upgrade", str(folder)]) == 0
    capsys.readouterr()
    r = http.get("/v1/ns/alice-old/retrieve", params={"q": "Who founded Acme Corp?", "k": 2}, headers=h)
    assert r.status_code == 200 and len(r.json()["hits"]) == 2
