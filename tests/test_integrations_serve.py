"""Both retrievers over a real ``hippo serve`` process, through ``from_url`` and the real client.
Skipped where hippo has no HTTP client yet (``hippo.client``, from the serve work)."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from hippo.client import Client
from hippo.integrations.langchain import HippoRetriever
from hippo.integrations.llama_index import HippoRetriever as LlamaRetriever
from hippo.testing import TINY_CORPUS

QUESTIONS = ["Where is the company that Alice Smith founded headquartered?", "What is the capital of Germany?"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = tmp_path_factory.mktemp("serve")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIPPO_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hippo.cli.main", "serve", "--root", str(root), "--port", str(port), "--no-auth",
         "--set", "embed.model=hashing:64"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "hippo serve did not become ready"
            time.sleep(0.2)
        Client(url, None, namespace="alice").add([{"title": t, "text": x} for t, x in TINY_CORPUS])
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def test_from_url_documents_are_the_servers_hits(server):
    client = Client(server, None, namespace="alice")
    retriever = HippoRetriever.from_url(server, None, "alice", k=2)
    for q in QUESTIONS:
        hits = client.retrieve(q, k=2).hits
        docs = retriever.invoke(q)
        assert [d.id for d in docs] == [h.passage_id for h in hits]
        assert [d.metadata["score"] for d in docs] == pytest.approx([h.score for h in hits])
    batched = retriever.batch(QUESTIONS)
    assert [[d.id for d in ds] for ds in batched] == [[d.id for d in retriever.invoke(q)] for q in QUESTIONS]
    assert [d.id for d in asyncio.run(retriever.ainvoke(QUESTIONS[0]))] == [d.id for d in retriever.invoke(QUESTIONS[0])]
    nodes = LlamaRetriever.from_url(server, None, "alice", k=2).retrieve(QUESTIONS[0])
    assert [n.node.node_id for n in nodes] == [d.id for d in retriever.invoke(QUESTIONS[0])]
