"""Export rows, CSV and GraphML against the index they come from; CLI errors without a server."""

from __future__ import annotations

import csv
import json
import socket

import networkx as nx
import numpy as np
import pytest

from hippo.cli.main import main
from hippo.export.graph_rows import RelRows, build_export_graph, digest, expected_counts
from hippo.export.graphml import export_graphml
from hippo.export.neo4j_bolt import Target, _ident, node_upsert, rel_upsert, resolve_target, schema_statements
from hippo.export.neo4j_csv import export_neo4j_csv
from hippo.graph.build import EDGE_TYPES
from hippo.ids import entity_id
from hippo.live.flat import FlatIndex
from hippo.testing import make_engine, tiny_passages


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "tiny"
    make_engine(path)
    return FlatIndex.open(path)


def test_rows_mirror_the_index(tiny):
    graph = build_export_graph(tiny)
    assert graph.counts() == expected_counts(tiny)
    names = list(tiny.strings("entity_names"))
    n_p = tiny.manifest["counts"]["passages"]
    by_id = {r["id"]: r["props"] for r in graph.node_rows("Entity")}
    for j, (eid, name) in enumerate(zip(map(entity_id, names), names)):
        assert by_id[eid]["name"] == name and by_id[eid]["idx"] == n_p + j
    # Every index edge is one relationship with the index's weight, between the same nodes.
    idx = {r["id"]: r["props"]["idx"] for nodes in graph.nodes if nodes.label != "Fact" for r in nodes.rows}
    edges = {
        (EDGE_TYPES[k], min(s, d), max(s, d)): w
        for s, d, w, k in zip(*(np.asarray(tiny.array(f"edge_{x}")).tolist() for x in ("src", "dst", "weight", "kind")))
    }
    exported = {}
    for name, rel_type in (("relation", "RELATION"), ("context", "CONTAINS"), ("synonym", "SYNONYM")):
        for r in graph.rel_rows(rel_type):
            a, b = idx[r["s"]], idx[r["t"]]
            exported[(name, min(a, b), max(a, b))] = r["props"]["weight"]
    assert exported == edges


def test_relations_point_from_subject_to_object_and_list_their_facts(tiny):
    graph = build_export_graph(tiny)
    names = {r["id"]: r["props"]["name"] for r in graph.node_rows("Entity")}
    rel = {(names[r["s"]], names[r["t"]]): r["props"] for r in graph.rel_rows("RELATION")}
    assert rel[("alice smith", "acme corp")]["predicates"] == ["founded"]
    assert rel[("acme corp", "berlin")]["predicates"] == ["headquartered in"]
    facts = {r["id"] for r in graph.node_rows("Fact")}
    assert all(set(p["facts"]) <= facts for p in rel.values())


def test_a_segmented_index_exports_as_its_compaction(tmp_path):
    """Adds and deletes after the base: the export equals the export of the compacted index."""
    from hippo.embed.hashing import HashingEmbedder
    from hippo.engine import open_index
    from hippo.testing import TINY_TRIPLES, ScriptedExtractor

    path = tmp_path / "seg"
    passages = tiny_passages()
    make_engine(path, passages[:2])
    with open_index(path, writable=True, embedder=HashingEmbedder(64), extractor=ScriptedExtractor(TINY_TRIPLES)) as mem:
        mem.add(passages[2:])
        mem.delete([passages[0].id])
        segmented = build_export_graph(FlatIndex.open(path))
        assert len(mem.manifest["segments"]) == 3
        mem.compact()
    compacted = build_export_graph(FlatIndex.open(path))
    assert segmented.counts() == compacted.counts() == expected_counts(FlatIndex.open(path))
    for a, b in zip(segmented.nodes, compacted.nodes):
        assert sorted(r["h"] for r in a.rows) == sorted(r["h"] for r in b.rows)
    for a, b in zip(segmented.rels, compacted.rels):
        assert sorted(r["h"] for r in a.rows) == sorted(r["h"] for r in b.rows)


def test_digests_are_stable_and_change_with_content(tiny):
    a, b = build_export_graph(tiny), build_export_graph(tiny)
    assert [r["h"] for r in a.node_rows("Entity")] == [r["h"] for r in b.node_rows("Entity")]
    row = a.node_rows("Entity")[0]
    assert digest({**row["props"], "name": row["props"]["name"] + "x"}) != row["h"]


