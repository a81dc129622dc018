"""GraphML of the PageRank graph (passages, entities and their weighted edges) for Gephi and yEd.

Undirected, as PageRank sees it. Node ids are the index ids; every node has ``label``
(entity name or passage title), ``kind`` (Passage or Entity) and ``idx``; every edge has
``type`` (RELATION, CONTAINS, SYNONYM), ``weight`` and, for RELATION, ``predicates``.
Facts, which are not nodes of the PageRank graph, are left out.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from hippo.export.graph_rows import ENTITY, FACT, PASSAGE, build_export_graph
from hippo.live.flat import FlatIndex

_KEYS = (
    ("label", "node", "string"), ("kind", "node", "string"), ("idx", "node", "int"), ("passages", "node", "int"),
    ("type", "edge", "string"), ("weight", "edge", "double"), ("predicates", "edge", "string"),
)


def _data(key: str, value: Any) -> str:
    return f'<data key="{key}">{escape(str(value))}</data>'


def export_graphml(index: str | Path | FlatIndex, out: str | Path) -> dict[str, Any]:
    """Write the GraphML file ``out`` (atomically); returns node and edge counts and seconds."""
    files = index if isinstance(index, FlatIndex) else FlatIndex.open(index)
    t0 = time.perf_counter()
    graph = build_export_graph(files)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    n_nodes = n_edges = 0
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write('<?xml version="1.0" encoding="UTF-8"?>\n')
            fh.write('<graphml xmlns="http://graphml.graphdrawing.org/xmlns">\n')
            for key, where, kind in _KEYS:
                fh.write(f'  <key id="{key}" for="{where}" attr.name="{key}" attr.type="{kind}"/>\n')
            fh.write(f'  <graph id={quoteattr(graph.meta["generation"])} edgedefault="undirected">\n')
            for nodes in graph.nodes:
                if nodes.label == FACT:
                    continue
                for r in nodes.rows:
                    p = r["props"]
                    label = p["name"] if nodes.label == ENTITY else (p["title"] or p["id"])
                    extra = _data("passages", p["passages"]) if nodes.label == ENTITY else ""
                    fh.write(
                        f'    <node id={quoteattr(r["id"])}>{_data("label", label)}{_data("kind", nodes.label)}'
                        f'{_data("idx", p["idx"])}{extra}</node>\n'
                    )
                    n_nodes += 1
            for rel in graph.rels:
                if rel.start not in (PASSAGE, ENTITY) or rel.end not in (PASSAGE, ENTITY):
                    continue
                for r in rel.rows:
                    p = r["props"]
                    preds = _data("predicates", "; ".join(p["predicates"])) if "predicates" in p else ""
                    fh.write(
                        f'    <edge source={quoteattr(r["s"])} target={quoteattr(r["t"])}>'
                        f'{_data("type", rel.type)}{_data("weight", repr(p["weight"]))}{preds}</edge>\n'
                    )
                    n_edges += 1
            fh.write("  </graph>\n</graphml>\n")
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {"path": str(out), "nodes": n_nodes, "edges": n_edges, "seconds": round(time.perf_counter() - t0, 3)}
