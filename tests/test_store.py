import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from hippo import open_index
from hippo.embed import HashingEmbedder
from hippo.errors import EmbedderMismatchError, HippoError, IndexFormatError
from hippo.indexer import build_index, delete_passages
from hippo.store import IndexLockedError, read_index_files
from hippo.testing import TINY_TRIPLES, ScriptedExtractor, fake_config, make_engine, tiny_passages


def gen_files(root):
    gen = root / (root / "CURRENT").read_text().strip()
    return {p.name: p.read_bytes() for p in gen.iterdir() if p.name != "stats.json"}


def crashing_write(monkeypatch, root, **kwargs):
    """Run make_engine with a crash just before CURRENT is switched; restore os.replace."""
    real_replace = os.replace

    def crash(src, dst, *a, **k):
        if str(dst).endswith("CURRENT"):
            raise OSError("simulated crash")
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", crash)
    try:
        with pytest.raises(OSError, match="simulated crash"):
            make_engine(root, **kwargs)
    finally:
        monkeypatch.setattr(os, "replace", real_replace)


def test_same_corpus_gives_same_bytes(tmp_path):
    make_engine(tmp_path / "a")
    make_engine(tmp_path / "b")
    a, b = gen_files(tmp_path / "a"), gen_files(tmp_path / "b")
    assert a.keys() == b.keys() and "manifest.json" in a
    assert a == b


def test_manifest_describes_the_index(tmp_path):
    make_engine(tmp_path / "idx")
    m = read_index_files(tmp_path / "idx").manifest
    assert m["format"] == "hippo-index" and m["format_version"] == 1
    assert m["embedder"] == {"id": "hashing:64", "dim": 64, "precision": "fp32"}
    assert m["extractor"]["name"] == "hippo.extractor.scripted.v1"
    assert m["counts"]["passages"] == 4 and m["counts"]["edges"]["context"] > 0
    assert m["config"]["retrieval"]["damping"] == 0.5
    assert "numpy" in m["versions"]
    assert read_index_files(tmp_path / "idx").verify() == []


def add(root, n, **overrides):
    """Add the first ``n`` tiny passages to the index at ``root`` (a write only if some are new)."""
    return build_index(tiny_passages()[:n], root, fake_config(**overrides),
                       extractor=ScriptedExtractor(TINY_TRIPLES), embedder=HashingEmbedder(64))


def generations(root):
    return sorted(p.name for p in root.iterdir() if p.name.startswith("gen-"))


def test_each_write_switches_generation_and_keeps_previous(tmp_path):
    root = tmp_path / "idx"
    add(root, 2)
    add(root, 3)
    add(root, 4)
    assert (root / "CURRENT").read_text().strip() == "gen-000003"
    assert generations(root) == ["gen-000002", "gen-000003"]
    add(root, 4)  # nothing new: no generation written
    assert generations(root) == ["gen-000002", "gen-000003"]


@pytest.mark.parametrize("keep", [1, 3])
def test_keep_generations_is_configurable(tmp_path, keep):
    root = tmp_path / "idx"
    for n in (1, 2, 3, 4):
        add(root, n, **{"runtime.keep_generations": keep})
    assert generations(root) == [f"gen-{n:06d}" for n in range(5 - keep, 5)]
    history = read_index_files(root).history()
    assert [h["generation"] for h in history] == [f"gen-{n:06d}" for n in (1, 2, 3, 4)]
    assert [h["counts"]["passages"] for h in history] == [1, 2, 3, 4]


def test_crash_before_pointer_switch_leaves_old_index(tmp_path, monkeypatch):
    root = tmp_path / "idx"
    make_engine(root, passages=tiny_passages()[:3])
    before = gen_files(root)
    crashing_write(monkeypatch, root)
    assert gen_files(root) == before
    engine = open_index(root, embedder=HashingEmbedder(64))
    assert engine.retrieve("Alice", k=1).mode == "ppr"
    assert len(engine.passage_ids) == 3
    report = add(root, 4)  # the re-run finishes the job from the resume cache
    # the crashed run had extracted the Paris passage and embedded its 3 new strings (the
    # passage, "france", the fact); the re-run redoes neither
    assert report.changes["reused"] == {"extractions": 1, "vectors": 3}
    assert report.changes["extracted"] == 0 and report.changes["embedded"] == 0
    assert not (root / ".work").exists()


def test_tampered_file_is_detected(tmp_path):
    make_engine(tmp_path / "idx")
    files = read_index_files(tmp_path / "idx")
    (files.generation / "facts.jsonl").write_text("")
    assert files.verify() == ["facts.jsonl"]


def test_unknown_format_version_says_what_to_do(tmp_path):
    make_engine(tmp_path / "idx")
    files = read_index_files(tmp_path / "idx")
    m = json.loads((files.generation / "manifest.json").read_text())
    m["format_version"] = 99
    (files.generation / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IndexFormatError, match="format version 99.*rebuild it with `hippo index"):
        read_index_files(tmp_path / "idx")


def test_wrong_embedder_is_refused(tmp_path):
    make_engine(tmp_path / "idx")
    with pytest.raises(EmbedderMismatchError, match="built with embedder 'hashing:64'.*rebuild"):
        open_index(tmp_path / "idx", embedder=HashingEmbedder(32))


