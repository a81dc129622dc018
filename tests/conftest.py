from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "graphs" / "sample"
SHARED = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _no_hippo_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("HIPPO_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def sample_build(tmp_path_factory, sample_dir):
    """The sample indexed once per session by ``hippo index --openie`` with the real embedder:
    (index path, the command's JSON report). The CLI tests and the notebooks share it."""
    from hippo.cli.main import main

    out = tmp_path_factory.mktemp("cli") / "sample"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["index", str(sample_dir / "corpus.json"), "--out", str(out),
                     "--openie", str(sample_dir / "openie_gpt-3.5-turbo-1106.json"), "--json"])
    assert code == 0
    return out, json.loads(buf.getvalue())


@pytest.fixture(scope="session")
def tiny_index_path(tmp_path_factory):
    """The tiny corpus indexed once per session (hashing embedder, scripted OpenIE)."""
    from hippo.testing import make_engine

    path = tmp_path_factory.mktemp("tiny") / "tiny"
    make_engine(path)
    return path


@pytest.fixture(scope="session")
def tiny_engine(tiny_index_path):
    """The tiny index, opened once per session (read only: tests must not write to it)."""
    from hippo import open_index

    return open_index(tiny_index_path)
