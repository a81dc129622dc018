import json
import os

import pytest

from hippo import open_index
from hippo.embed import HashingEmbedder
from hippo.errors import EmbedderMismatchError, HippoError, IndexFormatError
from hippo.store import read_index_files
from hippo.testing import make_engine


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


def test_rewrite_switches_generation_and_keeps_previous(tmp_path):
    root = tmp_path / "idx"
    make_engine(root)
    make_engine(root)
    make_engine(root)
    assert (root / "CURRENT").read_text().strip() == "gen-000003"
    assert sorted(p.name for p in root.iterdir() if p.name.startswith("gen-")) == ["gen-000002", "gen-000003"]


def test_crash_before_pointer_switch_leaves_old_index(tmp_path, monkeypatch):
    root = tmp_path / "idx"
    make_engine(root)
    before = gen_files(root)
    crashing_write(monkeypatch, root, triples={})
    assert gen_files(root) == before
    engine = open_index(root, embedder=HashingEmbedder(64))
    assert engine.retrieve("Alice", k=1).mode == "ppr"


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
    make_engine(root)
    make_engine(root)  # gen-2 live, gen-1 kept
    crashing_write(monkeypatch, root)  # leaves an unused gen-3
    make_engine(root)  # gen-4
    gens = sorted(p.name for p in root.iterdir() if p.name.startswith("gen-"))
    assert gens == ["gen-000002", "gen-000004"]
    assert (root / "CURRENT").read_text().strip() == "gen-000004"


def test_crash_during_first_build_does_not_block_the_next(tmp_path, monkeypatch):
    root = tmp_path / "idx"
    crashing_write(monkeypatch, root)
    with pytest.raises(IndexFormatError, match="no CURRENT"):
        read_index_files(root)
    engine = make_engine(root)
    assert engine.retrieve("Alice", k=1).hits
    assert sorted(p.name for p in root.iterdir() if p.name.startswith("gen-")) == ["gen-000002"]
