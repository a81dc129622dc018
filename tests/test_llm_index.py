"""``hippo index --extractor llm`` end to end against the replay server (real HTTP on 127.0.0.1)
on the bundled MuSiQue sample, with the hashing embedder to stay fast."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fake_openai import Recording, ReplayServer

from hippo.cli.main import main
from hippo.config import LLMConfig
from hippo.corpus import read_corpus
from hippo.errors import ExtractionError
from hippo.extract.llm_ie import LLMExtractor
from hippo.llm import make_llm_client
from hippo.llm.indexing import FAILURES_FILE, openie_file_name
from hippo.llm.prompts import ner_messages, triple_messages

pytestmark = pytest.mark.llm

SAMPLE = Path(__file__).resolve().parent.parent / "graphs" / "sample"
OPENIE = SAMPLE / "openie_gpt-3.5-turbo-1106.json"
SLICE = 40


@pytest.fixture(scope="module")
def recording():
    return Recording(OPENIE)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    items = json.loads((SAMPLE / "corpus.json").read_text())[:SLICE]
    path = tmp_path_factory.mktemp("corpus") / "corpus.json"
    path.write_text(json.dumps(items))
    return path


@pytest.fixture(autouse=True)
def _no_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def index(capsys, corpus, out, server, cache, *extra):
    code = main([
        "index", str(corpus), "--out", str(out), "--extractor", "llm", "--llm-base-url", server.base_url,
        "--llm-concurrency", "8", "--json", "--set", "embed.model=hashing:64", "--set", f"llm.cache={cache}",
        "--set", "llm.backoff_base=0.001", *extra,
    ])
    out_text, err = capsys.readouterr()
    return code, (json.loads(out_text) if out_text.strip() else None), err


def generation_files(out: Path) -> dict[str, bytes]:
    from hippo.store import read_manifest

    seg = out / read_manifest(out)["segments"][0]["name"]
    names = ["passage_ids.bin", "entity_names.bin", "fact_relations.bin", "extractions.jsonl", "edge_src.npy", "edge_dst.npy",
             "edge_weight.npy", "edge_kind.npy", "entity_passage_count.npy", "fact_subject.npy", "fact_object.npy"]
    return {n: (seg / n).read_bytes() for n in names}


def test_prompts_keep_the_wire_contract(corpus):
    passage = read_corpus(corpus)[0].content
    ner = ner_messages(passage)
    tri = triple_messages(passage, ["A", "B"])
    assert passage in ner[-1]["content"] and passage in tri[-1]["content"]
    assert ner[-1]["role"] == tri[-1]["role"] == "user"
    assert "triple" not in " ".join(m["content"] for m in ner).replace(passage, "").lower()
    assert '{"named_entities"' in ner[0]["content"] and '{"triples"' in tri[0]["content"]


def test_llm_index_equals_precomputed_import_and_reimports(capsys, corpus, recording, tmp_path):
    with ReplayServer(recording) as server:
        code, report, _ = index(capsys, corpus, tmp_path / "llm", server, tmp_path / "c.sqlite")
    assert code == 0, report
    assert report["openie"]["failed"] == 0 and report["openie"]["extracted"] == SLICE
    assert report["llm_usage"]["openie.ner"]["calls"] == SLICE == report["llm_usage"]["openie.triples"]["calls"]
    common = ["--set", "embed.model=hashing:64", "--json"]
    assert main(["index", str(corpus), "--out", str(tmp_path / "pre"), "--openie", str(OPENIE), *common]) == 0
    pre = json.loads(capsys.readouterr()[0])
    assert report["counts"]["entities"] == pre["counts"]["entities"] and report["counts"]["facts"] == pre["counts"]["facts"]
    assert report["counts"]["edges"] == pre["counts"]["edges"]
    assert generation_files(tmp_path / "llm") == generation_files(tmp_path / "pre")
    # the HippoRAG-format OpenIE file written beside the index re-imports to the same index
    written = tmp_path / "llm" / openie_file_name("gpt-4o-mini")
    doc = json.loads(written.read_text())
    assert len(doc["docs"]) == SLICE and {"idx", "passage", "extracted_entities", "extracted_triples"} <= set(doc["docs"][0])
    assert main(["index", str(corpus), "--out", str(tmp_path / "re"), "--openie", str(written), *common]) == 0
    capsys.readouterr()
    assert generation_files(tmp_path / "re") == generation_files(tmp_path / "pre")
    assert json.loads((tmp_path / "llm" / "CURRENT").read_text())["extractor"]["name"] == "hippo.extractor.llm.v1"


def test_faults_lose_nothing_and_a_rerun_makes_no_call(capsys, corpus, recording, tmp_path):
    with ReplayServer(recording, error_rate=0.2, timeout_rate=0.05, hold_seconds=0.8, seed=7) as server:
        code, report, err = index(capsys, corpus, tmp_path / "idx", server, tmp_path / "c.sqlite",
                                  "--set", "llm.timeout=0.3", "--set", "llm.max_retries=8")
        assert code == 0, err
        assert server.count("error500") > 0 and server.count("timeout") > 0
        assert report["openie"]["failed"] == 0 and report["counts"]["passages"] == SLICE
        retries = sum(u["retries"] for u in report["llm_usage"].values())
        assert retries == server.count("error500") + server.count("timeout")
        served = len(server.requests)
        # a second run into a fresh directory (same cache): every reply from the cache
        code, again, _ = index(capsys, corpus, tmp_path / "idx2", server, tmp_path / "c.sqlite")
        assert code == 0 and len(server.requests) == served
        assert all(u["calls"] == 0 and u["cache_hits"] == SLICE for u in again["llm_usage"].values())
        assert {k: again["counts"][k] for k in ("passages", "entities", "facts", "edges")} == {
            k: report["counts"][k] for k in ("passages", "entities", "facts", "edges")}


def test_garbage_and_truncated_replies_give_a_partial_index_that_a_rerun_completes(capsys, corpus, recording, tmp_path):
    passages = read_corpus(corpus)
    garbage = {passages[2].content, passages[11].content}
    truncate = {passages[5].content}
    out = tmp_path / "idx"
    with ReplayServer(recording, garbage=garbage.__contains__, truncate=truncate.__contains__) as server:
        code, report, err = index(capsys, corpus, out, server, tmp_path / "c.sqlite")
        assert code == 3
        bad_ids = {passages[i].id for i in (2, 5, 11)}
        assert {f["passage_id"] for f in report["openie"]["failures"]} == bad_ids
        assert report["counts"]["passages"] == SLICE - 3
        stages = {f["passage_id"]: (f["stage"], f["reason"]) for f in report["openie"]["failures"]}
        assert stages[passages[5].id][0] == "triples" and "length limit" in stages[passages[5].id][1]
        assert stages[passages[2].id][0] == "entities"
        failures = json.loads((out / FAILURES_FILE).read_text())
        assert {f["passage_id"] for f in failures["failures"]} == bad_ids and failures["failed"] == 3
        assert "partial index: 3 of 40" in err and str(out / FAILURES_FILE) in err
        for pid in bad_ids:
            assert pid in err
        from hippo.live.snapshot import Snapshot

        indexed = set(Snapshot.open(out).passage_ids)
        assert not indexed & bad_ids
        # the healthy re-run asks only for the three
        server.heal()
        before = len(server.requests)
        code, report2, _ = index(capsys, corpus, out, server, tmp_path / "c.sqlite")
        assert code == 0 and report2["counts"]["passages"] == SLICE
        asked = server.requests[before:]
        # both steps of the two garbage passages; only the triple step of the truncated one,
        # whose entity reply was fine and is cached
        assert len(asked) == 2 * 2 + 1
        assert not (out / FAILURES_FILE).exists()
        assert len(json.loads((out / openie_file_name("gpt-4o-mini")).read_text())["docs"]) == SLICE


def test_unreachable_server_writes_nothing(capsys, corpus, tmp_path):
    out = tmp_path / "idx"
    code = main(["index", str(corpus), "--out", str(out), "--extractor", "llm", "--llm-base-url", "http://127.0.0.1:9/v1",
                 "--set", "embed.model=hashing:64", "--set", "llm.cache=off", "--set", "llm.max_retries=1",
                 "--set", "llm.backoff_base=0.001"])
    _, err = capsys.readouterr()
    assert code == 1 and not out.exists()
    assert err.count("\n") == 1 and "cannot reach the LLM server" in err and "--llm-base-url" in err


def test_no_key_and_no_server_is_a_usage_error(capsys, corpus, tmp_path):
    code = main(["index", str(corpus), "--out", str(tmp_path / "x"), "--extractor", "llm", "--set", "embed.model=hashing:64"])
    _, err = capsys.readouterr()
    assert code == 2 and "OPENAI_API_KEY" in err and "--llm-base-url" in err and err.count("\n") == 1


def test_every_passage_failing_writes_nothing(capsys, corpus, recording, tmp_path):
    with ReplayServer(recording, garbage=lambda p: True) as server:
        code, report, err = index(capsys, corpus, tmp_path / "idx", server, tmp_path / "c.sqlite")
    assert code == 1 and report is None and not (tmp_path / "idx").exists()
    assert "LLM OpenIE failed for 40 of 40 passages" in err and "nothing was written" in err


def test_api_key_is_never_written(capsys, corpus, recording, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_LLM_KEY", "sk-hippo-SENTINEL-4242")
    with ReplayServer(recording) as server:
        code, _, err = index(capsys, corpus, tmp_path / "idx", server, tmp_path / "c.sqlite", "--llm-api-key-env", "MY_LLM_KEY")
    assert code == 0, err
    for path in [*tmp_path.rglob("*")]:
        if path.is_file():
            assert b"SENTINEL-4242" not in path.read_bytes(), path


def test_library_extract_raises_on_failure_naming_the_passages(recording):
    passages = read_corpus(SAMPLE / "corpus.json")[:6]
    with ReplayServer(recording, garbage={passages[1].content}.__contains__) as server:
        extractor = LLMExtractor(make_llm_client(LLMConfig(base_url=server.base_url, cache="off"), environ={}))
        with pytest.raises(ExtractionError, match=f"failed for 1 of 6 passages: {passages[1].id}.*run the command again"):
            extractor.extract(passages)
        ok = extractor.extract([p for i, p in enumerate(passages) if i != 1])
    assert len(ok) == 5 and all(e.triples for e in ok)
    assert np.mean([len(e.entities) for e in ok]) > 2


def test_an_interrupted_run_never_pays_twice(corpus, recording, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    repo = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "HIPPO_"))}
    env["PYTHONPATH"] = str(repo)
    with ReplayServer(recording, latency=0.05) as server:
        cmd = [sys.executable, "-m", "hippo.cli.main", "index", str(corpus), "--out", str(tmp_path / "idx"),
               "--extractor", "llm", "--llm-base-url", server.base_url, "--llm-concurrency", "4",
               "--set", "embed.model=hashing:64", "--set", f"llm.cache={tmp_path / 'c.sqlite'}"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while len(server.requests) < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert not (tmp_path / "idx" / "CURRENT").exists()
        first = len(server.requests)
        assert 20 <= first < 2 * SLICE
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        second = len(server.requests) - first
        # every reply the first run received was cached; at most the 4 in flight at Ctrl-C are asked again
        assert first + second <= 2 * SLICE + 4
        assert second < 2 * SLICE
