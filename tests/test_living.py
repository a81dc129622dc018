"""The writable engine: add/delete/compact through the API, item validation, metadata on hits,
the merge policy, compaction beside writes, and PageRank over a base plus later segments."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from hippo import open_index
from hippo.embed import HashingEmbedder
from hippo.errors import HippoError
from hippo.live import compaction
from hippo.testing import TINY_TRIPLES, ScriptedExtractor, fake_config, make_engine, tiny_passages

EMB = HashingEmbedder(64)


def writable(path, script=TINY_TRIPLES, **kw):
    return open_index(path, writable=True, embedder=EMB, extractor=ScriptedExtractor(script), **kw)


def test_add_returns_the_ids_and_validates_items(tmp_path):
    root = tmp_path / "idx"
    passages = tiny_passages()
    make_engine(root, passages[:2])
    with writable(root) as mem:
        ids = mem.add([passages[2], {"text": passages[0].text, "title": passages[0].title},
                       {"id": "note-1", "text": "Ada met Babbage in 1833.", "speaker": "Ada", "session": 3,
                        "time": "1833-06-05", "metadata": {"source": "diary.txt", "span": [0, 24]}}])
        # a new passage; a duplicate of an indexed text (its indexed id); a new id with metadata
        assert ids == [passages[2].id, passages[0].id, "note-1"]
        hit = next(h for h in mem.retrieve("Ada met Babbage", k=4).hits if h.passage_id == "note-1")
        assert hit.metadata == {"source": "diary.txt", "span": [0, 24], "speaker": "Ada", "session": 3, "time": "1833-06-05"}
        assert hit.source == "diary.txt" and hit.span == (0, 24) and hit.document_id == "note-1"
        generation = mem.manifest["generation"]
        bad = [
            ([{"text": "  "}], "item 0: empty text"),
            ([{"txt": "x"}], "unknown key.*'txt'.*valid keys: text, title, id, metadata"),
            ([{"text": "x", "metadata": {"when": object()}}], "metadata is not JSON"),
            ([{"text": "x" * 1_000_001}], "more than the 1,000,000 a passage may have"),
            ([{"id": "note-1", "text": "Other text."}], "already in .* with other text: note-1; pass update=True"),
            ({"text": "x"}, "add takes a list"),
        ]
        for items, message in bad:
            with pytest.raises(HippoError, match=message):
                mem.add(items)
        assert mem.manifest["generation"] == generation  # nothing was written
        assert mem.add([{"id": "note-1", "text": "Other text."}], update=True) == ["note-1"]
        assert mem.delete(["note-1", "nope"], missing_ok=True) == ["note-1"]
        with pytest.raises(HippoError, match="1 of 1 id.*nope.*nothing was deleted"):
            mem.delete(["nope"])
    reader = open_index(root, embedder=EMB)
    with pytest.raises(HippoError, match="read-only.*writable=True"):
        reader.add([{"text": "x"}])


def test_create_makes_an_empty_index_that_grows(tmp_path):
    root = tmp_path / "new"
    with writable(root, create=True, config=fake_config()) as mem:
        assert mem.manifest["counts"]["passages"] == 0 and mem.retrieve("Alice", k=3).hits == ()
        mem.add(tiny_passages())
        assert mem.retrieve("Who founded Acme Corp?", k=1).hits[0].title in ("Alice Smith", "Acme Corp")
        assert mem.manifest["embedder"]["id"] == "hashing:64"
        assert mem.manifest["extractor"]["name"] == "hippo.extractor.scripted.v1"
    with pytest.raises(HippoError, match="create=True needs writable=True"):
        open_index(root, create=True, embedder=EMB)
    with pytest.raises(HippoError, match="not a hippo index.*create=True"):
        writable(tmp_path / "none")


def test_the_policy_bounds_the_segments_and_merges_keep_rows(tmp_path):
    root = tmp_path / "idx"
    passages = [
        tiny_passages()[0],
        *[tiny_passages()[0].__class__(f"n{i}", f"Note {i}\nNote {i} is about Berlin.", f"Note {i}") for i in range(30)],
    ]
    script = {**TINY_TRIPLES, **{f"Note {i}": [(f"note {i}", "about", "Berlin")] for i in range(30)}}
    make_engine(root, passages[:1], script)
    cfg = {"runtime.max_segments": 4, "runtime.merge_factor": 3, "runtime.compact_ratio": 100.0}
    with open_index(root, cfg, writable=True, embedder=EMB, extractor=ScriptedExtractor(script)) as mem:
        mem._writer.background = False
        counts = []
        for p in passages[1:]:
            mem.add([p])
            counts.append(len(mem.manifest["segments"]))
        assert max(counts) <= 5 and mem._writer.last_job["operation"] == "merge"
        assert [s["kind"] for s in mem.manifest["segments"]][0] == "base"
        hits = mem.retrieve("What is note 17 about?", k=3).passage_ids
        assert "n17" in hits and mem.manifest["counts"]["passages"] == 31
    # the merged index equals a from-scratch build of the same passages
    fresh = make_engine(tmp_path / "fresh", passages, script)
    engine = open_index(root, embedder=EMB)
    q = "What is note 5 about?"
    assert engine.retrieve(q, k=5).passage_ids == fresh.retrieve(q, k=5).passage_ids


def test_compaction_replays_the_writes_made_while_it_merged(tmp_path, monkeypatch):
    root = tmp_path / "idx"
    passages = tiny_passages()
    make_engine(root, passages[:2])
    with open_index(root, {"runtime.auto_compact": False}, writable=True, embedder=EMB,
                    extractor=ScriptedExtractor(TINY_TRIPLES)) as mem:
        mem.add([passages[2]])
        mem.delete([passages[0].id])
        started, release = threading.Event(), threading.Event()
        real = compaction.base_members

        def slow_members(*a, **k):
            started.set()
            release.wait(30)
            return real(*a, **k)

        monkeypatch.setattr(compaction, "base_members", slow_members)
        job = threading.Thread(target=lambda: setattr(mem, "_report", mem._writer.compact()))
        job.start()
        assert started.wait(30)
        mem.add([passages[3]])  # while the merge runs: the writer is not blocked
        mem.delete([passages[1].id])
        release.set()
        job.join(60)
        report = mem._report
        assert report["operation"] == "compact" and report["replayed"] == 2
        assert [s["kind"] for s in mem.manifest["segments"]] == ["base", "delta", "delta"]
        live = {h.passage_id for h in mem.retrieve("Berlin Paris Acme", k=10).hits}
        assert live == {passages[2].id, passages[3].id}
        mem.compact()
        assert len(mem.manifest["segments"]) == 1 and mem.manifest["counts"]["passages"] == 2
    fresh = make_engine(tmp_path / "fresh", [passages[2], passages[3]])
    q = "Where is Acme Corp?"
    assert open_index(root, embedder=EMB).retrieve(q, k=2).passage_ids == fresh.retrieve(q, k=2).passage_ids


def test_push_over_a_base_and_later_segments_equals_conjugate_gradients(tmp_path):
    """The overlay push kernel (base rows with shifted entity columns, plus the correction's
    rows) ranks as conjugate gradients on the merged matrix, before and after compaction."""
    from test_scale import synthetic_corpus

    from hippo.config import Config
    from hippo.prepared import write_prepared

    corpus, emb, _, _ = synthetic_corpus(n_p=600, seed=3)
    root = tmp_path / "idx"
    write_prepared(root, corpus, Config())
    # the synthetic corpus names entities no fact mentions (a build from text never has them);
    # compacting drops them, so that compacting again later changes nothing but the numbering
    with open_index(root, writable=True, embedder=emb, extractor=ScriptedExtractor({})) as mem:
        mem.compact()
    script = {f"x{i}": [(corpus.entity_names[i], "links", corpus.entity_names[i + 7]), (f"fresh {i}", "near", corpus.entity_names[i])]
              for i in range(20)}
    with open_index(root, {"runtime.auto_compact": False}, writable=True, embedder=emb,
                    extractor=ScriptedExtractor(script)) as mem:
        for i in range(20):
            mem.add([{"title": f"x{i}", "text": f"{corpus.entity_names[i]} links {corpus.entity_names[i + 7]}."}])
        mem.delete([f"p{i}" for i in range(0, 60, 3)])
    exact = open_index(root, {"retrieval.ppr_method": "cg", "retrieval.ppr_tol": 1e-10}, embedder=emb)
    push = exact.with_overrides({"retrieval.ppr_method": "push", "retrieval.passage_seed_top_k": 0,
                                 "retrieval.ppr_push_eps": 1e-10, "retrieval.ppr_push_certify": False})
    assert not push.solver.push.plain  # the overlay kernel
    queries = [f"what did {corpus.entity_names[i]} do" for i in range(0, 40, 2)]
    for retriever in ("hippo", "hipporag2"):
        a = exact.retrieve_many(queries, k=10, retriever=retriever)
        b = push.retrieve_many(queries, k=10, retriever=retriever)
        same_rankings(a, b)
        assert not any(pid in {f"p{i}" for i in range(0, 60, 3)} for r in a for pid in r.passage_ids)
    before = exact.retrieve_many(queries, k=10)
    with open_index(root, writable=True, embedder=emb, extractor=ScriptedExtractor(script)) as mem:
        mem.compact()
    after = open_index(root, {"retrieval.ppr_method": "cg", "retrieval.ppr_tol": 1e-10}, embedder=emb)
    same_rankings(before, after.retrieve_many(queries, k=10))


def same_rankings(a, b, rtol=1e-6):
    """The same passages in the same places with the same scores, but for neighbours whose
    scores tie within ``rtol`` (which solver noise may order either way)."""
    for x, y in zip(a, b, strict=True):
        assert np.allclose([h.score for h in x.hits], [h.score for h in y.hits], rtol=rtol)
        assert all(p == q or abs(h.score - g.score) <= rtol * h.score
                   for p, q, h, g in zip(x.passage_ids, y.passage_ids, x.hits, y.hits))
        assert set(x.passage_ids[:-1]) <= set(y.passage_ids)


def test_one_reader_engine_serves_threads_while_the_index_is_written_and_compacted(tmp_path):
    """Threads share one reader engine that follows commits (merges and compactions renumber
    rows): every answer is consistent, each hit's id naming its own text, and nothing raises."""
    root = tmp_path / "idx"
    notes = [{"id": f"n{i}", "title": f"Note {i}", "text": f"Note {i} says that city {i % 7} is near river {i % 5}."}
             for i in range(40)]
    script = {f"Note {i}": [(f"city {i % 7}", "near", f"river {i % 5}"), (f"note {i}", "mentions", f"city {i % 7}")]
              for i in range(40)}
    texts = {n["id"]: f"{n['title']}\n{n['text']}" for n in notes}
    with open_index(root, {"runtime.max_segments": 3, "runtime.merge_factor": 2}, writable=True, create=True,
                    embedder=EMB, extractor=ScriptedExtractor(script), config=fake_config()) as mem:
        mem.add(notes[:5])
        reader = open_index(root, embedder=EMB)
        errors: list[BaseException] = []
        stop = threading.Event()

        def read() -> None:
            while not stop.is_set():
                try:
                    for res in reader.retrieve_many(["Which city is near river 3?", "What does note 12 say?"], k=5):
                        for h in res.hits:
                            assert h.content == texts[h.passage_id]
                except BaseException as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)
                    return

        threads = [threading.Thread(target=read) for _ in range(3)]
        for t in threads:
            t.start()
        for i, n in enumerate(notes[5:], 5):
            mem.add([n])
            if i % 6 == 0:
                mem.delete([f"n{i - 3}"])
            if i % 13 == 0:
                mem.compact()
        stop.set()
        for t in threads:
            t.join(60)
        assert errors == []
        assert reader.retrieve(texts["n39"], k=1, retriever="dense").passage_ids == ["n39"]  # it followed the last write
        assert reader.manifest["counts"]["passages"] == mem.manifest["counts"]["passages"]


