"""Query-time scoring: fact linking, seed weights, reset vector, PPR ranking, dense baseline."""

from hippo.retrieval.scorer import top_k_indices
from hippo.retrieval.hipporag import (
    GraphRanking,
    HippoRAG2Ranker,
    entity_seed_weights,
    minmax,
)

__all__ = ["GraphRanking", "HippoRAG2Ranker", "entity_seed_weights", "minmax", "top_k_indices"]
