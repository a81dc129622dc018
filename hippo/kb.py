"""From raw extractions to the normalised knowledge base: entities, facts, provenance.

Pure and deterministic: entities and facts are numbered by first appearance in corpus
order, so the same corpus always gives the same numbering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hippo.ids import entity_id, fact_id, normalize
from hippo.types import Extraction, Fact, Passage

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class KnowledgeBase:
    """Normalised entities and facts with their passage provenance.

    ``fact_subject``/``fact_object`` (F,) are entity indices; ``passage_fact_indptr``
    (P+1,) and ``passage_fact_indices`` list each passage's facts (CSR);
    ``passage_entity_rows``/``cols`` the distinct (passage, entity) containment pairs.
    """

    entity_ids: list[str]
    entity_names: list[str]
    facts: list[Fact]
    fact_subject: IntArray
    fact_object: IntArray
    passage_fact_indptr: IntArray
    passage_fact_indices: IntArray
    passage_entity_rows: IntArray
    passage_entity_cols: IntArray
    dropped_triples: int

    @property
    def fact_passage_count(self) -> IntArray:
        """(F,) number of passages stating each fact."""
        return np.bincount(self.passage_fact_indices, minlength=len(self.facts)).astype(np.int64)

    @property
    def entity_passage_count(self) -> IntArray:
        """(E,) number of passages containing each entity: |C(e)| of HippoRAG 2."""
        return np.bincount(self.passage_entity_cols, minlength=len(self.entity_ids)).astype(np.int64)


def build_kb(passages: Sequence[Passage], extractions: Sequence[Extraction]) -> KnowledgeBase:
    """Normalise every triple, number entities and facts, record provenance.

    A triple whose subject or object normalises to nothing is dropped (and counted);
    HippoRAG 2 keeps it as an empty-named entity that links unrelated passages.
    """
    if len(passages) != len(extractions):
        raise ValueError("one extraction per passage is required")
    ent_index: dict[str, int] = {}
    fact_index: dict[tuple[str, str, str], int] = {}
    facts: list[Fact] = []
    subj: list[int] = []
    obj: list[int] = []
    indptr = [0]
    indices: list[int] = []
    pe_rows: list[int] = []
    pe_cols: list[int] = []
    dropped = 0
    for pi, (passage, ex) in enumerate(zip(passages, extractions)):
        if ex.passage_id != passage.id:
            raise ValueError(f"extraction for {ex.passage_id} does not match passage {passage.id}")
        seen_facts: set[int] = set()
        seen_ents: set[int] = set()
        for s_raw, r_raw, o_raw in ex.triples:
            s, r, o = normalize(s_raw), normalize(r_raw), normalize(o_raw)
            if not s or not o:
                dropped += 1
                continue
            key = (s, r, o)
            fi = fact_index.get(key)
            if fi is None:
                si = ent_index.setdefault(s, len(ent_index))
                oi = ent_index.setdefault(o, len(ent_index))
                fi = fact_index[key] = len(facts)
                facts.append(Fact(fact_id(s, r, o), s, r, o))
                subj.append(si)
                obj.append(oi)
            if fi not in seen_facts:
                seen_facts.add(fi)
                indices.append(fi)
            for e in (subj[fi], obj[fi]):
                if e not in seen_ents:
                    seen_ents.add(e)
                    pe_rows.append(pi)
                    pe_cols.append(e)
        indptr.append(len(indices))
    names = list(ent_index)
    return KnowledgeBase(
        entity_ids=[entity_id(n) for n in names],
        entity_names=names,
        facts=facts,
        fact_subject=np.asarray(subj, dtype=np.int64),
        fact_object=np.asarray(obj, dtype=np.int64),
        passage_fact_indptr=np.asarray(indptr, dtype=np.int64),
        passage_fact_indices=np.asarray(indices, dtype=np.int64),
        passage_entity_rows=np.asarray(pe_rows, dtype=np.int64),
        passage_entity_cols=np.asarray(pe_cols, dtype=np.int64),
        dropped_triples=dropped,
    )