def test_compaction_gathers_large_vector_sets_into_files_with_the_same_result(tmp_path, monkeypatch):
    from hippo.live import build

    passages = tiny_passages()
    for name, gather_in_file in (("memory", 1 << 40), ("file", 0)):
        monkeypatch.setattr(build, "GATHER_IN_FILE", gather_in_file)
        root = tmp_path / name
        make_engine(root, passages[:3])
        with writable(root) as mem:
            mem.add(passages[3:])
            mem.delete([passages[1].id])
            mem.compact()
    seg = {name: tmp_path / name / json.loads((tmp_path / name / "CURRENT").read_text())["segments"][0]["name"]
           for name in ("memory", "file")}
    files = {name: {p.name: p.read_bytes() for p in folder.iterdir()} for name, folder in seg.items()}
    assert files["memory"] == files["file"] and "fact_vectors.npy" in files["file"]


def test_drop_pages_keeps_the_data_and_spares_writable_maps(tmp_path):
    from hippo.retrieval.vectors import drop_pages

    a = np.arange(1 << 16, dtype=np.float32).reshape(-1, 16)
    np.save(tmp_path / "a.npy", a)
    read = np.load(tmp_path / "a.npy", mmap_mode="r")
    assert float(read.sum()) == float(a.sum())
    drop_pages(read)  # out of the resident set, still readable
    assert np.array_equal(read, a)
    changed = np.load(tmp_path / "a.npy", mmap_mode="c")  # copy-on-write: MADV_DONTNEED would lose the change
    changed[:] = 7
    drop_pages(changed)
    assert (changed == 7).all()
    drop_pages(a)  # in memory: nothing to do


@pytest.mark.parametrize("long_lived", [True, False])
def test_a_long_lived_writer_of_a_large_base_reads_its_synonymy_files_once(tmp_path, monkeypatch, long_lived):
    """After its first write, a long-lived writer whose base has an entity IVF index reads the
    entity vectors and the IVF file into the page cache in the background, once; ``hippo add``
    (merges before it exits, ``background`` off) does not."""
    from hippo.live.memory import WRITE_SET, MemoryWriter

    read: list[tuple[str, ...]] = []

    class Files:  # the base's files, as if its entities had an IVF index
        def prefetch(self, names):
            read.append(tuple(names))
            return 0

    monkeypatch.setattr(MemoryWriter, "_large_base", lambda self: Files())
    passages = tiny_passages()
    make_engine(tmp_path / "idx", passages[:3])
    with writable(tmp_path / "idx") as mem:
        mem._writer.background = long_lived
        mem.add(passages[3:4])
        mem.add(passages[4:5])
        if mem._writer._warming is not None:
            mem._writer._warming.join(10)
    assert read == ([WRITE_SET] if long_lived else [])
