"""``build_index``: corpus -> OpenIE -> embeddings -> graph -> index directory."""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from hippo.config import Config, load_config
from hippo.corpus import dedupe_passages, read_corpus
from hippo.embed import make_embedder
from hippo.extract import make_extractor
from hippo.graph.build import build_graph
from hippo.ids import alnum_count
from hippo.kb import build_kb
from hippo.protocols import Embedder, Extractor, FloatArray
from hippo.store import FORMAT_NAME, FORMAT_VERSION, write_generation
from hippo.types import Passage

Progress = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)``."""

_VERSIONED = ("numpy", "scipy", "python-igraph", "torch", "sentence-transformers", "spacy")


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape an index."""
    out = {"python": platform.python_version()}
    for name in ("hippo", *_VERSIONED):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


@dataclass(frozen=True)
class BuildReport:
    """What ``build_index`` did: where, how much, how long."""

    path: Path
    counts: dict[str, Any]
    timings_s: dict[str, float]
    notes: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON shape of ``hippo index --json``."""
        return {"path": str(self.path), "counts": self.counts, "timings_s": self.timings_s, **self.notes}


def embed_unique(embedder: Embedder, texts: Sequence[str], progress: Progress | None = None, chunk: int = 4096) -> tuple[FloatArray, list[int]]:
    """Embed each distinct string once. Returns (vectors of the distinct strings, row of each input).

    Strings are length-sorted before batching so batches carry little padding.
    """
    index: dict[str, int] = {}
    rows = [index.setdefault(t, len(index)) for t in texts]
    distinct = list(index)
    order = sorted(range(len(distinct)), key=lambda i: (len(distinct[i]), i))
    vecs = np.zeros((len(distinct), embedder.dim), dtype=np.float32)
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        vecs[part] = embedder.encode_documents([distinct[i] for i in part])
        if progress:
            progress("embed", min(start + chunk, len(order)), len(order))
    return vecs, rows


def build_index(
    corpus: str | Path | Sequence[Passage],
    out: str | Path,
    config: Config | None = None,
    *,
    openie: str | Path | None = None,
    extractor: Extractor | None = None,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
) -> BuildReport:
    """Index ``corpus`` (a path or passages) into the directory ``out``; see ``hippo index``.

    ``openie`` implies the precomputed extractor. ``extractor``/``embedder`` override the
    ones the config names (tests and plugins use this).
    """
    config = config or load_config()
    if openie is not None:
        config = config.replace({"extract.extractor": "precomputed", "extract.openie": str(openie)})
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    passages = read_corpus(corpus) if isinstance(corpus, (str, Path)) else dedupe_passages(corpus)
    extractor = extractor or make_extractor(config.extract)
    embedder = embedder or make_embedder(config.embed)
    timings["read"] = time.perf_counter() - t0

    t = time.perf_counter()
    extractions = extractor.extract(
        passages, (lambda done, total: progress("extract", done, total)) if progress else None
    )
    kb = build_kb(passages, extractions)
    timings["extract"] = time.perf_counter() - t

    t = time.perf_counter()
    texts = [p.content for p in passages] + kb.entity_names + [f.as_text(config.embed.fact_format) for f in kb.facts]
    vecs, rows = embed_unique(embedder, texts, progress)
    all_vecs = vecs[rows]
    n_p, n_e = len(passages), len(kb.entity_names)
    passage_vecs, entity_vecs, fact_vecs = all_vecs[:n_p], all_vecs[n_p : n_p + n_e], all_vecs[n_p + n_e :]
    timings["embed"] = time.perf_counter() - t

    t = time.perf_counter()
    eligible = np.array([alnum_count(n) >= config.graph.synonymy_min_chars for n in kb.entity_names], dtype=bool)
    graph = build_graph(
        n_p, n_e, kb.fact_subject, kb.fact_object, kb.fact_passage_count,
        kb.passage_entity_rows, kb.passage_entity_cols, entity_vecs, eligible,
        config.graph.synonymy_threshold, config.graph.synonymy_max_neighbors, config.graph.edge_weights,
    )
    timings["graph"] = time.perf_counter() - t

    t = time.perf_counter()
    counts = {
        "passages": n_p,
        "entities": n_e,
        "facts": len(kb.facts),
        "triples_dropped": kb.dropped_triples,
        "nodes": graph.n_nodes,
        "edges": graph.edge_counts(),
        "distinct_strings_embedded": len(vecs),
    }
    notes: dict[str, Any] = {}
    for attr in ("invalid_triples", "delegated"):
        if getattr(extractor, attr, 0):
            notes[attr] = getattr(extractor, attr)
    versions = library_versions()
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "hippo_version": versions.get("hippo", "0"),
        "versions": versions,
        "embedder": {"id": embedder.id, "dim": embedder.dim, "precision": config.embed.precision},
        "extractor": {"name": extractor.name, "settings": extractor.settings()},
        "config": config.to_dict(),
        "counts": counts,
        "node_layout": "passages 0..P-1, then entities P..P+E-1",
    }
    files: dict[str, Any] = {
        "passages.jsonl": [{"id": p.id, "title": p.title, "content": p.content} for p in passages],
        "entities.json": {"ids": kb.entity_ids, "names": kb.entity_names},
        "facts.jsonl": [{"id": f.id, "s": f.subject, "r": f.relation, "o": f.object} for f in kb.facts],
        "extractions.jsonl": [
            {"passage_id": e.passage_id, "entities": list(e.entities), "triples": [list(t) for t in e.triples]}
            for e in extractions
        ],
        "passage_vectors.npy": passage_vecs,
        "entity_vectors.npy": entity_vecs,
        "fact_vectors.npy": fact_vecs,
        "fact_subject.npy": kb.fact_subject,
        "fact_object.npy": kb.fact_object,
        "passage_fact_indptr.npy": kb.passage_fact_indptr,
        "passage_fact_indices.npy": kb.passage_fact_indices,
        "entity_passage_count.npy": kb.entity_passage_count,
        "edge_src.npy": graph.src,
        "edge_dst.npy": graph.dst,
        "edge_weight.npy": graph.weight,
        "edge_kind.npy": graph.kind,
    }
    if not extractions or not any(e.triples for e in extractions):
        notes["warning"] = "no passage produced a triple: retrieval will be dense only"
    stats = {"timings_s": {k: round(v, 3) for k, v in timings.items()}, "argv": sys.argv[1:]}
    write_generation(out, files, manifest, volatile={"stats.json": stats})
    timings["write"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    return BuildReport(Path(out), counts, {k: round(v, 3) for k, v in timings.items()}, notes)
