"""The facade: open an index and retrieve from it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hippo.config import Config, from_dict
from hippo.embed import make_embedder
from hippo.embed.st import check_embedder
from hippo.errors import ConfigError, HippoError
from hippo.graph.build import Graph
from hippo.graph.ppr import PPRSolver
from hippo.protocols import Embedder, FloatArray
from hippo.retrieval.hipporag import GraphRanking, HippoRAG2Ranker
from hippo.store import IndexFiles, read_index_files
from hippo.types import Fact, Hit, LinkedFact, QueryResult, Seed

RETRIEVERS = ("hipporag2", "dense")


class Engine:
    """An opened index: ``retrieve`` and ``retrieve_many`` over its passages.

    Build one with :func:`open_index`. Arrays are memory-mapped; the graph's CSR
    adjacency is built once here, never per query.
    """

    def __init__(self, files: IndexFiles, config: Config, embedder: Embedder) -> None:
        self.files = files
        self.config = config
        self.embedder = embedder
        passages = files.jsonl("passages.jsonl")
        self.passage_ids: list[str] = [p["id"] for p in passages]
        self.passage_titles: list[str] = [p["title"] for p in passages]
        self.passage_contents: list[str] = [p["content"] for p in passages]
        entities = files.json("entities.json")
        self.entity_ids: list[str] = entities["ids"]
        self.entity_names: list[str] = entities["names"]
        self.facts: list[Fact] = [Fact(f["id"], f["s"], f["r"], f["o"]) for f in files.jsonl("facts.jsonl")]
        self.graph = Graph(
            len(self.passage_ids), len(self.entity_ids),
            files.array("edge_src.npy"), files.array("edge_dst.npy"),
            files.array("edge_weight.npy"), files.array("edge_kind.npy"),
        )
        self.solver = PPRSolver(self.graph.adjacency())
        self.ranker = HippoRAG2Ranker(
            files.array("passage_vectors.npy"),
            files.array("fact_vectors.npy"),
            np.asarray(files.array("fact_subject.npy")),
            np.asarray(files.array("fact_object.npy")),
            np.asarray(files.array("entity_passage_count.npy")),
            self.solver,
        )

    @property
    def path(self) -> Path:
        """The index directory."""
        return self.files.root

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest of the opened generation."""
        return self.files.manifest

    def info(self) -> dict[str, Any]:
        """Counts, embedder, extractor, config and versions of the index."""
        return self.files.describe()

    def encode_queries(self, queries: Sequence[str]) -> tuple[FloatArray, FloatArray]:
        """Query vectors for fact linking and for passages, each (B, d); encoded once when
        the two instructions are equal. Feed them to :meth:`rank_vectors`."""
        cfg = self.config.embed
        qf = self.embedder.encode_queries(queries, cfg.fact_instruction)
        qp = qf if cfg.passage_instruction == cfg.fact_instruction else self.embedder.encode_queries(queries, cfg.passage_instruction)
        return qf, qp

    def _result(self, query: str, retriever: str, r: GraphRanking, timings: dict[str, float]) -> QueryResult:
        hits = tuple(
            Hit(rank, self.passage_ids[i], float(s), self.passage_titles[i], self.passage_contents[i])
            for rank, (i, s) in enumerate(zip(r.passages.tolist(), r.scores.tolist()))
        )
        facts = tuple(LinkedFact(self.facts[f], float(s)) for f, s in zip(r.facts.tolist(), r.fact_scores.tolist()))
        seeds = tuple(
            Seed(self.entity_ids[e], self.entity_names[e], float(w)) for e, w in zip(r.seed_entities.tolist(), r.seed_weights.tolist())
        )
        return QueryResult(query, retriever, r.mode, hits, facts, seeds, timings)

    def retrieve_many(
        self, queries: Sequence[str], k: int | None = None, retriever: str = "hipporag2"
    ) -> list[QueryResult]:
        """Retrieve for many queries at once: one embedding batch, one batched PageRank.

        ``timings_ms`` of each result holds the batch's per-query average.
        """
        if retriever not in RETRIEVERS:
            raise ConfigError(f"unknown retriever {retriever!r}; valid: {', '.join(RETRIEVERS)}")
        if isinstance(queries, str):
            raise TypeError("retrieve_many takes a list of queries; use retrieve() for one")
        if not queries:
            return []
        k = self.config.retrieval.top_k if k is None else k
        if k < 1:
            raise HippoError(f"k must be >= 1, got {k}")
        t0 = time.perf_counter()
        qf, qp = self.encode_queries(queries)
        t1 = time.perf_counter()
        rankings = self.rank_vectors(qf, qp, k, retriever)
        t2 = time.perf_counter()
        n = len(queries)
        timings = {"embed": 1000 * (t1 - t0) / n, "rank": 1000 * (t2 - t1) / n}
        return [self._result(q, retriever, r, dict(timings)) for q, r in zip(queries, rankings)]

    def retrieve(self, query: str, k: int | None = None, retriever: str = "hipporag2") -> QueryResult:
        """Top-``k`` passages for ``query``, with the facts and seed entities used."""
        return self.retrieve_many([query], k, retriever)[0]

    def rank_vectors(
        self, qf: FloatArray, qp: FloatArray, k: int, retriever: str = "hipporag2"
    ) -> list[GraphRanking]:
        """Rank for already-embedded queries ((B, d) each); for benchmarks and batch jobs."""
        if retriever == "dense":
            return self.ranker.rank_dense_many(qp, k)
        return self.ranker.rank_many(qf, qp, k, self.config.retrieval)


def open_index(
    path: str | Path,
    overrides: dict[str, Any] | None = None,
    embedder: Embedder | None = None,
) -> Engine:
    """Open the index at ``path``. Its saved config is the base; ``overrides``
    (``{"retrieval.damping": 0.6}``) may change query-time settings only.

    The embedder is rebuilt from the manifest unless one is given, and must match.
    """
    files = read_index_files(path)
    config = from_dict(files.manifest["config"], source=f"{files.generation}/manifest.json")
    if overrides:
        bad = [key for key in overrides if not key.startswith(("retrieval.", "runtime."))]
        if bad:
            raise ConfigError(
                f"{', '.join(bad)} cannot change after indexing (only retrieval.* and runtime.* can); "
                f"rebuild the index to change them"
            )
        config = config.replace(overrides).validate()
    expected = files.manifest["embedder"]
    if embedder is None:
        embedder = make_embedder(config.embed)
    check_embedder(expected["id"], int(expected["dim"]), embedder)
    return Engine(files, config, embedder)
