"""hippo upgrade: a format-1 index (one folder per write) becomes a format-2 base, in place."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from hippo import open_index
from hippo.cli.main import main
from hippo.embed import HashingEmbedder
from hippo.store import read_manifest
from hippo.testing import make_engine

FIXTURE = Path(__file__).parent / "fixtures" / "format1-tiny"
"""The tiny corpus indexed by hippo 0.1 before segments (format 1: three passages, then a
fourth added), live generation only; see tests/fixtures/README.md."""


def base_files(root: Path) -> dict[str, bytes]:
    seg = root / read_manifest(root)["segments"][0]["name"]
    return {p.name: p.read_bytes() for p in seg.iterdir()}


def test_upgrade_gives_the_index_a_fresh_build_gives(tmp_path, capsys):
    old = tmp_path / "old"
    shutil.copytree(FIXTURE, old)
    assert main(["info", str(old)]) == 1
    err = capsys.readouterr().err
    assert "format-1 index" in err and "hippo upgrade" in err
    assert main(["upgrade", str(old), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["passages"] == 4 and report["removed"] == ["gen-000002"]
    assert not any(p.name.startswith("gen-") for p in old.iterdir())
    fresh = make_engine(tmp_path / "fresh")
    assert base_files(old) == base_files(tmp_path / "fresh")  # nothing re-extracted or re-embedded, same bytes
    engine = open_index(old, embedder=HashingEmbedder(64))
    q = "Who founded Acme Corp?"
    assert engine.retrieve(q, k=3).passage_ids == fresh.retrieve(q, k=3).passage_ids
    assert main(["upgrade", str(old)]) == 1  # already upgraded: one clear line
    assert "not a format-1 index" in capsys.readouterr().err
