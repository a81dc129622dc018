"""Pure graph construction and Personalized PageRank (no IO)."""

from hippo.graph.build import EDGE_TYPES, Graph, build_graph, synonymy_pairs
from hippo.graph.ppr import PPRSolver, personalized_pagerank

__all__ = ["EDGE_TYPES", "Graph", "PPRSolver", "build_graph", "personalized_pagerank", "synonymy_pairs"]
