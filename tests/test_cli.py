"""End-to-end CLI tests on the bundled MuSiQue slice with the real embedder."""

import json
import subprocess
import sys

import pytest

from hippo.cli.main import main

QUESTION = "Who was the first president of the association which published Journal of Psychotherapy Integration?"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def sample_index(sample_build):
    return sample_build[0]


@pytest.mark.slow
def test_index_json_contract(sample_build):
    report = sample_build[1]
    assert report["counts"]["passages"] == 119
    assert report["counts"]["facts"] > 500 and report["counts"]["entities"] > 500
    assert set(report["timings_s"]) >= {"extract", "embed", "graph", "write"}


@pytest.mark.slow
def test_info_json_contract(sample_index, capsys):
    code, out, _ = run(capsys, "info", str(sample_index), "--json", "--verify")
    info = json.loads(out)
    assert code == 0 and info["verified"] is True
    assert info["counts"]["passages"] == 119
    assert set(info["counts"]["edges"]) == {"relation", "context", "synonym"}
    assert info["embedder"]["id"] == "all-MiniLM-L6-v2" and info["embedder"]["dim"] == 384


@pytest.mark.slow
def test_query_finds_both_hops(sample_index, capsys):
    code, out, _ = run(capsys, "query", str(sample_index), QUESTION, "-k", "5", "--json")
    result = json.loads(out)
    assert code == 0 and result["mode"] == "ppr"
    titles = [h["title"] for h in result["hits"]]
    assert titles[0] == "Journal of Psychotherapy Integration"
    assert len(titles) == 5
    assert result["facts"] and result["seeds"]
    code, out, _ = run(capsys, "query", str(sample_index), QUESTION, "-k", "3")
    assert code == 0 and "Journal of Psychotherapy Integration" in out and "seed entities:" in out


@pytest.mark.slow
def test_eval_json_contract_and_quality(sample_index, sample_dir, tmp_path, capsys):
    per_q = tmp_path / "perq.jsonl"
    code, out, _ = run(capsys, "eval", str(sample_index), "--questions", str(sample_dir / "questions.json"),
                       "--json", "--per-question", str(per_q))
    report = json.loads(out)
    assert code == 0
    assert report["retriever"] == "hippo" and report["questions"] == 6 and report["gold_missing"] == 0
    assert set(report["recall"]) == {"1", "2", "5", "10", "20"}
    assert report["recall"]["20"] >= report["recall"]["5"] >= report["recall"]["1"]
    assert report["recall"]["10"] >= 0.6
    assert len(per_q.read_text().splitlines()) == 6
    code, out, _ = run(capsys, "eval", str(sample_index), "--questions", str(sample_dir / "questions.json"),
                       "--retriever", "dense", "--json")
    assert json.loads(out)["retriever"] == "dense"
    code, out, _ = run(capsys, "eval", str(sample_index), "--questions", str(sample_dir / "questions.json"),
                       "--retriever", "hipporag2", "--json")
    reference = json.loads(out)
    assert code == 0 and reference["retriever"] == "hipporag2"
    assert reference["recall"] != report["recall"]  # the reference really runs without hippo's additions


@pytest.mark.slow
def test_query_override_and_bad_override(sample_index, capsys):
    _, base, _ = run(capsys, "query", str(sample_index), QUESTION, "--json")
    code, out, _ = run(capsys, "query", str(sample_index), QUESTION, "--set", "retrieval.damping=0.7", "--json")
    assert code == 0
    assert [h["score"] for h in json.loads(out)["hits"]] != [h["score"] for h in json.loads(base)["hits"]]
    code, _, err = run(capsys, "query", str(sample_index), QUESTION, "--set", "retrieval.dampng=0.7")
    assert code == 2 and "unknown config key 'retrieval.dampng'" in err
    code, _, err = run(capsys, "query", str(sample_index), QUESTION, "--set", "graph.synonymy_threshold=0.5")
    assert code == 2 and "cannot change after indexing" in err


