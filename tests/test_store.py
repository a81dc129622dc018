import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from hippo import open_index
from hippo.embed import HashingEmbedder
from hippo.errors import EmbedderMismatchError, HippoError, IndexFormatError
from hippo.indexer import build_index, delete_passages
from hippo.live.snapshot import Snapshot
from hippo.store import IndexLockedError, read_manifest
from hippo.store.segments import SegmentFiles
from hippo.testing import TINY_TRIPLES, ScriptedExtractor, fake_config, make_engine, tiny_passages


def segment_files(root):
    """Every file of every live segment, by segment position and member name (bytes)."""
    m = read_manifest(root)
    out = {}
    for k, entry in enumerate(m["segments"]):
        path = root / entry["name"]
        files = sorted(path.iterdir()) if path.is_dir() else [path]
        for f in files:
            out[(k, f.name if path.is_dir() else "segment")] = f.read_bytes()
    return out


def segments(root):
    return sorted(p.name for p in root.iterdir() if p.name.startswith("seg-"))


def crashing_write(monkeypatch, write):
    """Run ``write`` with a crash just before CURRENT is replaced; restore os.replace."""
    real_replace = os.replace

    def crash(src, dst, *a, **k):
        if str(dst).endswith("CURRENT"):
            raise OSError("simulated crash")
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", crash)
    try:
        with pytest.raises(OSError, match="simulated crash"):
            write()
    finally:
        monkeypatch.setattr(os, "replace", real_replace)


def add(root, n, **overrides):
    """Add the first ``n`` tiny passages to the index at ``root`` (a write only if some are new)."""
    return build_index(tiny_passages()[:n], root, fake_config(**overrides),
                       extractor=ScriptedExtractor(TINY_TRIPLES), embedder=HashingEmbedder(64))


def test_same_corpus_gives_same_bytes(tmp_path):
    make_engine(tmp_path / "a")
    make_engine(tmp_path / "b")
    a, b = segment_files(tmp_path / "a"), segment_files(tmp_path / "b")
    assert (0, "meta.json") in a and (0, "adj_indptr.npy") in a
    assert a == b


def test_manifest_describes_the_index(tmp_path):
    make_engine(tmp_path / "idx")
    m = read_manifest(tmp_path / "idx")
    assert m["format"] == "hippo-index" and m["format_version"] == 2 and m["generation"] == 1
    assert m["embedder"] == {"id": "hashing:64", "dim": 64, "precision": "fp32"}
    assert m["extractor"]["name"] == "hippo.extractor.scripted.v1"
    assert m["counts"]["passages"] == 4 and m["counts"]["edges"]["context"] > 0 and m["counts"]["segments"] == 1
    assert m["config"]["retrieval"]["damping"] == 0.5
    assert "numpy" in m["versions"]
    snap = Snapshot.open(tmp_path / "idx")
    assert snap.base.files.verify(m["segments"][0]) == []


def test_each_write_adds_one_segment_and_a_no_op_adds_none(tmp_path):
    root = tmp_path / "idx"
    add(root, 2)
    add(root, 3)
    add(root, 4)
    m = read_manifest(root)
    assert m["generation"] == 3 and [s["kind"] for s in m["segments"]] == ["base", "delta", "delta"]
    assert [s["rows"][0] for s in m["segments"]] == [2, 1, 1]
    assert len(segments(root)) == 3
    assert add(root, 4).changes == {}  # nothing new: no segment written
    assert read_manifest(root)["generation"] == 3 and len(segments(root)) == 3


