"""Hypergraph working memory (HGMem) for multi-step retrieval: pure structure, loop and reasoners."""

from hippo.hgmem.llm_reasoner import LLMReasoner, parse_evolve, parse_merge, parse_plan
from hippo.hgmem.loop import (
    Encode, Evidence, GraphView, HGMemResult, OfflineReasoner, Plan, Reasoner, StepTrace, hints, run,
)
from hippo.hgmem.memory import HGMemError, HypergraphMemory, MemoryPoint
from hippo.hgmem.runner import REASONERS
from hippo.llm.base import ParseError

__all__ = [
    "REASONERS", "Encode", "Evidence", "GraphView", "HGMemError", "HGMemResult", "HypergraphMemory", "LLMReasoner",
    "MemoryPoint", "OfflineReasoner", "ParseError", "Plan", "Reasoner", "StepTrace", "hints", "parse_evolve",
    "parse_merge", "parse_plan", "run",
]
