"""The Neo4j export against a real server: counts, ids and weights, idempotence, resumption,
query activation, the guide's queries, the CSV import, Browser.

These tests wipe the database they are given, so they run only against a server named by
``HIPPO_NEO4J_URI`` (``.ci/run`` starts one and sets it, with ``HIPPO_NEO4J_HOME``). Without
it they skip; in CI (``CI`` set) a missing or unreachable server fails them instead.
"""

from __future__ import annotations

import html
import json
import os
import random
import re
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from hippo.cli.main import main
from hippo.embed.hashing import HashingEmbedder
from hippo.errors import Neo4jError
from hippo.export.graph_rows import build_export_graph, expected_counts
from hippo.export.neo4j_bolt import (
    Target, connect, existing_nodes, existing_rels, export_to_neo4j, neo4j_counts, node_upsert, rel_upsert, write_query_activation,
)
from hippo.export.neo4j_csv import export_neo4j_csv
from hippo.graph.build import EDGE_TYPES
from hippo.indexer import build_index
from hippo.neo4j import server
from hippo.ids import entity_id, fact_id
from hippo.live.flat import FlatIndex
from hippo.types import Passage
from hippo.testing import TINY_TRIPLES, ScriptedExtractor, fake_config, make_engine, tiny_passages

pytestmark = pytest.mark.neo4j

# Read at import: the autouse fixture of conftest.py clears HIPPO_* before each test.
ENV = {k: v for k, v in os.environ.items() if k.startswith("HIPPO_NEO4J_") or k in ("HIPPO_TEST_MUSIQUE_INDEX", "CI")}
IN_CI = bool(ENV.get("CI"))
REPO = Path(__file__).resolve().parent.parent
MUSIQUE = REPO.parent / "shared" / "data" / "musique100"
GUIDE = REPO / "hippo" / "neo4j" / "assets" / "guide.html"
GRASS = REPO / "hippo" / "neo4j" / "assets" / "hippo.grass"
QUESTION = "Who was the first president of the association that published the Journal of Psychotherapy Integration?"
REL_OF_KIND = {"relation": "RELATION", "context": "CONTAINS", "synonym": "SYNONYM"}


def _missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def local_server() -> server.ServerInfo | None:
    """The server of HIPPO_NEO4J_HOME when it runs (credentials, HTTP port, jars)."""
    home = ENV.get("HIPPO_NEO4J_HOME")
    return server.status(Path(home)) if home else None


@pytest.fixture(scope="session")
def target(local_server) -> Target:
    uri = ENV.get("HIPPO_NEO4J_URI")
    if not uri:
        _missing("HIPPO_NEO4J_URI is not set: these tests wipe the database, so they need a server named for them (.ci/run starts one)")
    if "HIPPO_NEO4J_PASSWORD" in ENV:
        auth: tuple[str, str] | None = (ENV.get("HIPPO_NEO4J_USER", "neo4j"), ENV["HIPPO_NEO4J_PASSWORD"])
    else:
        auth = local_server.driver_auth if local_server else None
    t = Target(uri, auth)
    with connect(t):
        pass  # a Neo4jError here fails the test with the reason
    return t


def wipe(t: Target) -> None:
    with connect(t) as driver, driver.session(database=t.database) as s:
        s.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()


def counts(t: Target) -> dict[str, dict[str, int]]:
    with connect(t) as driver:
        return neo4j_counts(driver, t.database)


def graph_counts(t: Target) -> dict[str, dict[str, int]]:
    """Counts of the exported graph only: labels with nodes, no Query/HippoIndex bookkeeping."""
    c = counts(t)
    nodes = {k: v for k, v in c["nodes"].items() if k not in ("Query", "HippoIndex")}
    rels = {k: v for k, v in c["relationships"].items() if k not in ("SEED", "RETRIEVED", "LINKED")}
    return {"nodes": nodes, "relationships": rels}


def expected(files) -> dict[str, dict[str, int]]:
    e = expected_counts(files)
    return {"nodes": e["nodes"], "relationships": {k: v for k, v in e["relationships"].items() if v}}


