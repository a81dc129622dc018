"""Incremental insert, update and delete: the result equals a from-scratch build."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hippo import open_index
from hippo.corpus import make_passage
from hippo.embed import HashingEmbedder
from hippo.errors import ConfigError, HippoError, IndexFormatError
from hippo.graph.build import CONTEXT, RELATION, SYNONYM
from hippo.indexer import build_index, delete_passages
from hippo.live.snapshot import Snapshot
from hippo.store import read_manifest
from hippo.testing import ScriptedExtractor, fake_config

VOCAB = [
    "acme corp", "acme corporation", "acme", "berlin", "berlin city", "paris", "paris france",
    "alice smith", "alice b smith", "rockets", "rocket", "germany", "france", "ab", "new york", "york",
]
"""Entity names; under the hashing embedder several are near-synonyms (cos 0.45-0.85)."""
RELATIONS = ["born in", "founded", "located in", "makes"]
IDS = [f"d{i}" for i in range(7)]
EMBEDDER = HashingEmbedder(64)


def doc(pid: str, version: int, triples: list[tuple[str, str, str]]):
    """A passage with a stable id whose text (and so extraction) depends on the version."""
    body = f"{pid} version {version}. " + ". ".join(" ".join(t) for t in triples)
    return make_passage(body, title=f"{pid}.v{version}", id=pid)


def write(root, passages, script, config, **kw):
    return build_index(passages, root, config, extractor=ScriptedExtractor(script), embedder=EMBEDDER, **kw)


def segment_files(root: Path) -> dict[tuple[int, str], bytes]:
    """Every file of every live segment, by position and member name."""
    out = {}
    for k, entry in enumerate(read_manifest(root)["segments"]):
        path = root / entry["name"]
        for f in (sorted(path.iterdir()) if path.is_dir() else [path]):
            out[(k, f.name if path.is_dir() else "segment")] = f.read_bytes()
    return out


def scratch(tmp: Path, passages, script, config) -> Path:
    ref = tmp / "scratch"
    shutil.rmtree(ref, ignore_errors=True)
    write(ref, passages, script, config)
    return ref


def labelled_graph(root: Path) -> dict[tuple[str, str], float]:
    """The live adjacency with nodes named (passage id or entity name): numbering-free."""
    snap = Snapshot.open(root)
    a = snap.graph.merged().tocoo()
    n_p = snap.n_passages

    def name(v: int) -> str:
        return f"p:{snap.passage_ids[v]}" if v < n_p else f"e:{snap.entity_names[v - n_p]}"

    return {(name(r), name(c)): round(float(w), 9) for r, c, w in zip(a.row, a.col, a.data) if w}


def live_counts(root: Path) -> dict[str, object]:
    c = read_manifest(root)["counts"]
    return {k: c[k] for k in ("passages", "entities", "facts", "edges")}


def assert_same_index(root: Path, ref: Path, compacted: bool = False) -> None:
    """The same live passages, entities, facts, edges and weights as the scratch build; once
    compacted, byte-identical segments (so the same vectors and retrieval results too)."""
    assert live_counts(root) == live_counts(ref)
    assert labelled_graph(root) == labelled_graph(ref)
    if compacted:
        a, b = segment_files(root), segment_files(ref)
        assert sorted(a) == sorted(b)
        assert [name for name in a if a[name] != b[name]] == []


def same_retrieval(root: Path, ref: Path, query: str = "acme corp founded in berlin") -> None:
    a = open_index(root, embedder=EMBEDDER).retrieve(query, k=3)
    b = open_index(ref, embedder=EMBEDDER).retrieve(query, k=3)
    assert [h.passage_id for h in a.hits] == [h.passage_id for h in b.hits]
    assert np.allclose([h.score for h in a.hits], [h.score for h in b.hits], rtol=1e-6, atol=1e-12)


def labelled_edges(root: Path) -> dict[tuple[int, str, str], float]:
    """Typed edges of a compacted (or scratch) index, named; an edge stored twice fails."""
    snap = Snapshot.open(root)
    assert len(snap.views) == 1, "typed edges are those of a base"
    b = snap.base
    ids = list(b.strings("passage_ids")) + list(b.strings("entity_names"))
    out = {}
    for s, d, w, k in zip(b.array("edge_src"), b.array("edge_dst"), b.array("edge_weight"), b.array("edge_kind")):
        key = (int(k), ids[s], ids[d])
        assert key not in out, f"edge {key} stored twice"
        out[key] = round(float(w), 5)
    return out


# --------------------------------------------------------------------------- the property


triple = st.tuples(st.sampled_from(VOCAB), st.sampled_from(RELATIONS), st.sampled_from(VOCAB))
universe_st = st.dictionaries(
    st.tuples(st.sampled_from(IDS), st.integers(0, 1)), st.lists(triple, min_size=0, max_size=4),
    min_size=len(IDS) * 2, max_size=len(IDS) * 2,
)
op_st = st.one_of(
    st.tuples(st.just("insert"), st.lists(st.tuples(st.sampled_from(IDS), st.integers(0, 1)), min_size=1, max_size=4)),
    st.tuples(st.just("update"), st.lists(st.tuples(st.sampled_from(IDS), st.integers(0, 1)), min_size=1, max_size=3)),
    st.tuples(st.just("delete"), st.lists(st.sampled_from(IDS), min_size=1, max_size=3)),
    st.tuples(st.just("compact"), st.just(None)),
)
config_st = st.fixed_dictionaries({
    "graph.synonymy_threshold": st.sampled_from([0.45, 0.7, 0.8]),
    "graph.synonymy_max_neighbors": st.sampled_from([1, 2, 101]),
    "graph.edge_weights": st.sampled_from(["reference", "single"]),
})

SEQUENCES = 60
"""Generated sequences per run (each of up to 6 operations, checked after every one)."""


@settings(max_examples=SEQUENCES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(universe=universe_st, ops=st.lists(op_st, min_size=1, max_size=7), overrides=config_st)
def test_any_sequence_equals_the_scratch_build(tmp_path_factory, universe, ops, overrides):
    """Adds, updates, deletes and compactions in any order: after each, the live index equals a
    from-scratch build of its passages (counts, every edge and weight); after a compaction, to
    the byte. Retrieval is compared where the numbering is the scratch build's: while nothing
    was deleted or replaced, and after a compaction (a deleted entity brought back by a later
    add keeps its old row until then, which can only change the order of exact ties)."""
    tmp = tmp_path_factory.mktemp("seq")
    root = tmp / "idx"
    config = fake_config(**{**overrides, "runtime.auto_compact": False})
    docs = {key: doc(key[0], key[1], triples) for key, triples in universe.items()}
    script = {p.title: universe[key] for key, p in docs.items()}
    model: list[tuple[str, int]] = []  # the index's passages in canonical order
    renumbered = False  # a delete or an update since the last compaction
    for kind, arg in ops:
        present = dict(model)
        exists = (root / "CURRENT").exists()
        compacted = False
        if kind == "compact":
            if not exists:
                continue
            with open_index(root, writable=True, embedder=EMBEDDER, extractor=ScriptedExtractor(script)) as mem:
                mem.compact()
                assert len(mem.manifest["segments"]) == 1
            compacted, renumbered = True, False
        elif kind in ("insert", "update"):
            batch = list({pid: (pid, v) for pid, v in arg}.values())  # one version per id, as a corpus file
            conflict = kind == "insert" and any(pid in present and present[pid] != v for pid, v in batch)
            before = segment_files(root) if exists else None
            if conflict:
                with pytest.raises(HippoError, match="pass update=True"):
                    write(root, [docs[k] for k in batch], script, config)
                assert (segment_files(root) if exists else None) == before
                continue
            write(root, [docs[k] for k in batch], script, config, update=kind == "update")
            for pid, v in batch:
                if pid in present and present[pid] != v:
                    model.remove((pid, present[pid]))
                    renumbered = True
                if (pid, v) not in model:
                    model.append((pid, v))
        else:
            if not exists:
                continue
            ids = list(dict.fromkeys(arg))
            before = segment_files(root)
            if any(i not in present for i in ids):
                with pytest.raises(HippoError, match="nothing was deleted"):
                    delete_passages(root, ids, config)
                assert segment_files(root) == before
                continue
            delete_passages(root, ids, config)
            model = [m for m in model if m[0] not in ids]
            renumbered = True
        if not model:
            assert read_manifest(root)["counts"]["passages"] == 0
            assert open_index(root, embedder=EMBEDDER).retrieve("acme corp", k=3).hits == ()
            continue
        ref = scratch(tmp, [docs[k] for k in model], script, config)
        assert_same_index(root, ref, compacted)
        if not renumbered:
            same_retrieval(root, ref)


# --------------------------------------------------------------------------- worked examples

SCRIPT = {
    "a.v0": [("Alice Smith", "founded", "Acme Corp"), ("Acme Corp", "located in", "Berlin")],
    "b.v0": [("Acme Corp", "located in", "Berlin"), ("Acme Corp", "makes", "rockets")],
    "c.v0": [("Berlin City", "located in", "Germany")],
    "c.v1": [("Paris", "located in", "France")],
    "d.v0": [("Alice B Smith", "born in", "Paris")],
}


def docs_of(*keys):
    return [doc(k.split(".")[0], int(k[-1]), SCRIPT[k]) for k in keys]


@pytest.fixture
def config():
    return fake_config(**{"graph.synonymy_threshold": 0.8})


def compacted_edges(root: Path, script) -> dict[tuple[int, str, str], float]:
    """The typed edges after compacting (a base's edge lists); an edge stored twice fails."""
    with open_index(root, writable=True, embedder=EMBEDDER, extractor=ScriptedExtractor(script)) as mem:
        mem.compact()
    return labelled_edges(root)


def test_delete_decrements_relation_weights_and_drops_orphans(tmp_path, config):
    root = tmp_path / "idx"
    write(root, docs_of("a.v0", "b.v0", "c.v0"), SCRIPT, config)
    edges = labelled_edges(root)
    assert edges[(RELATION, "acme corp", "berlin")] == 4.0  # two passages, both orientations
    assert edges[(SYNONYM, "berlin", "berlin city")] > 0
    report = delete_passages(root, ["b"], config)
    graph = labelled_graph(root)
    assert graph[("e:acme corp", "e:berlin")] == 2.0
    assert not any("rockets" in a or "rockets" in b for a, b in graph)  # its only passage went
    assert report.changes["entities"] == {"added": 0, "removed": 1}
    assert report.changes["facts"] == {"added": 0, "removed": 1}
    assert report.changes["extracted"] == 0 and report.changes["embedded"] == 0
    delete_passages(root, ["c"], config)
    edges = compacted_edges(root, SCRIPT)
    assert not any(k[0] == SYNONYM for k in edges)  # "berlin city" went, and its synonym edge
    assert_same_index(root, scratch(tmp_path, docs_of("a.v0"), SCRIPT, config), compacted=True)


def test_update_replaces_text_and_moves_the_passage_last(tmp_path, config):
    root = tmp_path / "idx"
    write(root, docs_of("a.v0", "c.v0", "d.v0"), SCRIPT, config)
    before = segment_files(root)
    with pytest.raises(HippoError, match=r"1 passage\(s\) are already in .* with other text: c; pass update=True"):
        write(root, docs_of("c.v1"), SCRIPT, config)
    assert segment_files(root) == before
    report = write(root, docs_of("c.v1", "d.v0"), SCRIPT, config, update=True)
    assert report.changes["operation"] == "update"
    assert report.changes["passages"] == {"added": 0, "updated": 1, "removed": 0, "unchanged": 1, "duplicates": 0}
    assert report.changes["extracted"] == 1
    engine = open_index(root, embedder=EMBEDDER)
    alive = engine.snapshot.passage_alive
    assert [i for k, i in enumerate(engine.passage_ids) if alive is None or alive[k]] == ["a", "d", "c"]
    ref = scratch(tmp_path, docs_of("a.v0", "d.v0", "c.v1"), SCRIPT, config)
    assert_same_index(root, ref)
    compacted_edges(root, SCRIPT)
    assert_same_index(root, ref, compacted=True)


def test_insert_scores_only_pairs_with_a_new_entity(tmp_path, config):
    root = tmp_path / "idx"
    first = write(root, docs_of("a.v0", "b.v0"), SCRIPT, config)
    n_old = first.counts["entities"]
    assert first.changes["synonymy"]["pairs_scored"] == n_old * (n_old - 1) // 2
    report = write(root, docs_of("c.v0", "d.v0"), SCRIPT, config)
    syn = report.changes["synonymy"]
    new, total = syn["new_entities"], syn["entities"]
    assert (new, total) == (4, n_old + 4)  # berlin city, germany, alice b smith, paris
    assert syn["pairs_scored"] == new * n_old + new * (new - 1) // 2
    assert report.changes["embedded"] == 2 + 4 + 2  # passages, entities, facts: only the new ones
    graph = labelled_graph(root)
    assert graph[("e:alice smith", "e:alice b smith")] > 0 and graph[("e:berlin", "e:berlin city")] > 0
    assert_same_index(root, scratch(tmp_path, docs_of("a.v0", "b.v0", "c.v0", "d.v0"), SCRIPT, config))


def test_the_cap_is_reapplied_when_entities_come_and_go(tmp_path):
    # With one synonym per entity, a closer newcomer displaces an old synonym; deleting it
    # brings the old one back. Both must match the scratch build.
    config = fake_config(**{"graph.synonymy_threshold": 0.45, "graph.synonymy_max_neighbors": 1})
    script = {"x.v0": [("acme corp", "makes", "rockets")], "y.v0": [("acme corporation", "makes", "rocket")],
              "z.v0": [("acme", "located in", "berlin")]}
    d = {k: doc(k[0], 0, v) for k, v in script.items()}
    root = tmp_path / "idx"
    write(root, [d["x.v0"], d["y.v0"]], script, config)
    assert (SYNONYM, "acme corp", "acme corporation") in labelled_edges(root)
    write(root, [d["z.v0"]], script, config)
    assert_same_index(root, scratch(tmp_path, [d["x.v0"], d["y.v0"], d["z.v0"]], script, config))
    delete_passages(root, ["z"], config)
    assert_same_index(root, scratch(tmp_path, [d["x.v0"], d["y.v0"]], script, config))
    assert (SYNONYM, "acme corp", "acme corporation") in compacted_edges(root, script)


def test_nothing_new_writes_nothing_and_duplicate_text_is_skipped(tmp_path, config):
    root = tmp_path / "idx"
    write(root, docs_of("a.v0", "b.v0"), SCRIPT, config)
    report = write(root, docs_of("a.v0"), SCRIPT, config)
    assert report.changes == {} and read_manifest(root)["generation"] == 1
    twin = make_passage(docs_of("b.v0")[0].text, title="b.v0", id="b-copy")  # same text, other id
    assert twin.content == docs_of("b.v0")[0].content
    report = write(root, [twin, *docs_of("c.v0")], SCRIPT, config)
    assert report.changes["passages"]["duplicates"] == 1 and report.changes["passages"]["added"] == 1
    assert list(open_index(root, embedder=EMBEDDER).passage_ids) == ["a", "b", "c"]


def test_an_update_to_another_passages_text_removes_it(tmp_path, config):
    root = tmp_path / "idx"
    a, b = docs_of("a.v0", "b.v0")
    write(root, [a, b], SCRIPT, config)
    b_as_a = make_passage(a.text, title=a.title, id="b")  # b's new text is a's
    report = write(root, [b_as_a], SCRIPT, config, update=True)
    assert report.changes["passages"] == {"added": 0, "updated": 0, "removed": 1, "unchanged": 0, "duplicates": 1}
    assert_same_index(root, scratch(tmp_path, [a, b_as_a], SCRIPT, config))  # a scratch build keeps a only


def test_bad_deletes_change_nothing(tmp_path, config):
    root = tmp_path / "idx"
    write(root, docs_of("a.v0", "b.v0"), SCRIPT, config)
    before = segment_files(root)
    with pytest.raises(HippoError, match=r"1 of 2 id\(s\) are not in .*: nope; nothing was deleted"):
        delete_passages(root, ["a", "nope"], config)
    with pytest.raises(HippoError, match="is not a hippo index"):
        delete_passages(tmp_path / "missing", ["a"], config)
    assert not (tmp_path / "missing").exists()
    assert segment_files(root) == before
    report = delete_passages(root, ["a", "nope"], config, missing_ok=True)
    assert report.changes["passages"]["removed"] == 1


def test_deleting_everything_leaves_an_empty_index_that_takes_adds(tmp_path, config):
    root = tmp_path / "idx"
    write(root, docs_of("a.v0", "b.v0"), SCRIPT, config)
    delete_passages(root, ["a", "b"], config)
    engine = open_index(root, embedder=EMBEDDER)
    assert read_manifest(root)["counts"]["passages"] == 0 and engine.retrieve("acme", k=3).hits == ()
    write(root, docs_of("c.v0"), SCRIPT, config)
    assert engine.retrieve("berlin city", k=3).passage_ids == ["c"]
    assert_same_index(root, scratch(tmp_path, docs_of("c.v0"), SCRIPT, config))


def test_index_time_settings_cannot_change(tmp_path, config):
    root = tmp_path / "idx"
    write(root, docs_of("a.v0"), SCRIPT, config)
    other = fake_config(**{"graph.synonymy_threshold": 0.7})
    with pytest.raises(ConfigError, match=r"graph.synonymy_threshold is 0.7 here but the index .* was built with 0.8"):
        write(root, docs_of("b.v0"), SCRIPT, other)
    with pytest.raises(HippoError, match="built with embedder 'hashing:64'"):
        build_index(docs_of("b.v0"), root, config, extractor=ScriptedExtractor(SCRIPT), embedder=HashingEmbedder(32))
    # query-time and process settings may change
    write(root, docs_of("b.v0"), SCRIPT, config.replace({"retrieval.damping": 0.7, "runtime.max_segments": 3}))
    assert read_manifest(root)["counts"]["passages"] == 2


def test_a_torn_segment_is_an_error_that_says_what_to_do(tmp_path, config):
    root = tmp_path / "idx"
    write(root, docs_of("a.v0"), SCRIPT, config)
    write(root, docs_of("b.v0"), SCRIPT, config)
    seg = root / read_manifest(root)["segments"][1]["name"]
    seg.write_bytes(seg.read_bytes()[:100])
    with pytest.raises(IndexFormatError, match="unreadable.*rebuild"):
        open_index(root, embedder=EMBEDDER)


def test_retrieval_sees_inserted_and_forgets_deleted_passages(tmp_path, config):
    root = tmp_path / "idx"
    write(root, docs_of("a.v0", "b.v0"), SCRIPT, config)
    write(root, docs_of("d.v0"), SCRIPT, config)
    engine = open_index(root, embedder=EMBEDDER)
    assert "d" in engine.retrieve("alice b smith born in paris", k=3).passage_ids
    delete_passages(root, ["d"], config)
    hits = engine.retrieve("alice b smith born in paris", k=3).passage_ids
    assert "d" not in hits and set(hits) == {"a", "b"}
    assert {k for k in compacted_edges(root, SCRIPT) if k[0] == CONTEXT} == {
        (CONTEXT, "a", "alice smith"), (CONTEXT, "a", "acme corp"), (CONTEXT, "a", "berlin"),
        (CONTEXT, "b", "acme corp"), (CONTEXT, "b", "berlin"), (CONTEXT, "b", "rockets"),
    }
