"""The living index from the command line: hippo index (add, --update, --rebuild),
hippo delete, hippo info --history, and their one-line errors."""

from __future__ import annotations

import json

import pytest

from hippo.cli.main import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def setup(tmp_path, sample_dir):
    docs = json.loads((sample_dir / "corpus.json").read_text())
    (tmp_path / "b1.json").write_text(json.dumps(docs[:5]))
    (tmp_path / "b2.json").write_text(json.dumps(docs[5:8]))
    # stable ids: "x" first holds passage 8's text, later passage 9's (both in the OpenIE file)
    (tmp_path / "x.jsonl").write_text(json.dumps({"id": "x", **docs[8]}) + "\n")
    (tmp_path / "x2.jsonl").write_text(json.dumps({"id": "x", **docs[9]}) + "\n")
    opts = ["--openie", sample_dir / "openie_gpt-3.5-turbo-1106.json", "--set", "embed.model=hashing:64"]
    return tmp_path, tmp_path / "idx", opts


def test_add_update_delete_and_history(setup, capsys):
    tmp, idx, opts = setup
    code, out, _ = run(capsys, "index", tmp / "b1.json", "--out", idx, *opts)
    assert code == 0 and out.startswith(f"indexed 5 passages into {idx} (generation 1, segment seg-000001): 5 passages")
    code, out, _ = run(capsys, "index", tmp / "b2.json", "--out", idx, *opts)
    assert code == 0 and out.startswith(f"added 3 passages to {idx} (generation 2, segment seg-000002.hseg): 8 passages")
    assert "(3 passages extracted" in out  # extracted only the new ones
    code, out, _ = run(capsys, "index", tmp / "b2.json", "--out", idx, *opts)
    assert code == 0 and out.startswith(f"nothing to do: {idx} already holds these passages")
    run(capsys, "index", tmp / "x.jsonl", "--out", idx, *opts)

    code, out, err = run(capsys, "index", tmp / "x2.jsonl", "--out", idx, *opts)
    assert code == 1 and out == ""
    assert err.strip().count("\n") == 0 and "1 passage(s) are already in" in err and "(--update)" in err

    code, out, _ = run(capsys, "index", tmp / "x2.jsonl", "--out", idx, "--update", *opts)
    assert code == 0 and out.startswith(f"added 0 and replaced 1 passages in {idx} (generation 4, segment seg-000004.hseg): 9")

    code, out, _ = run(capsys, "delete", idx, "--corpus", tmp / "b2.json", "--json")
    report = json.loads(out)
    assert code == 0 and report["changes"]["passages"]["removed"] == 3 and report["counts"]["passages"] == 6
    assert report["changes"]["embedded"] == 0 and report["changes"]["extracted"] == 0
    code, out, _ = run(capsys, "delete", idx, "--ids", "x")
    assert code == 0 and out.startswith(f"deleted 1 passages from {idx} (generation 7")  # 6 was the compaction

    code, out, _ = run(capsys, "info", idx, "--history", "--json")
    history = json.loads(out)["history"]
    ops = [h["operation"] for h in history]
    # the deletions pass the policy's tombstone share: a compaction follows the fifth write
    assert ops[:6] == ["build", "add", "add", "update", "delete", "compact"] and ops[6] == "delete"
    assert [h["counts"]["passages"] for h in history][:7] == [5, 8, 9, 9, 6, 6, 5]
    assert history[3]["passages"] == {"added": 0, "updated": 1, "removed": 0}
    code, out, _ = run(capsys, "info", idx, "--history")
    assert "update" in out and "compact" in out and code == 0


def test_settings_rebuild_and_errors(setup, capsys):
    tmp, idx, opts = setup
    run(capsys, "index", tmp / "b1.json", "--out", idx, *opts)
    code, _, err = run(capsys, "index", tmp / "b2.json", "--out", idx, *opts, "--set", "graph.synonymy_threshold=0.7")
    assert code == 2 and "graph.synonymy_threshold is 0.7 here but the index" in err and "--rebuild" in err
    code, out, _ = run(capsys, "index", tmp / "b2.json", "--out", idx, *opts,
                       "--set", "graph.synonymy_threshold=0.7", "--rebuild", "--json")
    report = json.loads(out)
    assert code == 0 and report["changes"]["operation"] == "rebuild" and report["counts"]["passages"] == 3
    code, out, _ = run(capsys, "info", idx, "--json", "--history")
    info = json.loads(out)
    assert info["config"]["graph"]["synonymy_threshold"] == 0.7
    assert [h["operation"] for h in info["history"]] == ["build", "rebuild"]

    code, out, err = run(capsys, "delete", idx, "--ids", "nope,p-0")
    assert code == 1 and "2 of 2 id(s) are not in" in err and "nothing was deleted" in err
    code, _, err = run(capsys, "delete", tmp / "missing", "--ids", "a")
    assert code == 1 and "is not a hippo index" in err and not (tmp / "missing").exists()
    code, _, err = run(capsys, "delete", idx, "--ids", " , ")
    assert code == 1 and "--ids is empty" in err
    with pytest.raises(SystemExit) as exc:
        main(["delete", str(idx)])  # neither --ids nor --corpus
    assert exc.value.code == 2
    assert "one of the arguments --ids --corpus --doc is required" in capsys.readouterr().err