@pytest.fixture(scope="session")
def musique_index(tmp_path_factory):
    """The MuSiQue-100 index (recorded OpenIE, real embedder); HIPPO_TEST_MUSIQUE_INDEX reuses a built one."""
    if ENV.get("HIPPO_TEST_MUSIQUE_INDEX"):
        return FlatIndex.open(ENV["HIPPO_TEST_MUSIQUE_INDEX"])
    if not (MUSIQUE / "corpus.json").exists():
        _missing(f"MuSiQue-100 data not found at {MUSIQUE}")
    out = tmp_path_factory.mktemp("musique") / "musique100"
    build_index(MUSIQUE / "corpus.json", out, openie=MUSIQUE / "openie_gpt-3.5-turbo-1106.json")
    return FlatIndex.open(out)


@pytest.fixture(scope="module")
def musique_export(target, musique_index):
    """The MuSiQue index exported into a wiped database, and the first export's report."""
    wipe(target)
    return export_to_neo4j(musique_index, target, batch_size=2000)


# --------------------------------------------------------------------------- MuSiQue


@pytest.mark.slow  # builds MuSiQue-100 with the real embedder
def test_counts_by_label_and_type_equal_the_index(target, musique_index, musique_export):
    want = expected(musique_index)
    assert musique_export.counts == expected_counts(musique_index)
    assert graph_counts(target) == want
    c = musique_index.manifest["counts"]
    assert want["nodes"] == {"Passage": c["passages"], "Entity": c["entities"], "Fact": c["facts"]}
    assert counts(target)["nodes"]["HippoIndex"] == 1
    assert musique_export.counters["nodes_created"] == sum(want["nodes"].values()) + 1  # + HippoIndex
    assert musique_export.counters["relationships_created"] == sum(want["relationships"].values())


@pytest.mark.slow  # builds MuSiQue-100 with the real embedder
def test_sampled_ids_and_weights_equal_the_index(target, musique_index, musique_export):
    files = musique_index
    rng = random.Random(7)
    names = list(files.strings("entity_names"))
    ents = {"ids": [entity_id(n) for n in names], "names": names}
    pids = list(files.strings("passage_ids"))
    n_p = len(pids)
    ids = pids + ents["ids"]
    src, dst, w, kind = (np.asarray(files.array(f"edge_{x}")) for x in ("src", "dst", "weight", "kind"))
    picks = rng.sample(range(len(src)), 300)
    rows = [{"a": ids[src[i]], "b": ids[dst[i]], "type": REL_OF_KIND[EDGE_TYPES[kind[i]]], "w": float(w[i])} for i in picks]
    ent_picks = rng.sample(range(len(ents["ids"])), 100)
    subj, obj = np.asarray(files.array("fact_subject")), np.asarray(files.array("fact_object"))
    facts = [{"id": fact_id(names[a], r, names[b]), "s": names[a], "r": r, "o": names[b]}
             for a, r, b in zip(subj.tolist(), files.strings("fact_relations"), obj.tolist())]
    fact_picks = rng.sample(range(len(facts)), 100)
    with connect(target) as driver:
        got = driver.execute_query(
            "UNWIND $rows AS r MATCH (a {id: r.a})-[x]-(b {id: r.b}) WHERE type(x) = r.type "
            "RETURN r.a AS a, r.b AS b, r.type AS type, collect(x.weight) AS ws", rows=rows, database_=target.database,
        ).records
        weights = {(g["a"], g["b"], g["type"]): g["ws"] for g in got}
        assert len(weights) == len(rows)
        assert all(weights[(r["a"], r["b"], r["type"])] == [r["w"]] for r in rows)  # exactly one, same float32 value
        got_e = driver.execute_query(
            "UNWIND $ids AS id MATCH (e:Entity {id: id}) RETURN e.id AS id, e.name AS name, e.idx AS idx",
            ids=[ents["ids"][j] for j in ent_picks], database_=target.database,
        ).records
        assert {(r["id"], r["name"], r["idx"]) for r in got_e} == {(ents["ids"][j], ents["names"][j], n_p + j) for j in ent_picks}
        got_f = driver.execute_query(
            "UNWIND $ids AS id MATCH (s:Entity)<-[:HAS_SUBJECT]-(f:Fact {id: id})-[:HAS_OBJECT]->(o:Entity) "
            "RETURN f.id AS id, s.name AS s, f.predicate AS r, o.name AS o",
            ids=[facts[k]["id"] for k in fact_picks], database_=target.database,
        ).records
        assert {(r["id"], r["s"], r["r"], r["o"]) for r in got_f} == {(facts[k]["id"], facts[k]["s"], facts[k]["r"], facts[k]["o"]) for k in fact_picks}


