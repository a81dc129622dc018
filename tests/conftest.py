from __future__ import annotations

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
