"""Isolation: 1,000 seeded randomized attempts to reach namespace B's data with A's key, over REST
(raw request targets, so ``..``, ``%2e%2e`` and encoded slashes reach the server verbatim) and MCP.
Every attempt must be answered 403 or 404 and no answer may hold B's data."""

from __future__ import annotations

import asyncio
import http.client
import json
import random
from typing import Any

import httpx
import pytest

pytest.importorskip("mcp")

import httpx2  # noqa: E402
from mcp.client import Client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from serve_proc import HASHING, KEY_A, KEY_B, ServerProcess, write_keys  # noqa: E402

SECRETS = [f"The vault code of Quentin Marsh is QX{7000 + i}ZR and his safe is in Reykjavik." for i in range(8)]
MARKERS = [f"QX{7000 + i}ZR" for i in range(8)] + ["Quentin", "Reykjavik"]
BOB_IDS = [f"bob-secret-{i}" for i in range(8)]
# namespace spellings that must all be refused (403) or not found (404) for A's key
PATH_NAMES = [
    "bob", "%62ob", "%62%6f%62", "BOB", "Bob", "bob%00", "bob%2f", "bob%2F", "alice%2f..%2fbob", "alice%2F%2E%2E%2Fbob",
    "alice/../bob", "../bob", "..%2fbob", "%2e%2e/bob", "%2e%2e%2fbob", "%2E%2E%2Fbob", "alice/%2e%2e/bob", "./bob",
    "%2e/bob", "bob;x", "bob%3bx", "alice-..%2fbob", "%2fbob", "%2f%2fbob", "..", "%2e%2e", ".", "bob%20", "%20bob",
    "b%2a", "%2a", "alice%00bob", "bob%23", "bob%3F", "alice%5cbob", "..%5cbob", "%c0%aebob",
]
TOOL_NAMES = [
    "bob", "../bob", "alice/../bob", "..", "%2e%2e", "%2e%2e/bob", "bob/", "alice/bob", "alice/../../bob", "*", "b*",
    "bo?", "", "BOB", "bob\x00", "./bob", "alice-/../bob", "alice\\..\\bob", "/bob", "bob ", " bob", "alice-x/../../bob",
]
ENDPOINTS = [
    ("GET", "/v1/ns/{ns}/retrieve?q=vault%20code&k=5", None),
    ("GET", "/v1/ns/{ns}", None),
    ("POST", "/v1/ns/{ns}/retrieve", {"queries": ["vault code", "safe"], "k": 5}),
    ("POST", "/v1/ns/{ns}/passages", {"passages": [{"text": "planted by A"}]}),
    ("PUT", "/v1/ns/{ns}/passages", {"passages": [{"id": "bob-secret-0", "text": "overwritten by A"}]}),
    ("DELETE", "/v1/ns/{ns}/passages", {"ids": ["bob-secret-1"]}),
    ("POST", "/v1/ns/{ns}/ask", {"question": "What is the vault code?"}),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("iso")
    keys = write_keys(base / "keys.json")
    with ServerProcess(base / "root", "--keys", str(keys), "--rate", "0", *HASHING) as srv:
        ok = httpx.post(srv.url + "/v1/ns/bob/passages", headers={"Authorization": f"Bearer {KEY_B}"}, timeout=60,
                        json={"passages": [{"id": i, "text": t} for i, t in zip(BOB_IDS, SECRETS)]})
        assert ok.status_code == 200, ok.text
        ok = httpx.post(srv.url + "/v1/ns/alice/passages", headers={"Authorization": f"Bearer {KEY_A}"}, timeout=60,
                        json={"passages": [{"id": "a1", "text": "Alice keeps her vault code in a notebook."}]})
        assert ok.status_code == 200, ok.text
        yield srv


def _rest_attempts(rng: random.Random, n: int) -> list[tuple[str, str, Any]]:
    out = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.8:
            method, template, body = rng.choice(ENDPOINTS)
            out.append((method, template.replace("{ns}", rng.choice(PATH_NAMES)), body))
        elif kind < 0.9:  # B's ids through A's own namespace
            ids = rng.sample(BOB_IDS, rng.randint(1, 3)) + (["a1"] if rng.random() < 0.5 else [])
            out.append(("DELETE", "/v1/ns/alice/passages", {"ids": ids}))
        else:  # other versions and prefixes of the API
            ns = rng.choice(["bob", "%62ob", "..%2fbob"])
            out.append((rng.choice(["GET", "POST"]), rng.choice([f"/v1/ns/{ns}/passages", f"/v2/ns/{ns}/retrieve?q=x",
                                                                   f"/v1/../v1/ns/{ns}/retrieve?q=x", f"//v1/ns/{ns}"]), None))
    return out


def _leaks(text: str) -> list[str]:
    return [m for m in MARKERS if m in text]


def _rest(server: ServerProcess, attempts: list[tuple[str, str, Any]]) -> list[str]:
    problems = []
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    for method, target, body in attempts:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {KEY_A}", "Content-Type": "application/json"}
        conn.request(method, target, body=data, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
        if resp.status not in (403, 404):
            problems.append(f"{method} {target}: {resp.status} {text[:200]}")
        if _leaks(text):
            problems.append(f"{method} {target}: LEAK {_leaks(text)}")
        if resp.getheader("connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.close()
    return problems


async def _mcp(server: ServerProcess, rng: random.Random, n: int) -> list[str]:
    problems = []
    client = Client(streamable_http_client(
        server.url + "/mcp", http_client=httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY_A}"}, timeout=60)))
    async with client as c:
        for _ in range(n):
            ns = rng.choice(TOOL_NAMES)
            tool = rng.choice(["recall", "explain", "remember", "forget", "forget_ids"])
            if tool in ("recall", "explain"):
                args: dict[str, Any] = {"namespace": ns, "query": rng.choice(["vault code", "Where is the safe?"])}
            elif tool == "remember":
                args = {"namespace": ns, "text": "planted by A", "id": rng.choice(BOB_IDS)}
            elif tool == "forget":
                args = {"namespace": ns, "ids": rng.sample(BOB_IDS, 2)}
            else:  # B's ids through A's own namespace
                tool, args = "forget", {"namespace": "alice", "ids": rng.sample(BOB_IDS, 2)}
            r = await c.call_tool(tool, args)
            text = " ".join(getattr(x, "text", "") for x in r.content) + json.dumps(r.structured_content)
            refused = r.is_error and any(t in text for t in ("Forbidden:", "Not Found:", "Unknown Ids:"))
            if not refused:
                problems.append(f"{tool} {args!r}: not refused: {text[:200]}")
            if _leaks(text):
                problems.append(f"{tool} {args!r}: LEAK {_leaks(text)}")
    return problems


def test_a_key_never_reaches_b(server: ServerProcess) -> None:
    rng = random.Random(19)
    rest = _rest_attempts(rng, 750)
    problems = _rest(server, rest)
    problems += asyncio.run(_mcp(server, rng, 250))
    assert not problems, f"{len(problems)} of 1000 attempts misbehaved:\n" + "\n".join(problems[:20])
    with httpx.Client(base_url=server.url, timeout=60) as c:
        b = c.get("/v1/ns/bob", headers={"Authorization": f"Bearer {KEY_B}"}).json()
        assert b["counts"]["passages"] == len(SECRETS)  # nothing planted, overwritten or deleted
        hits = c.get("/v1/ns/bob/retrieve", params={"q": "vault code of Quentin Marsh", "k": 8},
                     headers={"Authorization": f"Bearer {KEY_B}"}).json()["hits"]
        assert sorted(h["passage_id"] for h in hits) == sorted(BOB_IDS)
        assert {h["content"] for h in hits} == set(SECRETS)
        a = c.get("/v1/ns/alice", headers={"Authorization": f"Bearer {KEY_A}"}).json()
        assert a["counts"]["passages"] == 1
        listed = c.get("/v1/ns", headers={"Authorization": f"Bearer {KEY_A}"}).json()
        assert [n["name"] for n in listed["namespaces"]] == ["alice"]
        mine = c.get("/v1/ns/alice/retrieve", params={"q": "vault code Quentin Marsh Reykjavik", "k": 10},
                     headers={"Authorization": f"Bearer {KEY_A}"}).text
        assert not _leaks(mine.replace("vault code Quentin Marsh Reykjavik", ""))