@pytest.mark.slow  # builds MuSiQue-100 with the real embedder
def test_second_export_is_a_noop(target, musique_index, musique_export):
    again = export_to_neo4j(musique_index, target)
    assert not again.changed and all(v == 0 for v in again.counters.values())
    assert sum(again.written.values()) == 0 and sum(again.deleted.values()) == 0
    # The MERGE itself is idempotent too: replaying batches bypassing the diff changes nothing.
    graph = build_export_graph(musique_index)
    with connect(target) as driver:
        for label in ("Entity", "Passage"):
            s = driver.execute_query(node_upsert(label), rows=graph.node_rows(label)[:500], database_=target.database).summary
            assert (s.counters.nodes_created, s.counters.properties_set) == (0, 0)
        for rel in graph.rels:
            s = driver.execute_query(rel_upsert(rel), rows=rel.rows[:500], database_=target.database).summary
            assert (s.counters.relationships_created, s.counters.properties_set) == (0, 0)


@pytest.mark.slow  # builds MuSiQue-100 with the real embedder
def test_drift_in_the_database_is_repaired(target, musique_index, musique_export):
    """Missing and stray rows are found by id; an edited row is found by its digest ``h``,
    which the sync trusts (an edit that keeps ``h`` goes unnoticed, as documented)."""
    with connect(target) as driver:
        driver.execute_query("MATCH (e:Entity) WITH e ORDER BY e.idx LIMIT 1 SET e.name = 'tampered' REMOVE e.h", database_=target.database)
        driver.execute_query("MATCH ()-[x:SYNONYM]->() WITH x LIMIT 2 DELETE x", database_=target.database)
        driver.execute_query("CREATE (:Entity {id: 'e-stray'})", database_=target.database)
    fixed = export_to_neo4j(musique_index, target)
    assert fixed.written["Entity"] == 1 and fixed.written["SYNONYM"] == 2 and fixed.deleted["Entity"] == 1
    assert sum(fixed.written.values()) == 3
    assert graph_counts(target) == expected(musique_index)


