"""Pieces of ``hippo serve`` that need no server: keys, names, the rate limiter, read batching,
and the JSON form of results (the HTTP behaviour is tested against real servers elsewhere)."""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("fastapi")

from hippo.serve.app import RateLimiter  # noqa: E402
from hippo.serve.batching import ReadBatcher  # noqa: E402
from hippo.serve.keys import KeysError, NamespaceError, bearer, check_namespace, load_keys, parse_keys  # noqa: E402
from hippo.serve.wire import result_from_json, result_json  # noqa: E402
from hippo.testing import make_engine  # noqa: E402
from hippo.types import QueryResult  # noqa: E402


def test_namespace_names_are_plain_folder_names() -> None:
    for ok in ("alice", "team-1", "a", "x_y", "0" * 64):
        assert check_namespace(ok) == ok
    for bad in ("", "..", ".", "../bob", "a/b", "a\\b", "Alice", "bob ", "-x", "_x", "a.b", "%2e%2e", "a\x00", "é",
                "0" * 65, "*"):
        with pytest.raises(NamespaceError):
            check_namespace(bad)


def test_keys_grant_names_and_patterns() -> None:
    ring, warnings = parse_keys(json.dumps({
        "long-key-0123456789abcdef": {"namespaces": ["alice", "team-*"], "write": True, "name": "app"},
        "short": {"namespaces": ["b?b"]},
    }), "keys.json")
    app = ring.lookup("long-key-0123456789abcdef")
    assert app is not None and app.name == "app" and app.write and not app.metrics
    assert app.allows("alice") and app.allows("team-red") and not app.allows("team") and not app.allows("alice2")
    other = ring.lookup("short")
    assert other is not None and other.allows("bob") and not other.write and other.name.startswith("key-")
    assert ring.lookup("nope") is None and ring.lookup("") is None
    assert len(warnings) == 1 and "short" not in warnings[0].split("(")[0]
    assert bearer("Bearer abc") == "abc" and bearer("bearer  abc ") == "abc"
    assert bearer("Basic abc") is None and bearer("Bearer") is None and bearer(None) is None


@pytest.mark.parametrize("text, words", [
    ("[]", "non-empty JSON object"),
    ('{"k": {"namespaces": []}}', "grants no namespace"),
    ('{"k": {"write": true}}', "grants no namespace"),
    ('{"k": {"namespaces": ["a/../b"]}}', "not a namespace name or pattern"),
    ('{"k": {"namespaces": ["a"], "write": "yes"}}', '"write" must be true or false'),
    ('{"k": {"namespaces": ["a"], "root": true}}', "unknown field(s) root"),
    ('{"k": ["a"]}', "expected an object"),
    ('{"a key": {"namespaces": ["a"]}}', "without spaces"),
    ("{nope", "malformed JSON"),
])
def test_bad_keys_are_one_clear_error(text: str, words: str) -> None:
    with pytest.raises(KeysError) as err:
        parse_keys(text, "keys.json")
    assert words in str(err.value) and "\n" not in str(err.value)


def test_keys_from_the_environment(tmp_path) -> None:
    assert load_keys(None, env={}) is None
    loaded = load_keys(None, env={"HIPPO_SERVE_KEYS": '{"k-0123456789abcdef": {"namespaces": ["a"]}}'})
    assert loaded is not None and loaded[0].lookup("k-0123456789abcdef") is not None
    with pytest.raises(KeysError, match="not found"):
        load_keys(tmp_path / "missing.json", env={})


def test_rate_limiter_is_a_token_bucket() -> None:
    limiter = RateLimiter(rate=10.0, burst=3)
    assert [limiter.wait_for("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.wait_for("a")
    assert 0.0 < wait <= 0.1
    assert limiter.wait_for("b") == 0.0  # per key
    assert RateLimiter(rate=0, burst=1).wait_for("a") == 0.0


def test_read_batcher_coalesces_concurrent_queries_and_keeps_order() -> None:
    calls: list[list[str]] = []

    async def run(ns: str, queries: list[str], k: int, retriever: str) -> list[QueryResult]:
        calls.append(list(queries))
        await asyncio.sleep(0.01)
        return [QueryResult(q, retriever, f"{ns}:{k}", ()) for q in queries]

    async def main() -> list[QueryResult]:
        batcher = ReadBatcher(run, max_batch=8, drivers=1)
        return await asyncio.gather(*(batcher.retrieve("ns", f"q{i}", 5, "hippo") for i in range(20)))

    results = asyncio.run(main())
    assert [r.query for r in results] == [f"q{i}" for i in range(20)] and all(r.mode == "ns:5" for r in results)
    assert [len(c) for c in calls] == [8, 8, 4]  # all 20 were queued before the one driver started
    calls.clear()

    async def alone() -> QueryResult:
        return await ReadBatcher(run, max_batch=8, drivers=1).retrieve("ns", "lone", 5, "hippo")

    assert asyncio.run(alone()).query == "lone" and calls == [["lone"]]


def test_read_batcher_hands_an_error_to_every_waiting_request() -> None:
    async def run(ns: str, queries: list[str], k: int, retriever: str) -> list[QueryResult]:
        raise ValueError("broken index")

    async def main() -> list[object]:
        batcher = ReadBatcher(run, max_batch=8, drivers=2)
        return await asyncio.gather(*(batcher.retrieve("ns", f"q{i}", 5, "hippo") for i in range(5)),
                                    return_exceptions=True)

    assert all(isinstance(r, ValueError) for r in asyncio.run(main()))


def test_results_survive_the_json_round_trip(tmp_path) -> None:
    engine = make_engine(tmp_path / "idx")
    result = engine.retrieve("Where is the company Alice Smith founded?", k=3)
    assert result.facts and result.seeds
    back = result_from_json(json.loads(json.dumps(result_json(result))))
    assert back == result


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="glibc's malloc_trim: Linux only")
def test_trim_heap_hands_freed_heap_pages_back() -> None:
    """Freed blocks below a live one stay in the C heap until malloc_trim returns their pages."""
    import ctypes

    from hippo.serve.writers import trim_heap

    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]

    def rss_mb() -> float:
        with open("/proc/self/status") as f:
            return next(int(x.split()[1]) for x in f if x.startswith("VmRSS")) / 1024

    blocks = [libc.malloc(8192) for _ in range(12_000)]  # ~94 MB on the heap (below the mmap threshold)
    for b in blocks:
        libc.memset(b, 1, 8192)
    for b in blocks[:-1]:  # the last one keeps the heap's top in use: free() cannot shrink it
        libc.free(b)
    held = rss_mb()
    trim_heap()
    assert held - rss_mb() > 50
    libc.free(blocks[-1])
