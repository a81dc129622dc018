"""Queries made ready for ranking: embedded, and the entities they name found in the index."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from hippo.config import Config
from hippo.ids import normalize
from hippo.protocols import Embedder, FloatArray
from hippo.retrieval.query_entities import link_mentions, match_names
from hippo.retrieval.retrievers import QueryBatch


OVERLAP_UP_TO = 8
"""Batches up to this size embed on a helper thread while spaCy runs (larger batches are
throughput work: both stages already use the cores)."""


class QueryEncoder:
    """Embeds queries and finds the entities they name: exact name n-grams, and spaCy NER
    mentions linked by name or by their nearest entity vector (``retrieval.query_ner``).

    ``names`` and ``nearest`` give the index's live entity lookup and nearest-entity search;
    the spaCy model is loaded on first need and kept across commits.

    Up to :data:`OVERLAP_UP_TO` queries are embedded on a helper thread, which then links their
    facts (``link``), while this thread has spaCy find their mentions and embeds the mentions
    that need a vector (padded to the longest mention rather than to the question). The ONNX
    query encoder and the BLAS product release the GIL: a single question waits for the longer
    of the two paths, not their sum."""

    def __init__(self, config: Config, embedder: Embedder) -> None:
        self.config = config
        self.embedder = embedder
        self._recognizer: Any = None
        self._helper: ThreadPoolExecutor | None = None
        self._helper_free = threading.Semaphore(1)  # busy (another thread's query): embed inline

    def encode(self, queries: Sequence[str]) -> tuple[FloatArray, FloatArray]:
        """Query vectors for fact linking and for passages, each (B, d); encoded once when
        the two instructions are equal."""
        cfg = self.config.embed
        qf = self.embedder.encode_queries(queries, cfg.fact_instruction)
        qp = qf if cfg.passage_instruction == cfg.fact_instruction else self.embedder.encode_queries(queries, cfg.passage_instruction)
        return qf, qp

    def _encode_and_link(self, queries: Sequence[str], link: Callable[[FloatArray], Sequence[Any]] | None) -> tuple[Any, ...]:
        qf, qp = self.encode(queries)
        return qf, qp, None if link is None else tuple(link(qf))

    def prepare(
        self,
        queries: Sequence[str],
        named: bool,
        names: Callable[[], Mapping[str, int]],
        nearest: Callable[[FloatArray], tuple[Any, Any]],
        link: Callable[[FloatArray], Sequence[Any]] | None = None,
    ) -> QueryBatch:
        """Embed ``queries`` and, when ``named``, find the entities each names (the class
        docstring says what runs at the same time). ``link`` (fact vectors -> each query's
        linked facts) runs on the helper thread after the embedding, when there is one; its
        result is the batch's ``linked_facts``."""
        rcfg = self.config.retrieval
        mentions: list[list[str]] = [[] for _ in queries]
        encoded: Future[tuple[Any, ...]] | None = None
        if named and rcfg.query_ner:
            if self._recognizer is None:
                from hippo.extract.spacy_ie import SpacyMentionRecognizer

                self._recognizer = SpacyMentionRecognizer(self.config.extract.spacy_model)
            if len(queries) <= OVERLAP_UP_TO and self._helper_free.acquire(blocking=False):
                try:
                    self._helper = self._helper or ThreadPoolExecutor(1, thread_name_prefix="hippo-encode")
                    encoded = self._helper.submit(self._encode_and_link, queries, link)
                except BaseException:
                    self._helper_free.release()
                    raise
                encoded.add_done_callback(lambda _: self._helper_free.release())
            mentions = self._recognizer.mentions(queries)
        lookup_names = names() if named else {}
        pending = list(dict.fromkeys(m for ms in mentions for m in ms if normalize(m) not in lookup_names))
        found: dict[str, tuple[int, float]] = {}
        if pending:  # while the helper may still embed the queries
            best, cos = nearest(self.embedder.encode_queries(pending, self.config.embed.fact_instruction))
            found = {m: (int(b), float(c)) for m, b, c in zip(pending, best, cos)}
        qf, qp, linked = encoded.result() if encoded is not None else (*self.encode(queries), None)

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
        return QueryBatch(tuple(queries), qf, qp, entities, linked)
