"""Hypergraph working memory (HGMem) for multi-step retrieval: pure structure and loop."""

from hippo.hgmem.loop import Evidence, GraphView, HGMemResult, OfflineReasoner, Plan, Reasoner, StepTrace, hints, run
from hippo.hgmem.memory import HGMemError, HypergraphMemory, MemoryPoint

__all__ = [
    "Evidence", "GraphView", "HGMemError", "HGMemResult", "HypergraphMemory", "MemoryPoint",
    "OfflineReasoner", "Plan", "Reasoner", "StepTrace", "hints", "run",
]
