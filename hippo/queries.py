"""Queries made ready for ranking: embedded, and the entities they name found in the index."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from hippo.config import Config
from hippo.ids import normalize
from hippo.protocols import Embedder, FloatArray
from hippo.retrieval.query_entities import link_mentions, match_names
from hippo.retrieval.retrievers import QueryBatch


class QueryEncoder:
    """Embeds queries and finds the entities they name: exact name n-grams, and spaCy NER
    mentions linked by name or by their nearest entity vector (``retrieval.query_ner``).

    ``names`` and ``nearest`` give the index's live entity lookup and nearest-entity search;
    the spaCy model is loaded on first need and kept across commits."""

    def __init__(self, config: Config, embedder: Embedder) -> None:
        self.config = config
        self.embedder = embedder
        self._recognizer: Any = None

    def encode(self, queries: Sequence[str]) -> tuple[FloatArray, FloatArray]:
        """Query vectors for fact linking and for passages, each (B, d); encoded once when
        the two instructions are equal."""
        cfg = self.config.embed
        qf = self.embedder.encode_queries(queries, cfg.fact_instruction)
        qp = qf if cfg.passage_instruction == cfg.fact_instruction else self.embedder.encode_queries(queries, cfg.passage_instruction)
        return qf, qp

    def prepare(
        self,
        queries: Sequence[str],
        named: bool,
        names: Callable[[], Mapping[str, int]],
        nearest: Callable[[FloatArray], tuple[Any, Any]],
    ) -> QueryBatch:
        """Embed ``queries`` and, when ``named``, find the entities each names. NER mentions
        that need an embedding are encoded in the same call as the queries."""
        cfg, rcfg = self.config.embed, self.config.retrieval
        mentions: list[list[str]] = [[] for _ in queries]
        if named and rcfg.query_ner:
            if self._recognizer is None:
                from hippo.extract.spacy_ie import SpacyMentionRecognizer

                self._recognizer = SpacyMentionRecognizer(self.config.extract.spacy_model)
            mentions = self._recognizer.mentions(queries)
        lookup_names = names() if named else {}
        pending = list(dict.fromkeys(m for ms in mentions for m in ms if normalize(m) not in lookup_names))
        vectors = self.embedder.encode_queries([*queries, *pending], cfg.fact_instruction)
        qf = vectors[: len(queries)]
        qp = qf if cfg.passage_instruction == cfg.fact_instruction else self.embedder.encode_queries(queries, cfg.passage_instruction)
        found: dict[str, tuple[int, float]] = {}
        if pending:
            best, cos = nearest(vectors[len(queries):])
            found = {m: (int(b), float(c)) for m, b, c in zip(pending, best, cos)}

        def lookup(ms: Sequence[str]) -> tuple[Any, Any]:
            pairs = [found[m] for m in ms]
            return np.array([p[0] for p in pairs], dtype=np.int64), np.array([p[1] for p in pairs])

        entities = tuple(
            tuple(dict.fromkeys([
                *match_names(q, lookup_names),
                *link_mentions(ms, lookup_names, lookup, rcfg.query_entity_threshold),
            ])) if named else ()
            for q, ms in zip(queries, mentions)
        )
        return QueryBatch(tuple(queries), qf, qp, entities)