def test_index_time_settings_cannot_be_overridden_at_query_time(tmp_path):
    make_engine(tmp_path / "idx")
    with pytest.raises(HippoError, match="cannot change after indexing"):
        open_index(tmp_path / "idx", {"graph.synonymy_threshold": 0.5}, embedder=HashingEmbedder(64))


def test_missing_and_foreign_directories(tmp_path):
    with pytest.raises(IndexFormatError, match="index not found"):
        read_index_files(tmp_path / "nope")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "precious.txt").write_text("keep me")
    with pytest.raises(IndexFormatError, match="not a hippo index"):
        read_index_files(tmp_path / "foreign")
    with pytest.raises(HippoError, match="refusing to write"):
        make_engine(tmp_path / "foreign")
    assert (tmp_path / "foreign" / "precious.txt").read_text() == "keep me"


def test_write_after_crash_keeps_the_generation_readers_use(tmp_path, monkeypatch):
    root = tmp_path / "idx"
    add(root, 2)
    add(root, 3)  # gen-2 live, gen-1 kept
    crashing_write(monkeypatch, root)  # leaves an unused gen-3
    assert generations(root) == ["gen-000001", "gen-000002", "gen-000003"]
    add(root, 4)  # the unused gen-3 is discarded; this write is gen-3 again
    assert generations(root) == ["gen-000002", "gen-000003"]
    assert (root / "CURRENT").read_text().strip() == "gen-000003"
    assert read_index_files(root).manifest["counts"]["passages"] == 4


def test_crash_during_first_build_does_not_block_the_next(tmp_path, monkeypatch):
    root = tmp_path / "idx"
    crashing_write(monkeypatch, root)
    with pytest.raises(IndexFormatError, match="first build was interrupted; run the same `hippo index"):
        read_index_files(root)
    engine = make_engine(root)
    assert engine.retrieve("Alice", k=1).hits
    assert generations(root) == ["gen-000001"]


def test_open_readers_keep_their_generation_and_can_reload(tmp_path):
    root = tmp_path / "idx"
    add(root, 2, **{"runtime.keep_generations": 1})
    engine = open_index(root, embedder=HashingEmbedder(64))
    first = engine.retrieve("Who founded Acme Corp?", k=2)
    add(root, 3, **{"runtime.keep_generations": 1})
    add(root, 4, **{"runtime.keep_generations": 1})
    # keep=1, yet the generation the engine reads survives: it is pinned
    assert generations(root) == ["gen-000001", "gen-000003"]
    again = engine.retrieve("Who founded Acme Corp?", k=2)
    assert again.hits == first.hits and len(engine.passage_ids) == 2
    assert engine._nearest_entities(engine.embedder.encode_queries(["berlin"]))[0].tolist() == [
        engine.entity_names.index("berlin")
    ]  # lazily loaded files of the pinned generation are still there
    assert engine.reload() is True and engine.reload() is False
    assert len(engine.passage_ids) == 4 and engine.files.generation.name == "gen-000003"
    keep1 = fake_config(**{"runtime.keep_generations": 1})
    delete_passages(root, [tiny_passages()[3].id], keep1)
    assert generations(root) == ["gen-000003", "gen-000004"]  # gen-1 unpinned by the reload; gen-3 is read
    engine.files.close()  # (what dropping the engine does)
    delete_passages(root, [tiny_passages()[2].id], keep1)
    assert generations(root) == ["gen-000005"]


def test_a_twin_keeps_the_generation_its_original_reloaded_away_from(tmp_path):
    root = tmp_path / "idx"
    add(root, 2, **{"runtime.keep_generations": 1})
    engine = open_index(root, embedder=HashingEmbedder(64))
    twin = engine.with_overrides({"retrieval.damping": 0.6})
    add(root, 3, **{"runtime.keep_generations": 1})
    assert engine.reload() is True
    add(root, 4, **{"runtime.keep_generations": 1})
    assert generations(root) == ["gen-000001", "gen-000002", "gen-000003"]  # 1 for the twin, 2 for engine
    assert len(twin.passage_ids) == 2 and twin.retrieve("Who founded Acme Corp?", k=2).hits
    del twin
    add(root, 4, **{"runtime.keep_generations": 1})  # no-op: collects nothing
    delete_passages(root, [tiny_passages()[3].id], fake_config(**{"runtime.keep_generations": 1}))
    assert generations(root) == ["gen-000002", "gen-000004"]


HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from hippo.store import writer_lock
    with writer_lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(60)
""")


def test_second_writer_is_told_who_holds_the_lock_and_a_crash_frees_it(tmp_path):
    root = tmp_path / "idx"
    add(root, 2)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(root)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(IndexLockedError, match=rf"is locked by PID {holder.pid}, which is writing it"):
            add(root, 3)
        from hippo.cli.main import main

        assert main(["delete", str(root), "--ids", tiny_passages()[0].id]) == 1
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdout.close()
    assert add(root, 3).changes["passages"]["added"] == 1  # the kernel dropped the dead holder's lock
    assert (root / ".lock").read_text() == ""  # no PID left behind by a finished writer


def test_prefetch_reads_the_named_files_once(tmp_path):
    make_engine(tmp_path / "idx")
    files = read_index_files(tmp_path / "idx")
    names = ["adj_indices.npy", "node_degree.npy", "no_such_file.npy"]
    sizes = sum((files.generation / n).stat().st_size for n in names[:2])
    assert files.prefetch(names, chunk=7) == sizes  # a chunk smaller than a file: several reads
    files.close()
