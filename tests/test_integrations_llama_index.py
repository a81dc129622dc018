"""The LlamaIndex retriever through llama-index-core's own interfaces: ``retrieve``/``aretrieve``
and a ``RetrieverQueryEngine`` answering with llama-index's ``MockLLM``."""

import asyncio
import sys
import types

import pytest
from fake_remote import AsyncFakeClient, FakeClient, ticks_during
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode

from hippo.errors import HippoError
from hippo.integrations.langchain import HippoRetriever as LangChainRetriever
from hippo.integrations.llama_index import HippoRetriever, to_nodes
from hippo.types import Hit, QueryResult

QUESTION = "Where is the company that Alice Smith founded headquartered?"


def test_nodes_carry_the_same_metadata_as_langchain_documents(tiny_engine):
    nodes = HippoRetriever(tiny_engine, k=3).retrieve(QUESTION)
    docs = LangChainRetriever(source=tiny_engine, k=3).invoke(QUESTION)
    assert all(isinstance(n, NodeWithScore) and isinstance(n.node, TextNode) for n in nodes)
    assert [n.node.node_id for n in nodes] == [d.id for d in docs]
    assert [n.node.text for n in nodes] == [d.page_content for d in docs]
    assert [n.node.metadata for n in nodes] == [d.metadata for d in docs]
    assert [n.score for n in nodes] == [d.metadata["score"] for d in docs]
    assert nodes[0].score > nodes[1].score > nodes[2].score


def test_the_llm_sees_the_passage_not_hippos_bookkeeping(tiny_engine):
    node = HippoRetriever(tiny_engine, k=1).retrieve(QUESTION)[0].node
    shown = node.get_content(metadata_mode=MetadataMode.LLM)
    assert shown == node.text  # title is already the first line; ids, scores, seeds stay out
    assert node.ref_doc_id is None  # a plain passage is its own document

    chunk = Hit(0, "p-1", 0.5, "Guide", "Guide\nInstall it.", document_id="doc-1", source="guide.md",
                headings=("Setup",), span=(10, 21), metadata={"speaker": "Ann"})
    node = to_nodes(QueryResult("q", "hippo", "ppr", (chunk,)))[0].node
    assert node.ref_doc_id == "doc-1"
    assert node.metadata["headings"] == ["Setup"] and node.metadata["span"] == [10, 21]
    shown = node.get_content(metadata_mode=MetadataMode.LLM)
    assert "speaker: Ann" in shown and "source: guide.md" in shown and "passage_id" not in shown


def test_query_engine_with_llama_index_mock_llm(tiny_engine, capsys):
    retriever = HippoRetriever(tiny_engine, k=2)
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())  # MockLLM echoes its prompt
    response = engine.query(QUESTION)
    want = [h.passage_id for h in tiny_engine.retrieve(QUESTION, k=2).hits]
    assert [n.node.node_id for n in response.source_nodes] == want
    for n in response.source_nodes:
        assert n.node.text in str(response)  # the retrieved passages reached the LLM's prompt
    assert QUESTION in str(response)
    with capsys.disabled():
        print(f"\nRetrieverQueryEngine over hippo, source nodes: "
              f"{[(n.node.metadata['title'], round(n.score, 4)) for n in response.source_nodes]}")

    short = RetrieverQueryEngine.from_args(retriever, llm=MockLLM(max_tokens=5))
    assert str(short.query(QUESTION)).split() == ["text"] * 5  # MockLLM's reply when capped


def test_aretrieve_runs_off_the_event_loop(tiny_engine):
    slow = FakeClient("local", None, engine=tiny_engine, delay=0.4)
    retriever = HippoRetriever(slow, k=2)

    nodes, ticks = asyncio.run(ticks_during(retriever.aretrieve(QueryBundle(QUESTION))))
    assert [n.node.node_id for n in nodes] == [h.passage_id for h in tiny_engine.retrieve(QUESTION, k=2).hits]
    assert ticks >= 10
    native = AsyncFakeClient("local", None, engine=tiny_engine)
    asyncio.run(HippoRetriever(native, k=2).aretrieve(QUESTION))
    assert native.calls == [("aretrieve", QUESTION, 2)]


def test_constructors_match_the_langchain_ones(tiny_index_path, tiny_engine, monkeypatch):
    retriever = HippoRetriever.from_index(tiny_index_path, k=2, retrieval__damping=0.6, retriever="dense")
    assert retriever.source.config.retrieval.damping == 0.6
    assert {n.node.metadata["mode"] for n in retriever.retrieve(QUESTION)} == {"dense"}
    with pytest.raises(ValueError, match="k must be"):
        HippoRetriever(tiny_engine, k=0)
    with pytest.raises(TypeError, match="retrieve"):
        HippoRetriever("graphs/sample-index")
    monkeypatch.setitem(sys.modules, "hippo.client", types.SimpleNamespace(
        Client=lambda url, key, namespace: FakeClient(url, key, namespace, engine=tiny_engine)))
    remote = HippoRetriever.from_url("http://127.0.0.1:8000", "secret", "alice", k=2)
    assert remote.source.namespace == "alice"
    assert [n.node.node_id for n in remote.retrieve(QUESTION)] == [n.node.node_id for n in HippoRetriever(tiny_engine, k=2).retrieve(QUESTION)]
    monkeypatch.setitem(sys.modules, "hippo.client", None)
    with pytest.raises(HippoError, match="hippo.client"):
        HippoRetriever.from_url("http://127.0.0.1:8000", "secret", "alice")
