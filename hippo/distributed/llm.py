"""LLM OpenIE on Ray with one response cache, owned by the driver.

Workers never open the SQLite cache (they may not share the driver's disk, and SQLite over a
network filesystem is unsafe). Instead, for each part the driver looks up the replies its
cache already holds (the entity step's, and the triple step's when the cached entities
determine that prompt) and ships them with the part. A worker runs the unchanged
:class:`~hippo.extract.llm_ie.LLMExtractor` (concurrency, retries with backoff and jitter,
reply parsing) against an in-memory cache seeded with them, and sends back, besides the
extractions and failures, every reply it received from the server. The driver writes those
into its cache as each part finishes, so a killed run never pays twice for a reply that
reached the driver, and the cache is what a single-process run would have left.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hippo.config import LLMConfig
from hippo.extract.llm_ie import NER_STAGE, TRIPLE_STAGE, ExtractionRun, LLMExtractor, _entities
from hippo.llm.base import ChatReply, ChatRequest, ParseError
from hippo.llm.prompts import ner_messages, triple_messages
from hippo.types import Passage


class MemoryCache:
    """A response cache in memory: seeded by the driver, recording what the server sent."""

    def __init__(self, seed: dict[str, ChatReply]) -> None:
        self.replies = dict(seed)
        self.new: dict[str, tuple[ChatReply, str, str]] = {}

    def get(self, key: str) -> ChatReply | None:
        """The seeded or received reply for ``key``."""
        return self.replies.get(key)

    def put(self, key: str, reply: ChatReply, model: str = "", stage: str = "") -> None:
        """Keep a received reply (it travels back to the driver's cache)."""
        self.replies[key] = reply
        self.new[key] = (reply, model, stage)


def cached_replies(extractor: LLMExtractor, passages: Sequence[Passage]) -> dict[str, ChatReply]:
    """The replies the driver's cache holds for these passages' entity and triple prompts."""
    client: Any = extractor.client
    cache = getattr(client, "cache", None)
    out: dict[str, ChatReply] = {}
    if cache is None:
        return out
    for p in passages:
        key = client.cache_key_of(ChatRequest(ner_messages(p.content), NER_STAGE, extractor.max_tokens))
        hit = cache.get(key)
        if hit is None:
            continue
        out[key] = hit
        try:
            entities, _ = _entities(hit)
        except ParseError:
            continue
        key = client.cache_key_of(ChatRequest(triple_messages(p.content, entities), TRIPLE_STAGE, extractor.max_tokens))
        hit = cache.get(key)
        if hit is not None:
            out[key] = hit
    return out


class LLMWorker:
    """An LLM OpenIE actor: its own client (no file cache), one part per call."""

    def __init__(self, config: LLMConfig, max_tokens: int | None) -> None:
        from hippo.llm import make_llm_client

        self.client = make_llm_client(dataclasses.replace(config, cache="off"))
        self.max_tokens = max_tokens

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import ray

        rows: dict[str, list[Any]] = {k: [] for k in ("part", "payload", "node", "pid", "seconds", "load_s")}
        for part, payload in zip(batch["part"], batch["payload"]):
            passages, seed = pickle.loads(payload)
            cache = MemoryCache(seed)
            self.client.cache = cache
            self.client._usage = {}  # usage of this part only: the driver adds the parts up
            extractor = LLMExtractor(self.client, self.max_tokens)
            t = time.perf_counter()
            run = extractor.run(passages)
            result = (run, extractor.invalid_triples, cache.new, self.client.usage())
            rows["part"].append(int(part))
            rows["payload"].append(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
            rows["node"].append(ray.get_runtime_context().get_node_id())
            rows["pid"].append(os.getpid())
            rows["seconds"].append(time.perf_counter() - t)
            rows["load_s"].append(0.0)
        return {k: np.array(v, dtype=object) if k in ("payload", "node") else np.array(v) for k, v in rows.items()}


def add_usage(client: Any, usage: dict[str, dict[str, Any]]) -> None:
    """Add a worker's per-stage usage to the driver client's counters."""
    for stage, counts in usage.items():
        u = client._stage(stage)
        for name, value in counts.items():
            if isinstance(value, (int, float)) and hasattr(u, name):
                setattr(u, name, getattr(u, name) + value)


def merge_part(extractor: LLMExtractor, passages: Sequence[Passage], result: Any, out: ExtractionRun) -> None:
    """Fold one worker's result into the driver: cache, memo, failures, usage."""
    run, invalid, new, usage = result
    cache = getattr(extractor.client, "cache", None)
    if cache is not None:
        for key, (reply, model, stage) in new.items():
            cache.put(key, dataclasses.replace(reply, cached=False), model, stage)
    by_id = {p.id: p for p in passages}
    for pid, ex in run.extractions.items():
        extractor.remember(by_id[pid], ex)
        out.extractions[pid] = ex
    out.failures.extend(run.failures)
    out.truncated_entities.extend(run.truncated_entities)
    extractor.invalid_triples += invalid
    add_usage(extractor.client, usage)


def llm_parts(passages: Sequence[Passage], size: int) -> list[list[Passage]]:
    """Parts of ``size`` passages (the resume cache's extraction checkpoint)."""
    return [list(passages[s : s + size]) for s in range(0, len(passages), size)]


Progress = Callable[[int, int], None]
