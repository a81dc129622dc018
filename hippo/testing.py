"""Helpers for tests and plugin authors: a tiny corpus, scripted fakes, ``make_engine``, and
``build_sample_index`` (the bundled sample with the hashing embedder). The hashing embedder
itself is :class:`hippo.embed.HashingEmbedder`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hippo.config import Config, load_config
from hippo.corpus import make_passage
from hippo.embed.hashing import HashingEmbedder
from hippo.engine import Engine, open_index
from hippo.errors import HippoError
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


SAMPLE_DIR = Path(__file__).resolve().parent.parent / "graphs" / "sample"
"""The bundled MuSiQue sample (``graphs/sample`` of a source checkout): 119 passages, six
questions and the OpenIE gpt-3.5-turbo recorded for them."""


def build_sample_index(out: str | Path, embed_model: str = "hashing:256", sample_dir: str | Path | None = None) -> Path:
    """Index the bundled sample into ``out`` from its recorded OpenIE (no spaCy, no LLM).

    With the default hashing embedder it takes about a second and loads no model (the
    documentation examples run on it); ``embed_model="all-MiniLM-L6-v2"`` gives real retrieval.
    """
    src = Path(sample_dir) if sample_dir is not None else SAMPLE_DIR
    if not (src / "corpus.json").exists():
        raise HippoError(f"no sample corpus at {src}; pass sample_dir= the graphs/sample folder of a hippo checkout")
    build_index(src / "corpus.json", out, fake_config(**{"embed.model": embed_model}), openie=src / "openie_gpt-3.5-turbo-1106.json")
    return Path(out)


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
