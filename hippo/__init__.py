"""hippo: graph-based hippocampal retrieval (HippoRAG 2) with Personalized PageRank.

>>> from hippo import build_index, open_index
>>> build_index("corpus.json", "graphs/demo")            # doctest: +SKIP
>>> engine = open_index("graphs/demo")                   # doctest: +SKIP
>>> engine.retrieve("Who founded X?", k=5).hits         # doctest: +SKIP
"""

from __future__ import annotations

from hippo.config import Config, load_config
from hippo.engine import Engine, open_index
from hippo.errors import HippoError
from hippo.indexer import BuildReport, build_index
from hippo.types import Extraction, Fact, Hit, LinkedFact, Passage, QueryResult, Seed

__all__ = [
    "BuildReport",
    "Client",
    "Config",
    "Engine",
    "Extraction",
    "Fact",
    "HippoError",
    "Hit",
    "LinkedFact",
    "Passage",
    "QueryResult",
    "Seed",
    "build_index",
    "load_config",
    "open_index",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    if name == "Client":  # imports httpx: only when used
        from hippo.client import Client

        return Client
    raise AttributeError(f"module 'hippo' has no attribute {name!r}")