def test_crash_before_commit_leaves_the_old_index_and_the_rerun_reuses_its_work(tmp_path, monkeypatch):
    root = tmp_path / "idx"
    make_engine(root, passages=tiny_passages()[:2])
    before = segment_files(root)
    # two passages with checkpoints of one: the write checkpoints into the resume cache
    crashing_write(monkeypatch, lambda: add(root, 4, **{"runtime.checkpoint_passages": 1, "runtime.checkpoint_strings": 1}))
    assert segment_files(root) == before
    engine = open_index(root, embedder=HashingEmbedder(64))
    assert engine.retrieve("Alice", k=1).mode == "ppr" and len(engine.passage_ids) == 2
    report = add(root, 4, **{"runtime.checkpoint_passages": 1, "runtime.checkpoint_strings": 1})
    assert report.changes["passages"]["added"] == 2
    assert not (root / ".work").exists()
    assert len(segments(root)) == 2  # the crashed run's orphan segment was collected


def test_tampered_file_is_detected(tmp_path):
    make_engine(tmp_path / "idx")
    from hippo.cli.main import main

    assert main(["info", str(tmp_path / "idx"), "--verify"]) == 0
    name = read_manifest(tmp_path / "idx")["segments"][0]["name"]
    (tmp_path / "idx" / name / "fact_relations.bin").write_bytes(b"tampered")
    assert main(["info", str(tmp_path / "idx"), "--verify"]) == 1


def test_unknown_format_version_and_format_1_say_what_to_do(tmp_path):
    make_engine(tmp_path / "idx")
    m = read_manifest(tmp_path / "idx")
    (tmp_path / "idx" / "CURRENT").write_text(json.dumps({**m, "format_version": 99}))
    with pytest.raises(IndexFormatError, match="format version 99 is not supported.*rebuild"):
        open_index(tmp_path / "idx", embedder=HashingEmbedder(64))
    (tmp_path / "idx" / "CURRENT").write_text("gen-000003\n")
    with pytest.raises(IndexFormatError, match="format-1 index.*hippo upgrade"):
        open_index(tmp_path / "idx", embedder=HashingEmbedder(64))


def test_wrong_embedder_is_refused(tmp_path):
    make_engine(tmp_path / "idx")
    with pytest.raises(EmbedderMismatchError, match="built with embedder 'hashing:64'.*rebuild"):
        open_index(tmp_path / "idx", embedder=HashingEmbedder(32))
    with pytest.raises(EmbedderMismatchError):
        open_index(tmp_path / "idx", embedder=HashingEmbedder(32), writable=True)


def test_index_time_settings_cannot_be_overridden_at_query_time(tmp_path):
    make_engine(tmp_path / "idx")
    with pytest.raises(HippoError, match="cannot change after indexing"):
        open_index(tmp_path / "idx", {"graph.synonymy_threshold": 0.5}, embedder=HashingEmbedder(64))


def test_missing_and_foreign_directories(tmp_path):
    with pytest.raises(IndexFormatError, match="index not found"):
        open_index(tmp_path / "nope", embedder=HashingEmbedder(64))
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "precious.txt").write_text("keep me")
    with pytest.raises(IndexFormatError, match="not a hippo index"):
        open_index(tmp_path / "foreign", embedder=HashingEmbedder(64))
    with pytest.raises(HippoError, match="refusing to write"):
        make_engine(tmp_path / "foreign")
    with pytest.raises(HippoError, match="refusing to write"):
        open_index(tmp_path / "foreign", writable=True, create=True, embedder=HashingEmbedder(64))
    assert sorted(p.name for p in (tmp_path / "foreign").iterdir()) == ["precious.txt"]


def test_crash_during_first_build_does_not_block_the_next(tmp_path, monkeypatch):
    root = tmp_path / "idx"
    crashing_write(monkeypatch, lambda: make_engine(root))
    with pytest.raises(IndexFormatError, match="first build was interrupted; run the same `hippo index"):
        open_index(root, embedder=HashingEmbedder(64))
    engine = make_engine(root)
    assert engine.retrieve("Alice", k=1).hits
    assert len(segments(root)) == 1


