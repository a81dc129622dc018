"""The LangChain retriever: langchain-tests' standard retriever suite, then what hippo adds
(metadata, per-call k, overrides, one retrieve_many per batch, a non-blocking async path, and a
remote source through the same Protocol)."""

import asyncio
import json
import sys
import time
import types

import pytest
from fake_remote import AsyncFakeClient, FakeClient, ticks_during
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_tests.integration_tests import RetrieversIntegrationTests
from pydantic import ValidationError

from hippo.errors import ConfigError, HippoError
from hippo.integrations.common import HIPPO_KEYS
from hippo.integrations.langchain import HippoRetriever

QUESTION = "Where is the company that Alice Smith founded headquartered?"


class TestStandardRetrieverSuite(RetrieversIntegrationTests):
    """langchain-tests' own tests, unchanged (its async test needs the asyncio mark)."""

    pytestmark = [
        pytest.mark.asyncio,
        pytest.mark.filterwarnings("ignore:The test <Function .*> is marked with '@pytest.mark.asyncio'"),
    ]

    @pytest.fixture(autouse=True)
    def _engine(self, tiny_engine):
        self.engine = tiny_engine

    @property
    def retriever_constructor(self):
        return HippoRetriever

    @property
    def retriever_constructor_params(self):
        return {"source": self.engine}

    @property
    def retriever_query_example(self):
        return QUESTION


def test_documents_carry_the_hits_and_their_evidence(tiny_engine):
    result = tiny_engine.retrieve(QUESTION, k=3)
    docs = HippoRetriever(source=tiny_engine, k=3).invoke(QUESTION)
    assert [d.id for d in docs] == [h.passage_id for h in result.hits]
    assert [d.page_content for d in docs] == [h.content for h in result.hits]
    top = docs[0].metadata
    assert set(HIPPO_KEYS) <= set(top)
    assert top["passage_id"] == top["id"] == docs[0].id == top["document_id"]
    assert top["title"] == result.hits[0].title and top["score"] == pytest.approx(result.hits[0].score)
    assert [d.metadata["rank"] for d in docs] == [0, 1, 2]
    assert top["span"] == [0, len(docs[0].page_content)]
    assert top["seeds"] == [s.name for s in result.seeds] and "alice smith" in top["seeds"]
    assert ["alice smith", "founded", "acme corp"] in top["facts"]
    assert top["retriever"] == "hippo" and top["mode"] == "ppr"
    assert json.loads(json.dumps(top)) == top  # JSON-able, as vector stores and tracers need
    assert {d.metadata["title"] for d in docs[:2]} == {"Alice Smith", "Acme Corp"}  # both hops


def test_k_per_call_constructor_and_validation(tiny_engine):
    retriever = HippoRetriever(source=tiny_engine, k=2)
    assert len(retriever.invoke(QUESTION)) == 2
    assert len(retriever.invoke(QUESTION, k=4)) == 4
    with pytest.raises(ValueError, match="k must be"):
        retriever.invoke(QUESTION, k=0)
    with pytest.raises(ValueError, match="k must be"):
        retriever.batch([QUESTION], k=-1)
    with pytest.raises(ValidationError, match="k"):
        HippoRetriever(source=tiny_engine, k=0)
    with pytest.raises(ValidationError, match="RetrievalSource"):
        HippoRetriever(source="graphs/sample-index")


def test_from_index_takes_query_time_overrides(tiny_index_path):
    plain = HippoRetriever.from_index(tiny_index_path, k=2)
    assert plain.source.config.retrieval.damping == 0.5
    keyword = HippoRetriever.from_index(tiny_index_path, k=2, retrieval__damping=0.6)
    dotted = HippoRetriever.from_index(tiny_index_path, k=2, **{"retrieval.damping": 0.7})
    assert keyword.source.config.retrieval.damping == 0.6 and dotted.source.config.retrieval.damping == 0.7
    dense = HippoRetriever.from_index(tiny_index_path, k=2, retriever="dense")
    assert {d.metadata["mode"] for d in dense.invoke(QUESTION)} == {"dense"}
    with pytest.raises(ConfigError, match="dampng"):
        HippoRetriever.from_index(tiny_index_path, retrieval__dampng=0.6)
    with pytest.raises(ConfigError, match="graph.synonymy_threshold"):
        HippoRetriever.from_index(tiny_index_path, graph__synonymy_threshold=0.5)


class Counting(FakeClient):
    """A source over the engine, counting calls (results not sent through JSON)."""

    def retrieve(self, query, k=None):
        self.calls.append(("retrieve", query, k))
        return self.engine.retrieve(query, k=k)

    def retrieve_many(self, queries, k=None):
        self.calls.append(("retrieve_many", list(queries), k))
        return self.engine.retrieve_many(list(queries), k=k)