def test_error_paths(tmp_path, capsys):
    code, _, err = run(capsys, "index", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o"))
    assert code == 1 and "corpus not found" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": \n')
    code, _, err = run(capsys, "index", str(bad), "--out", str(tmp_path / "o"))
    assert code == 1 and "bad.jsonl:2: malformed JSON" in err
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    code, _, err = run(capsys, "index", str(empty), "--out", str(tmp_path / "o"))
    assert code == 1 and "empty" in err
    code, _, err = run(capsys, "index", str(empty), "--out", str(tmp_path / "o"), "--set", "nope.key=1")
    assert code == 2 and "unknown config key 'nope.key'" in err
    code, _, err = run(capsys, "query", str(tmp_path / "noindex"), "q")
    assert code == 1 and "index not found" in err
    code, _, err = run(capsys, "query", str(empty), "q")
    assert code == 1 and "is a file, not an index directory" in err
    code, _, err = run(capsys, "eval", str(tmp_path), "--questions", str(tmp_path))
    assert code == 1 and "cannot read questions file" in err
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_usage_errors_exit_2():
    proc = subprocess.run([sys.executable, "-m", "hippo.cli.main", "query"], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage:" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "hippo.cli.main", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "index" in proc.stdout and "eval" in proc.stdout


@pytest.mark.slow
def test_real_index_is_byte_deterministic(sample_build, sample_dir, tmp_path):
    from hippo.indexer import build_index

    again = tmp_path / "again"
    build_index(sample_dir / "corpus.json", again, openie=sample_dir / "openie_gpt-3.5-turbo-1106.json")
    first = sample_build[0]

    def files(root):
        from hippo.store import read_manifest

        seg = root / read_manifest(root)["segments"][0]["name"]
        return {p.name: p.read_bytes() for p in seg.iterdir()}

    a, b = files(first), files(again)
    assert a.keys() == b.keys() and "passage_vectors.npy" in a
    assert [name for name in a if a[name] != b[name]] == []


def test_a_reader_that_goes_away_is_not_an_error(tiny_index_path):
    """``hippo info DIR | true``: the pipe is closed before hippo writes; it ends quietly, exit 0."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        ["bash", "-c", f'"{sys.executable}" -m hippo.cli.main info "{tiny_index_path}" --json | true; '
                       'echo "${PIPESTATUS[0]}"'],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.stdout.strip() == "0", proc.stderr
    assert "Broken pipe" not in proc.stderr and "Traceback" not in proc.stderr


def test_a_broken_pipe_inside_the_work_is_an_error(tiny_index_path, monkeypatch, capsys):
    """A BrokenPipeError that is not about standard output (a socket, a dead worker) fails the
    command with exit 1 instead of passing for a reader that went away."""
    from hippo.cli import info_cmd

    def broken(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(info_cmd, "run", broken)
    assert main(["info", str(tiny_index_path)]) == 1
    assert "Broken pipe (not on standard output)" in capsys.readouterr().err


def test_while_ray_runs_only_the_main_threads_prints_reach_stdout():
    """What other threads print and what anything writes to descriptor 1 (Ray's C++ core, the
    processes it starts) goes to stderr while the block runs; the main thread's prints and
    what follows the block stay on stdout (``hippo index --ray ... --json`` stays parseable)."""
    import os
    import subprocess
    import sys

    code = (
        "import os, subprocess, sys, threading\n"
        "from hippo.distributed.cluster import main_thread_stdout\n"
        "with main_thread_stdout():\n"
        "    t = threading.Thread(target=lambda: print('from a thread')); t.start(); t.join()\n"
        "    os.write(1, b'straight to fd 1\\n')\n"
        "    subprocess.run([sys.executable, '-c', 'print(\"from a child\")'])\n"
        "    print('main inside')\n"
        "print('main after')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["main inside", "main after"]
    assert all(x in proc.stderr for x in ("from a thread", "straight to fd 1", "from a child"))