def test_readers_pin_their_segments_until_they_move_on(tmp_path):
    root = tmp_path / "idx"
    add(root, 2)
    reader = open_index(root, embedder=HashingEmbedder(64))
    first = reader.retrieve("Who founded Acme Corp?", k=2)
    base = read_manifest(root)["segments"][0]["name"]
    with open_index(root, writable=True, embedder=HashingEmbedder(64), extractor=ScriptedExtractor(TINY_TRIPLES)) as mem:
        mem.add(tiny_passages()[2:])
        mem.compact()  # a new base; the old one is pinned by the reader
        assert read_manifest(root)["segments"][0]["name"] != base and (root / base).exists()
    twin = reader.with_overrides({"runtime.refresh_seconds": 3600})
    assert reader.refresh() is True and reader.refresh() is False
    assert len(reader.passage_ids) == 4 and reader.retrieve("Who founded Acme Corp?", k=2).hits
    delete_passages(root, [tiny_passages()[3].id], fake_config())
    assert (root / base).exists()  # the twin still reads the old commit
    assert len(twin.passage_ids) == 2 and twin.retrieve("Who founded Acme Corp?", k=2).hits == first.hits
    del twin
    import gc

    gc.collect()
    delete_passages(root, [tiny_passages()[2].id], fake_config())
    assert not (root / base).exists()  # nobody pins it any more: collected by the next write


def test_a_reader_sees_a_commit_at_its_next_query(tmp_path):
    root = tmp_path / "idx"
    add(root, 2)
    reader = open_index(root, embedder=HashingEmbedder(64))
    assert len(reader.retrieve("Berlin", k=5).hits) == 2
    add(root, 4)
    assert len(reader.retrieve("Berlin", k=5).hits) == 4  # refresh_seconds = 0: checked before every query
    slow = open_index(root, {"runtime.refresh_seconds": 3600}, embedder=HashingEmbedder(64))
    delete_passages(root, [tiny_passages()[3].id], fake_config())
    assert len(slow.retrieve("Berlin", k=5).hits) == 4  # stale for up to an hour, by its setting
    assert slow.refresh() and len(slow.retrieve("Berlin", k=5).hits) == 3


HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from hippo.store import writer_lock
    with writer_lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def test_second_writer_is_told_who_holds_the_lock_waits_if_asked_and_a_crash_frees_it(tmp_path):
    root = tmp_path / "idx"
    add(root, 2)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(root), "60"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(IndexLockedError, match=rf"is locked by PID {holder.pid}, which is writing it"):
            add(root, 3)
        t = time.monotonic()
        with pytest.raises(IndexLockedError, match=r"waited 0.5 s"):
            open_index(root, writable=True, wait=0.5, embedder=HashingEmbedder(64))
        assert time.monotonic() - t >= 0.5
        from hippo.cli.main import main

        assert main(["delete", str(root), "--ids", tiny_passages()[0].id]) == 1
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdout.close()
    assert add(root, 3).changes["passages"]["added"] == 1  # the kernel dropped the dead holder's lock
    assert (root / ".lock").read_text() == ""  # no PID left behind by a finished writer
    short = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(root), "1"], stdout=subprocess.PIPE, text=True)
    try:
        assert short.stdout.readline().strip() == "locked"
        with open_index(root, writable=True, wait=30, embedder=HashingEmbedder(64),
                        extractor=ScriptedExtractor(TINY_TRIPLES)) as mem:  # waits for the holder to finish
            assert mem.add(tiny_passages()[3:4]) == [tiny_passages()[3].id]
    finally:
        short.wait()
        short.stdout.close()


def test_prefetch_reads_the_named_files_once(tmp_path):
    make_engine(tmp_path / "idx")
    root = tmp_path / "idx"
    seg = SegmentFiles(root, read_manifest(root)["segments"][0]["name"])
    names = ["adj_indices.npy", "node_degree.npy", "no_such_file.npy"]
    sizes = sum((seg.path / n).stat().st_size for n in names[:2])
    assert seg.prefetch(names, chunk=7) == sizes  # a chunk smaller than a file: several reads
    seg.close()

