"""An index started empty (``open_index(..., create=True)``), as ``hippo serve`` starts every
namespace: its base has no rows and no vector columns, and later segments hold everything."""

from __future__ import annotations

import pytest

from hippo import load_config, open_index
from hippo.embed import HashingEmbedder
from hippo.engine import RETRIEVERS

EMB = HashingEmbedder(64)
QUERIES = ["Where does Alice Smith live?", "Who is Zed Quux from Oslo?"]  # a known and an unknown entity


@pytest.mark.parametrize("retriever", RETRIEVERS)
def test_queries_naming_unknown_entities_work_over_an_empty_base(tmp_path, retriever):
    config = load_config().replace({"embed.model": "hashing:64"})
    with open_index(tmp_path / "mem", writable=True, create=True, embedder=EMB, config=config) as mem:
        ids = mem.add([{"title": "Alice Smith", "text": "Alice Smith lives in Paris."},
                       {"title": "Bob Stone", "text": "Bob Stone lives in Rome."}])
        reader = open_index(tmp_path / "mem", embedder=EMB)
        for q in QUERIES:
            assert {h.passage_id for h in reader.retrieve(q, k=2, retriever=retriever).hits} == set(ids)
        mem.delete(ids[:1])  # Alice's entities die: the query's mention must be embedded and matched
        for q in QUERIES:
            assert [h.passage_id for h in reader.retrieve(q, k=2, retriever=retriever).hits] == ids[1:]
