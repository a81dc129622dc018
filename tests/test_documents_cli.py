"""``hippo index FOLDER`` end to end on real files of every type: citations out, re-runs,
--sync, delete --doc, show-doc, the skipped-file report, and the passage corpus untouched.

The hashing embedder keeps it fast; extraction is the real spaCy extractor."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from fake_openai import ReplayServer

from hippo.cli.main import main
from hippo.corpus import read_corpus
from hippo.documents import list_documents, text_of
from tests.test_ingest import GUIDE, make_pdf
from tests.test_upgrade import base_files

FAST = ["--set", "embed.model=hashing:64"]
HTML = """<html><head><title>Garden</title></head><body><nav>Home | About</nav><article>
<h1>Growing tomatoes</h1><p>Tomatoes need full sun and warm soil. Plant tomatoes after the last frost.</p>
<h2>Watering</h2><p>Water tomatoes deeply twice a week. Mulch keeps the soil moist.</p></article></body></html>"""


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def folder(tmp_path):
    docs = tmp_path / "docs"
    (docs / "garden").mkdir(parents=True)
    (docs / "guide.md").write_text(GUIDE)
    (docs / "garden" / "tomatoes.html").write_text(HTML)
    (docs / "manual.pdf").write_bytes(make_pdf([
        ["Chapter 1 Bees", "Honey bees live in colonies of thousands.", "The queen lays all the eggs of the hive."],
        ["Chapter 2 Wasps", "Wasps build paper nests from chewed wood."]]))
    (docs / "notes.txt").write_text("Ants farm aphids for their honeydew. Ant colonies have many queens.")
    (docs / "kb.jsonl").write_text(json.dumps({"id": "kb-7", "title": "Hornets", "text": "Hornets are large wasps."}) + "\n")
    (docs / "photo.png").write_bytes(b"\x89PNG")
    (docs / "old.txt").write_bytes("caf\xe9".encode("latin-1"))
    return docs


def test_folder_index_cites_sources_and_spans(folder, tmp_path, capsys):
    out = tmp_path / "idx"
    code, stdout, err = run(capsys, "index", folder, "--out", out, "--json", *FAST)
    assert code == 0
    report = json.loads(stdout)
    assert report["documents"]["new"] == 5 and report["documents"]["lists"]["new"] == [
        "garden/tomatoes.html", "guide.md", "kb-7", "manual.pdf", "notes.txt"]
    assert report["counts"]["documents"] == 5 and report["counts"]["passages"] == report["chunks"]["added"] > 5
    skipped = {Path(s["source"]).name: s["reason"] for s in report["skipped"]}
    assert set(skipped) == {"photo.png", "old.txt"} and skipped["old.txt"].startswith("not UTF-8")
    assert err.count("hippo: skipped ") == 2 and "photo.png: unsupported file type .png" in err
    assert json.loads((out / "ingest_report.json").read_text())["skipped"] == report["skipped"]

    code, stdout, _ = run(capsys, "query", out, "Where does the queen lay eggs?", "-k", "8", "--json")
    hits = json.loads(stdout)["hits"]
    assert code == 0 and {h["document_id"] for h in hits} >= {"manual.pdf", "guide.md"}
    for h in hits:  # every hit cites a span of its document's text holding exactly its chunk
        s, e = h["span"]
        body = h["content"][len(h["title"]) + 1 :] if h["title"] else h["content"]
        assert text_of(out, h["document_id"])[s:e] == body
        assert h["source"].startswith(str(folder)) or h["source"] == "kb-7"
    pdf_hit = next(h for h in hits if h["document_id"] == "manual.pdf")
    assert pdf_hit["headings"] == ["Chapter 1 Bees"] and pdf_hit["metadata"]["page"] == 1

    import hippo
    from hippo.embed import HashingEmbedder

    result = hippo.open_index(out, embedder=HashingEmbedder(64)).retrieve("Where does the queen lay eggs?", k=8)
    # the Python API cites exactly as --json does
    assert [h.passage_id for h in result.hits] == [h["passage_id"] for h in hits]
    assert [[h.document_id, h.source, list(h.headings), list(h.span)] for h in result.hits] == [
        [h["document_id"], h["source"], h["headings"], h["span"]] for h in hits]
    assert all(h.metadata["title"] and h.metadata["chunk"] >= 0 for h in result.hits)

    code, stdout, _ = run(capsys, "query", out, "watering tomatoes mulch", "-k", "3")
    assert code == 0 and f"from {folder}/garden/tomatoes.html § Growing tomatoes > Watering, chars " in stdout
    code, stdout, _ = run(capsys, "show-doc", out)
    assert code == 0 and "manual.pdf  (pdf, 2 chunks)  Field manual" in stdout
    code, stdout, _ = run(capsys, "show-doc", out, folder / "guide.md", "--span", "0:3")  # by source path
    assert code == 0 and stdout == "---\n"
    code, stdout, _ = run(capsys, "info", out, "--json")
    assert json.loads(stdout)["counts"]["documents"] == 5

    def reader(body):  # the local fake OpenAI server answers as the QA reader
        return "Thought: the guide says so.\nAnswer: in the brood chamber" if body["messages"][-1]["content"].endswith("Thought: ") else None

    with ReplayServer(handlers=[reader]) as server:
        code, stdout, _ = run(capsys, "ask", out, "Where does the queen lay eggs?", "-k", "3", "--llm-base-url", server.base_url,
                              "--set", f"llm.cache={tmp_path / 'c.sqlite'}")
    assert code == 0 and stdout.startswith("Answer: in the brood chamber") and stdout.count(f"      from {folder}/") == 3

    from hippo.export.neo4j_csv import export_neo4j_csv

    plan = export_neo4j_csv(out, tmp_path / "csv")  # Neo4j: (:Passage)-[:PART_OF]->(:Document), passages cite
    assert plan["counts"]["nodes"]["Document"] == 5 and plan["counts"]["relationships"]["PART_OF"] == report["counts"]["passages"]
    header = (tmp_path / "csv" / "passage.csv").read_text().splitlines()[0]
    assert "document_id" in header and "span_start:int" in header and "heading_path" in header


def test_rerun_reindexes_only_changes_and_sync_deletes(folder, tmp_path, capsys):
    out = tmp_path / "idx"
    assert run(capsys, "index", folder, "--out", out, *FAST)[0] == 0
    code, stdout, _ = run(capsys, "index", folder, "--out", out, "--json", *FAST)
    again = json.loads(stdout)
    assert code == 0 and again["documents"]["unchanged"] == 5 and again["writes"] == {}  # nothing written
    (folder / "notes.txt").write_text("Ants farm aphids for their honeydew. Termites build mounds.")
    (folder / "new.md").write_text("# Moths\n\nMoths fly at night and follow the moon.")
    (folder / "manual.pdf").unlink()
    code, stdout, _ = run(capsys, "index", folder, "--out", out, "--json", *FAST)
    r = json.loads(stdout)
    lists = r["documents"]["lists"]
    assert (lists["new"], lists["changed"], lists["gone"], lists["deleted"]) == (["new.md"], ["notes.txt"], ["manual.pdf"], [])
    assert r["writes"]["add"]["extracted"] == 2  # the new and the changed chunk only
    assert r["chunks"]["deleted"] == 1 and r["writes"]["delete"]["passages"]["removed"] == 1  # notes.txt's old chunk
    code, stdout, _ = run(capsys, "index", folder, "--out", out, "--sync")
    assert code == 0 and "1 deleted" in stdout
    code, stdout, _ = run(capsys, "query", out, "Honey bees colonies queen eggs", "-k", "20", "--json")
    assert "manual.pdf" not in {h["document_id"] for h in json.loads(stdout)["hits"]}
    code, _, err = run(capsys, "show-doc", out, "manual.pdf")
    assert code == 1 and "no document 'manual.pdf'" in err

    code, stdout, _ = run(capsys, "delete", out, "--doc", folder / "new.md", "--doc", "kb-7")  # by source and by id
    assert code == 0 and "deleted 2 document(s) (2 chunks)" in stdout
    assert {d["id"] for d in list_documents(out)} == {"garden/tomatoes.html", "guide.md", "notes.txt"}
    code, _, err = run(capsys, "delete", out, "--doc", "nope.md")
    assert code == 1 and err.count("\n") == 1 and "nope.md" in err and "nothing was deleted" in err
    code, stdout, _ = run(capsys, "index", folder, "--out", out, "--json", *FAST)  # the files are still there: back in
    assert sorted(json.loads(stdout)["documents"]["lists"]["new"]) == ["kb-7", "new.md"]
    code, _, err = run(capsys, "index", folder, "--out", out, "--set", "ingest.chunk_tokens=64")
    assert code == 2 and "--rebuild" in err


def test_bad_single_files_and_empty_folder(tmp_path, capsys):
    (tmp_path / "a.docx").write_bytes(b"PK")
    code, _, err = run(capsys, "index", tmp_path / "a.docx", "--out", tmp_path / "i", *FAST)
    assert code == 1 and "cannot index .docx; supported:" in err and err.count("\n") == 1
    (tmp_path / "scan.pdf").write_bytes(b"%PDF-1.4 garbage")
    code, _, err = run(capsys, "index", tmp_path / "scan.pdf", "--out", tmp_path / "i", *FAST)
    assert code == 1 and "scan.pdf: broken or unreadable PDF" in err
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.png").write_bytes(b"x")
    code, _, err = run(capsys, "index", only_bad, "--out", tmp_path / "i", *FAST)
    assert code == 1 and "no document to index" in err and not (tmp_path / "i" / "CURRENT").exists()


def test_passage_corpus_indexes_as_before(sample_dir, tmp_path, capsys):
    """A HippoRAG corpus is read as passages exactly as before documents existed, and the CLI
    writes the same files as the library path (no chunking, no document registry)."""
    passages = read_corpus(sample_dir / "corpus.json")
    digest = hashlib.sha256(json.dumps([[p.id, p.title, p.content] for p in passages]).encode()).hexdigest()
    assert digest == "5f69579d2100f61545eba8f1e5da51ef89462b257b1ba4c95d1e51a6118027cd"  # main at 16a81e8
    assert all(not p.metadata for p in passages)
    cli, lib = tmp_path / "cli", tmp_path / "lib"
    assert run(capsys, "index", sample_dir / "corpus.json", "--out", cli, *FAST)[0] == 0
    from hippo import build_index, load_config

    build_index(sample_dir / "corpus.json", lib, load_config(overrides=["embed.model=hashing:64"]))
    assert not (cli / "documents").exists() and not (cli / "ingest_report.json").exists()
    assert base_files(cli) == base_files(lib)
    code, stdout, _ = run(capsys, "info", cli, "--json")
    assert json.loads(stdout)["counts"]["documents"] == len(passages)  # each passage is its own document
    shutil.rmtree(lib)


def test_index_inside_the_folder_is_not_read(tmp_path, capsys):
    (tmp_path / "a.md").write_text("# Owls\n\nOwls hunt at night.")
    out = tmp_path / "idx"
    assert run(capsys, "index", tmp_path, "--out", out, *FAST)[0] == 0
    code, stdout, err = run(capsys, "index", tmp_path, "--out", out, "--json")
    report = json.loads(stdout)
    assert code == 0 and report["documents"]["unchanged"] == 1 and report["documents"]["new"] == 0
    assert "idx/: the index being written (--out) is not read" in err
