"""Helpers for tests and plugin authors: a tiny corpus, scripted fakes, ``make_engine``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hippo.config import Config, load_config
from hippo.corpus import make_passage
from hippo.embed.hashing import HashingEmbedder
from hippo.engine import Engine, open_index
from hippo.indexer import build_index
from hippo.types import Extraction, Passage, Triple

TINY_CORPUS: list[tuple[str, str]] = [
    ("Alice Smith", "Alice Smith was born in Paris. She founded Acme Corp."),
    ("Acme Corp", "Acme Corp is headquartered in Berlin. Acme Corp makes rockets."),
    ("Berlin", "Berlin is the capital of Germany."),
    ("Paris", "Paris is the capital of France."),
]
"""Four passages whose facts chain Alice Smith -> Acme Corp -> Berlin -> Germany."""

TINY_TRIPLES: dict[str, list[Triple]] = {
    "Alice Smith": [("Alice Smith", "born in", "Paris"), ("Alice Smith", "founded", "Acme Corp")],
    "Acme Corp": [("Acme Corp", "headquartered in", "Berlin"), ("Acme Corp", "makes", "rockets")],
    "Berlin": [("Berlin", "capital of", "Germany")],
    "Paris": [("Paris", "capital of", "France")],
}


def tiny_passages() -> list[Passage]:
    """The tiny corpus as passages (content-hash ids)."""
    return [make_passage(text, title) for title, text in TINY_CORPUS]


class ScriptedExtractor:
    """Returns the triples scripted per passage title (or id); unknown passages get none."""

    name = "hippo.extractor.scripted.v1"

    def __init__(self, triples: Mapping[str, Sequence[Triple]]) -> None:
        self.triples = {k: tuple(v) for k, v in triples.items()}

    def settings(self) -> dict[str, Any]:
        """No settings."""
        return {}

    def extract(
        self, passages: Sequence[Passage], progress: Callable[[int, int], None] | None = None
    ) -> list[Extraction]:
        """Scripted triples; entities are their subjects and objects."""
        out = []
        for p in passages:
            triples = self.triples.get(p.title, self.triples.get(p.id, ()))
            ents = tuple(dict.fromkeys(x for t in triples for x in (t[0], t[2])))
            out.append(Extraction(p.id, ents, triples))
        return out


def fake_config(**overrides: Any) -> Config:
    """Defaults with the hashing embedder, ignoring the environment."""
    items = [f"{k}={v}" for k, v in {"embed.model": "hashing:64", **overrides}.items()]
    return load_config(overrides=items, env={})





def make_engine(
    path: str | Path,
    passages: Sequence[Passage] | None = None,
    triples: Mapping[str, Sequence[Triple]] | None = None,
    **overrides: Any,
) -> Engine:
    """Index ``passages`` (default: the tiny corpus) with scripted triples and the hashing embedder."""
    config = fake_config(**overrides)
    embedder = HashingEmbedder(64)
    build_index(
        list(passages) if passages is not None else tiny_passages(), path, config,
        extractor=ScriptedExtractor(triples if triples is not None else TINY_TRIPLES), embedder=embedder,
    )
    return open_index(path, embedder=embedder)