def test_cypher_takes_values_only_as_parameters():
    for query, _params in schema_statements(384):
        assert "384" not in query
    q = node_upsert("Entity") + rel_upsert(RelRows("RELATION", "Entity", "Entity", []))
    assert "$rows" in q and "r.props" in q
    for bad in ("Entity) DETACH DELETE (n", "entity", "A-B", ""):
        with pytest.raises(ValueError):
            _ident(bad)


def test_csv_files_match_the_rows(tiny, tmp_path):
    plan = export_neo4j_csv(tiny, tmp_path / "csv")
    graph = build_export_graph(tiny)
    out = tmp_path / "csv"
    assert json.loads((out / "import.json").read_text())["counts"] == graph.counts()
    for label, name in plan["nodes"]:
        with open(out / name, newline="") as fh:
            rows = list(csv.reader(fh))
        if label == "HippoIndex":
            assert rows[0][0] == "key:ID(HippoIndex)" and len(rows) == 2
        else:
            assert rows[0][0] == f"id:ID({label})" and rows[0][-1] == "h"
            assert len(rows) - 1 == len(graph.node_rows(label))
    with open(out / "relation.csv", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    assert header[:2] == [":START_ID(Entity)", ":END_ID(Entity)"] and "weight:double" in header
    want = {(r["s"], r["t"]): r["props"]["weight"] for r in graph.rel_rows("RELATION")}
    w = header.index("weight:double")
    assert {(r[0], r[1]): float(r[w]) for r in rows} == want
    # A second export replaces the folder; a foreign folder is refused and left alone.
    export_neo4j_csv(tiny, out)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    code = main(["export", "neo4j", str(tiny.root), "--csv", str(foreign)])
    assert code == 1 and (foreign / "notes.txt").read_text() == "keep" and len(list(foreign.iterdir())) == 1


def test_graphml_round_trips_through_networkx(tiny, tmp_path):
    info = export_graphml(tiny, tmp_path / "g.graphml")
    g = nx.read_graphml(tmp_path / "g.graphml")
    counts = tiny.manifest["counts"]
    assert g.number_of_nodes() == info["nodes"] == counts["passages"] + counts["entities"]
    assert info["edges"] == sum(counts["edges"].values())
    eid = entity_id("acme corp")
    assert "acme corp" in list(tiny.strings("entity_names"))
    assert g.nodes[eid]["label"] == "acme corp" and g.nodes[eid]["kind"] == "Entity"
    pid = tiny_passages()[1].id
    assert g.nodes[pid]["label"] == "Acme Corp"
    assert g.edges[pid, eid]["type"] == "CONTAINS" and g.edges[pid, eid]["weight"] == 1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_server_is_one_clear_line(tiny, capsys):
    code = main(["export", "neo4j", str(tiny.root), "--uri", f"bolt://127.0.0.1:{_free_port()}"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "cannot reach Neo4j" in err and "hippo neo4j start" in err


def test_missing_index_is_one_clear_line(tmp_path, capsys):
    code = main(["export", "neo4j", str(tmp_path / "nope"), "--uri", f"bolt://127.0.0.1:{_free_port()}"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "index not found" in err and "hippo index" in err


def test_bad_uri_is_one_clear_line(tiny, capsys):
    code = main(["export", "neo4j", str(tiny.root), "--uri", "http://127.0.0.1:7474"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "bad Neo4j URI" in err and len(err.splitlines()) == 1


def test_credentials_resolution(tmp_path):
    env = {"NEO4J_URI": "bolt://db.example:7687", "NEO4J_USERNAME": "u", "NEO4J_PASSWORD": "p"}
    assert resolve_target(env=env, home=tmp_path) == Target("bolt://db.example:7687", ("u", "p"))
    assert resolve_target("bolt://h:1", "x", "y", env=env, home=tmp_path) == Target("bolt://h:1", ("x", "y"))
    assert resolve_target(env={}, home=tmp_path) == Target("bolt://127.0.0.1:7687", None)
