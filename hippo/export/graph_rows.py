"""An index as property-graph rows: the one shape every exporter writes.

Schema (the same for the Bolt sync, the neo4j-admin CSV files and GraphML):

* ``(:Passage {id, idx, title, text})`` and ``(:Entity {id, idx, name, passages})`` are the
  nodes of the PageRank graph; ``idx`` is the node number in the index (passages
  ``0..P-1``, then entities), ``passages`` the number of passages containing the entity.
* ``(:Entity)-[:RELATION {weight, predicates, facts}]->(:Entity)``,
  ``(:Passage)-[:CONTAINS {weight}]->(:Entity)`` and
  ``(:Entity)-[:SYNONYM {weight, similarity}]->(:Entity)`` are its edges, one per edge of
  the index with the index's own weight, so a path in Neo4j is a path PageRank walks. A
  RELATION points from the subject to the object of its first fact and lists the
  predicates and fact ids of every fact between the pair; a SYNONYM points from the lower
  to the higher node number and carries the cosine of the two entity embeddings.
* ``(:Fact {id, subject, predicate, object, passages})`` nodes keep every triple, with
  ``(:Fact)-[:HAS_SUBJECT]->(:Entity)``, ``(:Fact)-[:HAS_OBJECT]->(:Entity)`` and
  ``(:Passage)-[:STATES]->(:Fact)``: the provenance a relationship cannot hold, and what a
  query's linked facts point at.
* Indexes built from documents also have ``(:Document {id, source, title, kind, chunks})``
  nodes and ``(:Passage)-[:PART_OF]->(:Document)``; their passages carry their citation
  (``document_id``, ``source``, ``heading_path`` joined by " > ", ``span_start``,
  ``span_end``; a passage no document holds cites itself, as its hits do).

Every row carries ``h``, a digest of its properties: a sync compares digests and writes
only rows that differ. Pure apart from reading the index files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hippo.graph.build import EDGE_TYPES
from hippo.ids import entity_id, fact_id
from hippo.live.flat import FlatIndex

SCHEMA_VERSION = 1
"""Bumped when labels, types or properties change; part of every row digest."""

PASSAGE, ENTITY, FACT, DOCUMENT = "Passage", "Entity", "Fact", "Document"
EDGE_RELATIONSHIP_TYPES = {"relation": "RELATION", "context": "CONTAINS", "synonym": "SYNONYM"}
"""Index edge kind -> relationship type. A kind not listed becomes its name upper-cased."""


def digest(props: dict[str, Any]) -> str:
    """16 hex digits of blake2b over the canonical JSON of ``props`` and the schema version."""
    data = json.dumps([SCHEMA_VERSION, props], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(data.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class NodeRows:
    """Nodes of one label; each row is ``{"id", "props", "h"}`` (``props`` includes ``id``)."""

    label: str
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class RelRows:
    """Relationships of one type from ``start`` to ``end`` nodes; rows are ``{"s", "t", "props", "h"}``."""

    type: str
    start: str
    end: str
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class ExportGraph:
    """Everything an exporter writes for one index generation."""

    nodes: tuple[NodeRows, ...]
    rels: tuple[RelRows, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, dict[str, int]]:
        """``{"nodes": {label: n}, "relationships": {type: n}}``."""
        return {
            "nodes": {n.label: len(n.rows) for n in self.nodes},
            "relationships": {r.type: len(r.rows) for r in self.rels},
        }

    def node_rows(self, label: str) -> list[dict[str, Any]]:
        """The rows of ``label``."""
        return next(n.rows for n in self.nodes if n.label == label)

    def rel_rows(self, rel_type: str) -> list[dict[str, Any]]:
        """The rows of ``rel_type``."""
        return next(r.rows for r in self.rels if r.type == rel_type)


def _node(props: dict[str, Any]) -> dict[str, Any]:
    return {"id": props["id"], "props": props, "h": digest(props)}


def _rel(s: str, t: str, props: dict[str, Any]) -> dict[str, Any]:
    return {"s": s, "t": t, "props": props, "h": digest({"s": s, "t": t, **props})}


def expected_counts(files: FlatIndex) -> dict[str, dict[str, int]]:
    """Node and relationship counts an export of ``files`` must produce, from the manifest alone."""
    c = files.manifest["counts"]
    edges = c["edges"]
    states = int(len(files.array("passage_fact_indices")))
    out = {
        "nodes": {PASSAGE: c["passages"], ENTITY: c["entities"], FACT: c["facts"]},
        "relationships": {
            **{EDGE_RELATIONSHIP_TYPES.get(k, k.upper()): int(v) for k, v in edges.items()},
            "HAS_SUBJECT": c["facts"], "HAS_OBJECT": c["facts"], "STATES": states,
        },
    }
    docs = _documents(files)
    if docs is not None:
        out["nodes"][DOCUMENT] = len(docs[0])
        out["relationships"]["PART_OF"] = len(docs[2])
    return out


def _documents(files: FlatIndex) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], list[tuple[str, str, int]]] | None:
    """(documents, passage id -> citation, (passage, document, chunk) links) of an index whose
    passages cite documents, else None (:func:`hippo.documents.document_graph`)."""
    from hippo.documents import document_graph

    return document_graph(files.root, files.snapshot)


def index_meta(files: FlatIndex) -> dict[str, Any]:
    """What identifies an exported index: its path, generation and manifest counts."""
    m = files.manifest
    return {
        "path": str(files.root.resolve()),
        "generation": f"gen-{int(m['generation']):06d}",
        "hippo_version": m.get("hippo_version", ""),
        "embedder": m["embedder"]["id"],
        "schema_version": SCHEMA_VERSION,
        "counts": json.dumps(m["counts"], sort_keys=True),
    }


def build_export_graph(files: FlatIndex, vectors: bool = False) -> ExportGraph:
    """Rows for every node and relationship of the index ``files``.

    ``vectors`` adds each passage's embedding (``embedding``, a list of floats) for a
    Neo4j vector index.
    """
    passages = [
        {"id": i, "title": t, "content": c}
        for i, t, c in zip(files.strings("passage_ids"), files.strings("passage_titles"), files.strings("passage_contents"))
    ]
    ent_names: list[str] = list(files.strings("entity_names"))
    ent_ids: list[str] = [entity_id(n) for n in ent_names]
    f_subj = np.asarray(files.array("fact_subject")).tolist()
    f_obj = np.asarray(files.array("fact_object")).tolist()
    facts = [
        {"id": fact_id(ent_names[s], r, ent_names[o]), "s": ent_names[s], "r": r, "o": ent_names[o]}
        for s, r, o in zip(f_subj, files.strings("fact_relations"), f_obj)
    ]
    n_p = len(passages)
    ent_count = np.asarray(files.array("entity_passage_count")).tolist()
    indptr = np.asarray(files.array("passage_fact_indptr")).tolist()
    indices = np.asarray(files.array("passage_fact_indices")).tolist()
    fact_passages = np.bincount(np.asarray(indices, dtype=np.int64), minlength=len(facts)).tolist()

    passage_vecs = np.asarray(files.array("passage_vectors"), dtype=np.float32) if vectors else None
    docs = _documents(files)
    p_rows = []
    for i, p in enumerate(passages):
        title = p["title"]
        content = p["content"]
        text = content[len(title) + 1 :] if title and content.startswith(title + "\n") else content
        props: dict[str, Any] = {"id": p["id"], "idx": i, "title": title, "text": text}
        if docs is not None:
            cite = docs[1].get(p["id"], {})
            span = cite.get("span", [0, len(content)])
            props.update({"document_id": cite.get("document_id", p["id"]), "source": cite.get("source", ""),
                          "heading_path": " > ".join(cite.get("headings", [])), "span_start": span[0], "span_end": span[1]})
        row = _node(props)
        if passage_vecs is not None:
            row["embedding"] = passage_vecs[i].tolist()
            row["h"] = digest({**props, "embedding": hashlib.blake2b(passage_vecs[i].tobytes(), digest_size=8).hexdigest()})
        p_rows.append(row)
    e_rows = [
        _node({"id": eid, "idx": n_p + j, "name": name, "passages": int(ent_count[j])})
        for j, (eid, name) in enumerate(zip(ent_ids, ent_names))
    ]
    f_rows = [
        _node({"id": f["id"], "subject": f["s"], "predicate": f["r"], "object": f["o"], "passages": int(fact_passages[k])})
        for k, f in enumerate(facts)
    ]

    def node_id(idx: int) -> str:
        return str(passages[idx]["id"]) if idx < n_p else ent_ids[idx - n_p]

    # Facts grouped by unordered entity pair: the RELATION edge between them lists them all.
    pair_facts: dict[tuple[int, int], list[int]] = {}
    for k, (s, o) in enumerate(zip(f_subj, f_obj)):
        pair_facts.setdefault((min(s, o), max(s, o)), []).append(k)

    src = np.asarray(files.array("edge_src")).tolist()
    dst = np.asarray(files.array("edge_dst")).tolist()
    weight = np.asarray(files.array("edge_weight")).tolist()
    kind = np.asarray(files.array("edge_kind")).tolist()
    ent_vecs = np.asarray(files.array("entity_vectors"), dtype=np.float32)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    ends = {"relation": (ENTITY, ENTITY), "context": (PASSAGE, ENTITY), "synonym": (ENTITY, ENTITY)}
    for a, b, w, kd in zip(src, dst, weight, kind):
        name = EDGE_TYPES[kd] if kd < len(EDGE_TYPES) else f"kind{kd}"
        rows = by_kind.setdefault(name, [])
        ends.setdefault(name, (PASSAGE if a < n_p else ENTITY, PASSAGE if b < n_p else ENTITY))
        if name == "relation":
            ks = pair_facts.get((a - n_p, b - n_p), [])
            if ks and f_subj[ks[0]] + n_p == b:  # orient as the first fact: subject -> object
                a, b = b, a
            preds = list(dict.fromkeys(facts[k]["r"] for k in ks))
            rows.append(_rel(node_id(a), node_id(b), {"weight": w, "predicates": preds, "facts": [facts[k]["id"] for k in ks]}))
        elif name == "synonym":
            cos = float(np.dot(ent_vecs[a - n_p], ent_vecs[b - n_p]))
            rows.append(_rel(node_id(a), node_id(b), {"weight": w, "similarity": round(cos, 6)}))
        else:
            rows.append(_rel(node_id(a), node_id(b), {"weight": w}))

    rels = [
        RelRows(EDGE_RELATIONSHIP_TYPES.get(name, name.upper()), *ends[name], rows)
        for name, rows in _ordered(by_kind)
    ]
    rels += [
        RelRows("HAS_SUBJECT", FACT, ENTITY, [_rel(f["id"], ent_ids[s], {}) for f, s in zip(facts, f_subj)]),
        RelRows("HAS_OBJECT", FACT, ENTITY, [_rel(f["id"], ent_ids[o], {}) for f, o in zip(facts, f_obj)]),
        RelRows("STATES", PASSAGE, FACT, [
            _rel(passages[i]["id"], facts[k]["id"], {}) for i in range(n_p) for k in indices[indptr[i] : indptr[i + 1]]
        ]),
    ]
    nodes = [NodeRows(PASSAGE, p_rows), NodeRows(ENTITY, e_rows), NodeRows(FACT, f_rows)]
    if docs is not None:
        summaries, _, links = docs
        nodes.append(NodeRows(DOCUMENT, [_node(dict(d)) for d in summaries]))
        rels.append(RelRows("PART_OF", PASSAGE, DOCUMENT, [_rel(pid, d, {"chunk": chunk}) for pid, d, chunk in links]))
    return ExportGraph(tuple(nodes), tuple(rels), index_meta(files))


def _ordered(by_kind: dict[str, list[dict[str, Any]]]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Every edge kind of the index in a stable order, the known ones even when empty."""
    for name in EDGE_TYPES:
        yield name, by_kind.get(name, [])
    for name in sorted(set(by_kind) - set(EDGE_TYPES)):
        yield name, by_kind[name]
