"""Exports that leave the system: Neo4j (live Bolt sync, neo4j-admin CSV) and GraphML.

Every exporter writes the rows of :func:`hippo.export.graph_rows.build_export_graph`, so
the three agree on labels, types, ids and weights.
"""

from hippo.export.graph_rows import ExportGraph, build_export_graph, expected_counts

__all__ = ["ExportGraph", "build_export_graph", "expected_counts"]