class Runs(BaseCallbackHandler):
    def __init__(self):
        self.started, self.ended, self.errors = [], [], []

    def on_retriever_start(self, serialized, query, **kwargs):
        self.started.append(query)

    def on_retriever_end(self, documents, **kwargs):
        self.ended.append(len(documents))

    def on_retriever_error(self, error, **kwargs):
        self.errors.append(error)


def test_batch_is_one_retrieve_many_with_a_run_per_query(tiny_engine):
    questions = [QUESTION, "What is the capital of Germany?", "Where was Alice Smith born?"]
    source = Counting("local", None, engine=tiny_engine)
    retriever = HippoRetriever(source=source, k=2)
    runs = Runs()
    batched = retriever.batch(questions, config={"callbacks": [runs]})
    assert source.calls == [("retrieve_many", questions, 2)]
    assert runs.started == questions and runs.ended == [2, 2, 2]
    single = [retriever.invoke(q) for q in questions]
    assert [[d.id for d in ds] for ds in batched] == [[d.id for d in ds] for ds in single]
    again = asyncio.run(retriever.abatch(questions, k=1))
    assert [[d.id for d in ds] for ds in again] == [ds[:1] and [ds[0].id] for ds in single]
    assert source.calls[-1] == ("retrieve_many", questions, 1)
    assert retriever.batch([]) == []


def test_errors_reach_the_callbacks(tiny_engine):
    class Broken(Counting):
        def retrieve(self, query, k=None):
            raise HippoError("index is gone")

    runs = Runs()
    retriever = HippoRetriever(source=Broken("local", None, engine=tiny_engine))
    with pytest.raises(HippoError, match="index is gone"):
        retriever.invoke(QUESTION, config={"callbacks": [runs]})
    assert runs.started == [QUESTION] and len(runs.errors) == 1 and runs.ended == []


def test_ainvoke_leaves_the_event_loop_free(tiny_engine):
    slow = FakeClient("local", None, engine=tiny_engine, delay=0.4)
    retriever = HippoRetriever(source=slow, k=2)

    async def main():
        t0 = time.perf_counter()
        docs, ticks = await ticks_during(retriever.ainvoke(QUESTION))
        return docs, ticks, time.perf_counter() - t0

    docs, ticks, seconds = asyncio.run(main())
    assert [d.id for d in docs] == [h.passage_id for h in tiny_engine.retrieve(QUESTION, k=2).hits]
    assert seconds >= 0.4 and ticks >= 10  # a blocking call would have let the ticker run ~0 times


def test_concurrent_ainvoke_on_one_engine_matches_sequential(tiny_engine):
    questions = [QUESTION, "What is the capital of Germany?", "Where was Alice Smith born?", "What does Acme Corp make?"] * 2
    retriever = HippoRetriever(source=tiny_engine, k=2)

    async def main():
        return await asyncio.gather(*(retriever.ainvoke(q) for q in questions))

    together = asyncio.run(main())
    assert [[d.id for d in ds] for ds in together] == [[d.id for d in retriever.invoke(q)] for q in questions]


def test_a_remote_source_gives_the_same_documents(tiny_engine):
    remote = HippoRetriever(source=FakeClient("http://127.0.0.1:1", "key", "alice", engine=tiny_engine), k=3)
    local = HippoRetriever(source=tiny_engine, k=3)
    got, want = remote.invoke(QUESTION), local.invoke(QUESTION)
    assert [(d.id, d.page_content, d.metadata) for d in got] == [(d.id, d.page_content, d.metadata) for d in want]
    native = AsyncFakeClient("http://127.0.0.1:1", "key", "alice", engine=tiny_engine)
    docs = asyncio.run(HippoRetriever(source=native, k=3).ainvoke(QUESTION))
    assert [d.id for d in docs] == [d.id for d in want]
    assert native.calls == [("aretrieve", QUESTION, 3)]  # the client's own async path, not a thread


def test_from_url_imports_the_client_lazily(tiny_engine, monkeypatch):
    made = []

    def client(url, key, namespace):
        made.append((url, key, namespace))
        return FakeClient(url, key, namespace, engine=tiny_engine)

    monkeypatch.setitem(sys.modules, "hippo.client", types.SimpleNamespace(Client=client))
    retriever = HippoRetriever.from_url("http://127.0.0.1:8000", "secret", "alice", k=2)
    assert made == [("http://127.0.0.1:8000", "secret", "alice")]
    assert all(isinstance(d, Document) for d in retriever.invoke(QUESTION)) and retriever.k == 2

    monkeypatch.setitem(sys.modules, "hippo.client", None)  # an installation without the client
    with pytest.raises(HippoError, match="from_index"):
        HippoRetriever.from_url("http://127.0.0.1:8000", "secret", "alice")