@pytest.mark.slow  # builds MuSiQue-100 with the real embedder
def test_query_activation_and_guide_queries(target, musique_index, musique_export, monkeypatch, capsys):
    """`hippo query --to-neo4j` stores seeds and passages with the result's scores, and every
    query of the guide runs and returns rows."""
    monkeypatch.setenv("NEO4J_URI", target.uri)
    if target.auth:
        monkeypatch.setenv("NEO4J_USERNAME", target.auth[0])
        monkeypatch.setenv("NEO4J_PASSWORD", target.auth[1])
    code = main(["query", str(musique_index.root), QUESTION, "-k", "5", "--to-neo4j", "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and "stored query" in err
    result = json.loads(out)
    with connect(target) as driver:
        rec = driver.execute_query(
            "MATCH (q:Query {text: $text}) "
            "RETURN [(q)-[r:RETRIEVED]->(p) | [p.id, r.rank, r.score]] AS hits, "
            "[(q)-[s:SEED]->(e) | [e.id, s.weight]] AS seeds, COUNT { (q)-[:LINKED]->(:Fact) } AS facts",
            text=QUESTION, database_=target.database,
        ).records
        assert len(rec) == 1
        hits = sorted(rec[0]["hits"], key=lambda h: h[1])
        assert hits == [[h["passage_id"], h["rank"] + 1, h["score"]] for h in result["hits"]]
        assert sorted(rec[0]["seeds"]) == sorted([s["entity_id"], s["weight"]] for s in result["seeds"])
        assert rec[0]["facts"] == len(result["facts"]) > 0
        queries = [html.unescape(q) for q in re.findall(r'<pre class="pre-scrollable code runnable">(.*?)</pre>', GUIDE.read_text(), re.S)]
        assert len(queries) >= 8
        for q in queries:
            assert driver.execute_query(q, database_=target.database).records, q
    # Writing the same question again replaces its edges instead of adding to them.
    assert main(["query", str(musique_index.root), QUESTION, "-k", "3", "--to-neo4j"]) == 0
    assert counts(target)["relationships"]["RETRIEVED"] == 3 and counts(target)["nodes"]["Query"] == 1


@pytest.mark.slow  # builds MuSiQue-100 with the real embedder
def test_browser_shows_a_styled_multi_hop_path(target, local_server, musique_export, tmp_path):
    from hippo.neo4j.browser import browser_available, screenshot

    if local_server is None:
        _missing("HIPPO_NEO4J_HOME names no running local server (Browser is served by it)")
    if browser_available():
        pytest.skip(f"no headless Chromium: {browser_available()}")
    query = re.findall(r'<pre class="pre-scrollable code runnable">(.*?)</pre>', GUIDE.read_text(), re.S)[-1]
    shown = screenshot(local_server, html.unescape(query), tmp_path / "browser.png")
    assert (tmp_path / "browser.png").stat().st_size > 20_000
    assert shown["nodes"] >= 3 and shown["relationships"] >= 2
    styled = {c.upper() for c in re.findall(r"node\.(?:Entity|Passage|Query) \{[^}]*?\bcolor: (#[0-9A-Fa-f]{6})", GRASS.read_text())}
    assert len(styled) == 3 and styled <= set(shown["node_fills"])


@pytest.mark.slow  # builds MuSiQue-100 with the real embedder
def test_csv_imports_into_a_fresh_database_with_the_same_counts(target, local_server, musique_index, tmp_path):
    if local_server is None:
        _missing("HIPPO_NEO4J_HOME names no running local server (its jars run neo4j-admin)")
    plan = export_neo4j_csv(musique_index, tmp_path / "csv")
    home = tmp_path / "fresh"
    server.install(home, lib_from=Path(local_server.home))
    server.admin_import(home, tmp_path / "csv")
    fresh = server.start(home, auth=False, bolt_port=0, http_port=0)
    try:
        t = Target(fresh.bolt_uri, None)
        assert graph_counts(t) == expected(musique_index) == {
            "nodes": plan["counts"]["nodes"], "relationships": {k: v for k, v in plan["counts"]["relationships"].items() if v}
        }
        # The same digests as a Bolt export, so a sync after the import writes no row.
        graph = build_export_graph(musique_index)
        with connect(t) as driver:
            for label in ("Passage", "Entity", "Fact"):
                assert existing_nodes(driver, t.database, label) == {r["id"]: r["h"] for r in graph.node_rows(label)}
            for rel in graph.rels:
                assert existing_rels(driver, t.database, rel) == {(r["s"], r["t"]): r["h"] for r in rel.rows}
    finally:
        server.stop(home)
    assert server.status(home) is None


# --------------------------------------------------------------------------- tiny index


@pytest.fixture()
def tiny(tmp_path):
    make_engine(tmp_path / "tiny")
    return FlatIndex.open(tmp_path / "tiny")


@pytest.mark.slow  # builds MuSiQue-100 with the real embedder
def test_another_index_needs_replace(target, tiny, musique_index, musique_export):
    with pytest.raises(Neo4jError, match="pass --replace"):
        export_to_neo4j(tiny, target)
    assert graph_counts(target) == expected(musique_index)  # untouched
    export_to_neo4j(tiny, target, replace=True)
    assert graph_counts(target) == expected(tiny)
    assert counts(target)["nodes"]["Query"] == 0


def test_new_generation_writes_only_what_changed(target, tmp_path):
    path = tmp_path / "idx"
    make_engine(path)
    wipe(target)
    first = FlatIndex.open(path)
    export_to_neo4j(first, target)
    passages = tiny_passages()
    changed = [*passages[:3], Passage("p-paris2", "Paris\nParis is the capital of France. Paris hosts the Louvre.", "Paris")]
    triples = {**TINY_TRIPLES, "Paris": [*TINY_TRIPLES["Paris"], ("Paris", "hosts", "Louvre")]}
    build_index(changed, path, fake_config(), extractor=ScriptedExtractor(triples), embedder=HashingEmbedder(64))
    second = FlatIndex.open(path)
    assert second.generation != first.generation
    old, new = build_export_graph(first), build_export_graph(second)
    report = export_to_neo4j(second, target)
    for o, n in zip(old.nodes, new.nodes):
        before = {r["id"]: r["h"] for r in o.rows}
        after = {r["id"]: r["h"] for r in n.rows}
        assert report.written[n.label] == sum(before.get(i) != h for i, h in after.items())
        assert report.deleted[n.label] == len(set(before) - set(after))
    assert 0 < sum(report.written.values()) < sum(len(n.rows) for n in new.nodes) + sum(len(r.rows) for r in new.rels)
    assert report.written["Passage"] == 1  # the changed passage; the loop above checked deletions
    assert graph_counts(target) == expected(second)


def test_interrupted_export_resumes_where_it_stopped(target, tiny):
    wipe(target)
    n_entities = tiny.manifest["counts"]["entities"]

    def stop_after_two_entity_batches(stage: str, done: int, total: int) -> None:
        if stage == "Entity" and done >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_to_neo4j(tiny, target, batch_size=2, progress=stop_after_two_entity_batches)
    assert counts(target)["nodes"]["Entity"] == 4
    with connect(target) as driver:  # claimed by this index, not marked complete
        meta = driver.execute_query("MATCH (m:HippoIndex) RETURN m.path AS path, m.h AS h", database_=target.database).records
    assert [(r["path"], r["h"]) for r in meta] == [(str(tiny.root.resolve()), None)]
    resumed = export_to_neo4j(tiny, target, batch_size=2)
    assert resumed.written["Passage"] == 0 and resumed.written["Entity"] == n_entities - 4
    assert graph_counts(target) == expected(tiny)


class _Proxy:
    """A loopback TCP proxy to the server that can sever every open connection once."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            up = socket.create_connection(self.upstream)
            with self.lock:
                self.conns += [client, up]
            for a, b in ((client, up), (up, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def sever(self) -> None:
        with self.lock:
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.conns.clear()

    def close(self) -> None:
        self.sock.close()
        self.sever()


def test_dropped_connection_is_retried(target, tiny):
    wipe(target)
    host, port = re.match(r"^[a-z+]+://([^:/]+):(\d+)", target.uri).groups()
    proxy = _Proxy((host, int(port)))
    severed = []

    def drop_once(stage: str, done: int, total: int) -> None:
        if stage == "Entity" and not severed:
            severed.append(done)
            proxy.sever()

    try:
        report = export_to_neo4j(tiny, Target(f"bolt://127.0.0.1:{proxy.port}", target.auth), batch_size=2, progress=drop_once)
    finally:
        proxy.close()
    assert severed and report.written["Entity"] == tiny.manifest["counts"]["entities"]
    assert graph_counts(target) == expected(tiny)


def test_wrong_password_is_one_clear_line(target, tiny, capsys):
    if target.auth is None:
        pytest.skip("the server runs without auth")
    code = main(["export", "neo4j", str(tiny.root), "--uri", target.uri, "--user", target.auth[0], "--password", "wrong-password"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "refused" in err and "NEO4J_PASSWORD" in err


def test_passage_vectors_and_vector_index(target, tiny):
    wipe(target)
    export_to_neo4j(tiny, target, vectors=True)
    vec = np.asarray(tiny.array("passage_vectors.npy"), dtype=np.float32)[2].tolist()
    with connect(target) as driver:
        top = driver.execute_query(
            "CALL db.index.vector.queryNodes('hippo_passage_embedding', 1, $v) YIELD node RETURN node.idx AS idx",
            v=vec, database_=target.database,
        ).records
    assert [r["idx"] for r in top] == [2]


def test_query_activation_needs_this_index_exported(target, tmp_path):
    engine = make_engine(tmp_path / "other", passages=tiny_passages()[:3])
    result = engine.retrieve("Where was Alice Smith born?", k=2)
    with pytest.raises(Neo4jError, match="export this index first"):
        write_query_activation(engine.path, result, target)


def test_port_in_use_and_stop_without_server(local_server, tmp_path):
    if local_server is None:
        _missing("HIPPO_NEO4J_HOME names no running local server")
    home = tmp_path / "second"
    bolt_port = int(local_server.bolt_uri.rsplit(":", 1)[1])
    with pytest.raises(Neo4jError, match=f"port {bolt_port} .* in use"):
        server.start(home, bolt_port=bolt_port, http_port=0, lib_from=Path(local_server.home))
    assert server.status(home) is None and server.stop(home) is None
