"""Distributed indexing on a real two-node Ray cluster on this machine (``ray.cluster_utils``):
tasks on both nodes, a worker killed mid-stage, LLM OpenIE with the driver's response cache;
every index equal, file for file, to the single-process build (``stats.json`` aside)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from hippo.cli.main import main  # noqa: E402
from hippo.config import load_config  # noqa: E402
from hippo.distributed import RayRunner, connect  # noqa: E402
from hippo.distributed.verify import file_count, index_differences  # noqa: E402
from hippo.indexer import build_index  # noqa: E402

pytestmark = pytest.mark.ray

SAMPLE = Path(__file__).resolve().parent.parent / "graphs" / "sample"
SLICE = 60
"""Passages of the sample indexed here (all 119 take twice as long, and show nothing more)."""
SETTINGS = {"runtime.checkpoint_passages": 8, "runtime.checkpoint_strings": 192}
"""Small checkpoints, so that each stage has enough parts for both nodes."""
HASHING = {**SETTINGS, "embed.model": "hashing:64"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.json"
    path.write_text(json.dumps(json.loads((SAMPLE / "corpus.json").read_text())[:SLICE]))
    return path


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 200 << 20,
                                                      "include_dashboard": False})
    c.add_node(num_cpus=1, object_store_memory=200 << 20)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False, logging_level="WARNING")
    yield c
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def config():
    return load_config().replace(SETTINGS)


@pytest.fixture(scope="module")
def local_index(tmp_path_factory, config, corpus):
    out = tmp_path_factory.mktemp("local") / "idx"
    build_index(corpus, out, config)
    return out


def test_two_nodes_run_both_stages_and_write_the_local_index(cluster, config, corpus, local_index, tmp_path):
    nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert len(nodes) == 2
    seen: dict[str, list[str]] = {"extract": [], "embed": []}
    runner = RayRunner(connect(cluster.address), on_result=lambda stage, r: seen[stage].append(r["node"]))
    report = build_index(corpus, tmp_path / "idx", config, runner=runner)
    summary = runner.summary()
    assert summary["cluster"]["nodes"] == 2 and summary["extract"]["workers"] == 2 == summary["embed"]["workers"]
    for stage in ("extract", "embed"):
        assert set(seen[stage]) == nodes, f"{stage} parts ran on {set(seen[stage])}, not on both nodes"
        assert summary[stage]["rows_per_s"] > 0
    assert len(seen["extract"]) == summary["extract"]["parts"] == -(-report.counts["passages"] // 8)
    assert summary["embed"]["rows"] == report.counts["distinct_strings_embedded"]
    assert file_count(local_index) > 30
    assert index_differences(local_index, tmp_path / "idx") == []
    assert not (tmp_path / "idx" / ".work").exists()  # the resume cache went with the commit


def test_a_worker_killed_mid_stage_still_gives_the_same_index(cluster, config, corpus, local_index, tmp_path):
    killed: list[tuple[str, int]] = []
    finished = {"extract": 0, "embed": 0}

    def kill_once(stage: str, record: dict[str, Any]) -> None:
        # after the first finished part of each stage, SIGKILL the actor that made it: it is
        # alive and holds queued parts, which Ray must retry on a restarted actor
        finished[stage] += 1
        if finished[stage] == 1:
            os.kill(record["pid"], signal.SIGKILL)
            killed.append((stage, record["pid"]))

    runner = RayRunner(connect(cluster.address), on_result=kill_once)
    build_index(corpus, tmp_path / "idx", config, runner=runner)
    assert [s for s, _ in killed] == ["extract", "embed"]
    summary = runner.summary()
    for stage, pid in killed:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        # the pool replaced the killed actor (or its peer finished the parts): every part came back
        assert summary[stage]["parts"] == sum(summary[stage]["parts_by_node"].values())
    assert summary["embed"]["worker_processes"] >= 2
    assert index_differences(local_index, tmp_path / "idx") == []


def test_cli_ray_precomputed_openie_reports_stages_and_equals_local(cluster, corpus, tmp_path, capsys):
    # the precomputed extractor travels to the workers with its OpenIE table (no shared file)
    sets = [x for k, v in HASHING.items() for x in ("--set", f"{k}={v}")] + ["--openie", str(SAMPLE / "openie_gpt-3.5-turbo-1106.json")]
    assert main(["index", str(corpus), "--out", str(tmp_path / "local"), "--json", *sets]) == 0
    capsys.readouterr()
    code = main(["index", str(corpus), "--out", str(tmp_path / "idx"), "--ray", cluster.address, "--json", *sets])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["ray"]["extract"]["rows"] == out["counts"]["passages"] == SLICE
    assert out["ray"]["embed"]["rows"] == out["counts"]["distinct_strings_embedded"]
    assert set(out["timings_s"]) >= {"extract", "embed", "synonymy", "graph", "write"}
    assert index_differences(tmp_path / "local", tmp_path / "idx") == []
    assert ray.is_initialized()  # a connection the CLI did not make is left open


def test_bad_ray_flags_are_one_clear_error(tmp_path, capsys):
    code = main(["index", str(SAMPLE / "corpus.json"), "--out", str(tmp_path / "idx"), "--ray", "local", "--ray-workers", "0"])
    assert code != 0 and "--ray-workers must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "idx").exists()


@pytest.mark.llm
def test_llm_openie_on_ray_keeps_one_cache_on_the_driver(cluster, tmp_path, monkeypatch):
    from fake_openai import Recording, ReplayServer

    from hippo.llm.cache import ResponseCache
    from hippo.llm.indexing import index_with_llm

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    items = json.loads((SAMPLE / "corpus.json").read_text())[:40]
    corpus = tmp_path / "corpus.json"
    corpus.write_text(json.dumps(items))
    recording = Recording(SAMPLE / "openie_gpt-3.5-turbo-1106.json")
    cache = tmp_path / "llm-cache.sqlite"  # one path, so the two indexes' configs are the same
    with ReplayServer(recording, error_rate=0.15, seed=3) as server:
        base = load_config().replace({"embed.model": "hashing:64", "llm.base_url": server.base_url, "llm.cache": str(cache),
                                      "llm.backoff_base": 0.001, "runtime.checkpoint_passages": 8})
        local = index_with_llm(corpus, tmp_path / "local", base)
        local_rows = len(ResponseCache(cache))
        cache.rename(tmp_path / "local-cache.sqlite")
        first = len(server.requests)
        runner = RayRunner(connect(cluster.address))
        remote = index_with_llm(corpus, tmp_path / "ray", base, runner=runner)
        assert sum(runner.summary()["llm_openie"]["parts_by_node"].values()) == 5  # 40 passages in parts of 8
        # (which nodes run them is Ray's choice; test_two_nodes checks that both nodes work)
        assert remote.usage["openie.ner"]["calls"] >= 40 and remote.usage["openie.ner"]["retries"] > 0
        # the driver's cache now holds every reply: a rerun into a new index asks the server nothing
        asked = len(server.requests)
        again = index_with_llm(corpus, tmp_path / "again", base, runner=RayRunner(connect(cluster.address)))
        assert len(server.requests) == asked and again.usage["openie.ner"]["cache_hits"] == 40
    assert first >= 80 and not local.failures and not remote.failures
    assert local_rows == len(ResponseCache(cache)) == 80
    assert index_differences(tmp_path / "local", tmp_path / "ray") == []
    assert index_differences(tmp_path / "local", tmp_path / "again") == []
