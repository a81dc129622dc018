"""The MCP server through the official SDK client: streamable HTTP and stdio (a real subprocess)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("mcp")

import httpx2  # noqa: E402
from mcp.client import Client  # noqa: E402
from mcp.client.stdio import StdioServerParameters  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from serve_proc import HASHING, KEY_A, KEY_READER, REPO, ServerProcess, env_with_repo, keyed_server, write_keys  # noqa: E402

TOOLS = {"remember", "recall", "forget", "explain", "list_namespaces"}


def http_client(url: str, key: str | None) -> Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return Client(streamable_http_client(url + "/mcp", http_client=httpx2.AsyncClient(headers=headers, timeout=60)))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    with keyed_server(tmp_path_factory.mktemp("mcp")) as srv:
        yield srv


async def _session(url: str, key: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with http_client(url, key) as c:
        tools = (await c.list_tools()).tools
        out["tools"] = {t.name: t for t in tools}
        r = await c.call_tool("remember", {"namespace": "alice-mcp", "text": "Erin Walsh keeps bees in Cork.",
                                           "title": "Erin", "metadata": {"source": "chat", "turn": 4}})
        out["remember"] = r
        await c.call_tool("remember", {"namespace": "alice-mcp", "text": "Cork is a city in Ireland."})
        out["recall"] = await c.call_tool("recall", {"namespace": "alice-mcp", "query": "Who keeps bees?", "k": 2})
        out["explain"] = await c.call_tool("explain", {"namespace": "alice-mcp", "query": "Where does Erin Walsh live?"})
        out["list"] = await c.call_tool("list_namespaces", {})
        out["other"] = await c.call_tool("recall", {"namespace": "bob", "query": "anything"})
        out["bad"] = await c.call_tool("recall", {"namespace": "../bob", "query": "anything"})
        out["badarg"] = await c.call_tool("recall", {"namespace": "alice-mcp", "query": ""})
        stored = out["remember"].structured_content["ids"]
        out["forget"] = await c.call_tool("forget", {"namespace": "alice-mcp", "ids": stored})
        out["forget_again"] = await c.call_tool("forget", {"namespace": "alice-mcp", "ids": stored})
        out["after"] = await c.call_tool("recall", {"namespace": "alice-mcp", "query": "Who keeps bees?", "k": 5})
    return out


def test_mcp_over_streamable_http(server: ServerProcess) -> None:
    out = asyncio.run(_session(server.url, KEY_A))
    tools = out["tools"]
    assert TOOLS <= set(tools)
    for name in TOOLS:
        assert tools[name].description and len(tools[name].description) > 60, name
        assert tools[name].output_schema is not None, name
    for name in ("remember", "recall", "forget", "explain"):
        props = tools[name].input_schema["properties"]
        assert "namespace" in props and props["namespace"]["description"], name
        assert "namespace" in tools[name].input_schema["required"]
    stored = out["remember"].structured_content
    assert not out["remember"].is_error and stored["namespace"] == "alice-mcp" and len(stored["ids"]) == 1
    recalled = out["recall"].structured_content
    assert recalled["memories"][0]["id"] == stored["ids"][0] and "bees" in recalled["memories"][0]["text"]
    assert recalled["memories"][0]["metadata"] == {"source": "chat", "turn": 4}
    explained = out["explain"].structured_content
    assert explained["mode"] in ("ppr", "dense") and "facts" in explained and "seeds" in explained
    assert out["list"].structured_content["namespaces"] == ["alice-mcp"]
    assert out["list"].structured_content["write"] is True
    assert out["other"].is_error and out["other"].content[0].text.count("Forbidden:") == 1
    assert out["bad"].is_error and out["bad"].content[0].text.count("Not Found:") == 1
    assert out["badarg"].is_error
    assert out["forget"].structured_content["deleted"] == stored["ids"]
    assert out["forget_again"].is_error and "Unknown Ids" in out["forget_again"].content[0].text
    assert all(m["id"] not in stored["ids"] for m in out["after"].structured_content["memories"])


def test_mcp_read_only_key_and_no_key(server: ServerProcess) -> None:
    async def run() -> Any:
        async with http_client(server.url, KEY_READER) as c:
            return await c.call_tool("remember", {"namespace": "alice", "text": "not allowed"})

    r = asyncio.run(run())
    assert r.is_error and "may read but not write" in r.content[0].text
    resp = httpx.post(server.url + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                      headers={"Accept": "application/json, text/event-stream"})
    assert resp.status_code == 401 and resp.json()["title"] == "Unauthorized"


def test_mcp_over_stdio_subprocess(tmp_path: Path) -> None:
    keys = write_keys(tmp_path / "keys.json")
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "hippo.cli.main", "serve", "--root", str(tmp_path / "root"), "--keys", str(keys), "--mcp-stdio",
              *HASHING],
        env=env_with_repo({"HIPPO_API_KEY": KEY_A}), cwd=str(REPO),
    )

    async def run() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with Client(params, read_timeout_seconds=120) as c:
            out["tools"] = {t.name for t in (await c.list_tools()).tools}
            out["remember"] = await c.call_tool("remember", {"namespace": "alice", "text": "Frank Li sails to Oslo."})
            out["recall"] = await c.call_tool("recall", {"namespace": "alice", "query": "Who sails?"})
            out["other"] = await c.call_tool("recall", {"namespace": "bob", "query": "Who sails?"})
        return out

    with open(tmp_path / "stderr.log", "w") as errlog:
        sys_stderr, sys.stderr = sys.stderr, errlog
        try:
            out = asyncio.run(run())
        finally:
            sys.stderr = sys_stderr
    assert TOOLS <= out["tools"]
    assert not out["remember"].is_error
    assert out["recall"].structured_content["memories"][0]["text"] == "Frank Li sails to Oslo."
    assert out["other"].is_error and out["other"].content[0].text.count("Forbidden:") == 1
    assert (tmp_path / "root" / "alice" / "CURRENT").exists()
    log = (tmp_path / "stderr.log").read_text()
    assert KEY_A not in log
    assert all(json.loads(line) for line in log.splitlines() if line.startswith("{"))
