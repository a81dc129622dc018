"""Documents on the living index: a re-run writes the changed document only (as segments, no
rebuild), chunks shared by two documents, chunks deleted by id, passages of other writers, and
real processes killed between the texts, the passage commits and the registry.

The hashing embedder keeps it fast; extraction is the real spaCy extractor."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hippo.cli.main import main
from hippo.documents import held_documents, list_documents, text_of
from hippo.live.snapshot import Snapshot
from hippo.store import read_manifest
from hippo.store.documents import FOLDER, PENDING, TEXTS, load_registry

REPO = Path(__file__).resolve().parent.parent
FAST = ["--set", "embed.model=hashing:64", "--set", "ingest.chunk_tokens=48"]
DOCS = {
    "bees.md": "# Bees\n\nHoney bees live in colonies. The queen lays the eggs.\n\n## Swarms\n\n"
               "A swarm leaves the hive with the old queen in spring. Beekeepers catch swarms in boxes.\n\n"
               "## Wax\n\nWorkers make wax from honey. Wax cells store pollen and nectar.\n",
    "ants.md": "# Ants\n\nAnts farm aphids for honeydew. Leafcutter ants grow fungus gardens.\n\n## Queens\n\n"
               "Ant colonies may have many queens. A queen can live for decades.\n",
    "owls.txt": "Owls hunt at night. Barn owls eat voles and mice. Their hearing finds prey under snow.",
    "moths.md": "# Moths\n\nMoths fly at night and follow the moon. Many moths drink nectar.\n",
}


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def write(folder: Path, docs: dict[str, str]) -> None:
    for name, text in docs.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


def live(out: Path) -> tuple[dict[str, tuple[int, dict]], dict[str, str]]:
    """Every live passage that cites a document: id -> (row, metadata); and id -> content."""
    snap = Snapshot.open(out)
    try:
        held = held_documents(snap)
        rows = {pid: (held.rows[pid], meta) for doc in held.docs.values() for pid, meta in doc.items()}
        return rows, {pid: snap.passage_contents[r] for pid, (r, _) in rows.items()}
    finally:
        snap.close()


def assert_consistent(out: Path, expected: set[str]) -> None:
    """The documents are exactly ``expected``; every chunk's span indexes its text; each document's
    chunks are numbered 0..n-1 once; no pending note and no orphan text is left."""
    assert {d["id"] for d in list_documents(out)} == expected
    rows, contents = live(out)
    by_doc: dict[str, list[int]] = {}
    for pid, (_, meta) in rows.items():
        s, e = meta["span"]
        body = contents[pid].split("\n", 1)[1] if meta.get("headings") or "\n" in contents[pid] else contents[pid]
        assert text_of(out, meta["document_id"])[s:e] == body, pid
        by_doc.setdefault(meta["document_id"], []).append(meta["chunk"])
    assert set(by_doc) == expected and all(sorted(c) == list(range(len(c))) for c in by_doc.values())
    folder = out / FOLDER
    assert not (folder / PENDING).exists()
    registry = load_registry(out)
    assert {p.name for p in (folder / TEXTS).iterdir()} == {r["text"] for r in registry.documents.values()}
    assert set(registry.documents) == expected


def test_rerun_with_one_changed_file_writes_only_that_document(tmp_path, capsys):
    folder, out = tmp_path / "docs", tmp_path / "idx"
    write(folder, DOCS)
    assert run(capsys, "index", folder, "--out", out, *FAST)[0] == 0
    before_manifest = read_manifest(out)
    before, _ = live(out)
    assert before_manifest["segments"][0]["kind"] == "base" and len(before_manifest["segments"]) == 1

    # an edit in the first section: that chunk changes, the later chunks of bees.md move (their span)
    (folder / "bees.md").write_text(DOCS["bees.md"].replace("The queen lays the eggs.", "The queen, alone, lays all the eggs."))
    # (the merge policy would compact this tiny index at once: its tombstones are over 25% of it)
    code, stdout, _ = run(capsys, "index", folder, "--out", out, "--json", "--set", "runtime.auto_compact=false")
    r = json.loads(stdout)
    assert code == 0 and r["documents"]["lists"]["changed"] == ["bees.md"] and r["documents"]["unchanged"] == 3
    after_manifest = read_manifest(out)
    after, _ = live(out)
    bees_before = {p for p, (_, m) in before.items() if m["document_id"] == "bees.md"}
    bees_after = {p for p, (_, m) in after.items() if m["document_id"] == "bees.md"}
    # a delta, not a rebuild: the same base, one segment for the add and one for the delete
    segs = after_manifest["segments"]
    assert segs[0] == before_manifest["segments"][0] and [s["kind"] for s in segs[1:]] == ["delta", "delta"]
    written = r["writes"]["add"]["passages"]
    assert segs[1]["rows"][0] == 0 and segs[2]["rows"][0] == written["added"] + written["updated"] == len(bees_after) == r["writes"]["add"]["extracted"]
    assert written["added"] == 1 and written["updated"] == len(bees_after) - 1  # one new chunk; the rest only moved
    assert r["writes"]["delete"]["passages"]["removed"] == 1 == len(bees_before - bees_after)  # the old first chunk
    # every other document's passages are untouched: same rows, same citations
    assert {p: v for p, v in after.items() if p not in bees_after} == {p: v for p, v in before.items() if p not in bees_before}
    assert all(after[p][0] >= before_manifest["totals"]["passages"] for p in bees_after)  # rows of the new segment
    assert after_manifest["counts"]["passages"] == before_manifest["counts"]["passages"]
    assert_consistent(out, {"bees.md", "ants.md", "owls.txt", "moths.md"})


def test_shared_chunk_moves_to_the_other_document_when_its_holder_goes(tmp_path, capsys):
    folder, out = tmp_path / "docs", tmp_path / "idx"
    write(folder, {"a/moths.md": DOCS["moths.md"], "b/moths.md": DOCS["moths.md"], "owls.txt": DOCS["owls.txt"]})
    code, stdout, _ = run(capsys, "index", folder, "--out", out, "--json", *FAST)
    r = json.loads(stdout)
    assert code == 0 and r["chunks"]["shared"] == 1 and r["counts"]["documents"] == 3 and r["counts"]["passages"] == 2
    rows, _ = live(out)
    assert {m["document_id"] for _, m in rows.values()} == {"a/moths.md", "owls.txt"}  # one passage, held by the first
    assert text_of(out, "b/moths.md") == DOCS["moths.md"]
    code, stdout, _ = run(capsys, "info", out, "--json")
    assert json.loads(stdout)["counts"]["documents"] == 3

    code, stdout, _ = run(capsys, "delete", out, "--doc", "a/moths.md", "--json")
    done = json.loads(stdout)
    assert code == 0 and done["chunks_deleted"] == 0 and done["chunks_handed_over"] == 1
    rows, _ = live(out)
    assert {m["document_id"] for _, m in rows.values()} == {"b/moths.md", "owls.txt"}
    assert_consistent(out, {"b/moths.md", "owls.txt"})
    code, stdout, _ = run(capsys, "query", out, "moths follow the moon", "-k", "1", "--json")
    assert json.loads(stdout)["hits"][0]["source"] == str(folder / "b" / "moths.md")


def test_a_chunk_repeated_in_its_document_keeps_it_whole_across_reruns(tmp_path, capsys):
    # the same text under the same heading path twice in one file is one passage (citing the first);
    # found on Debian Reference chapters: re-runs saw such documents as changed, and their text as lost
    folder, out = tmp_path / "docs", tmp_path / "idx"
    twice = "# Notes\n\n## Example\n\nRun the command twice.\n\n## Other\n\nSomething else entirely.\n\n## Example\n\nRun the command twice.\n"
    write(folder, {"twice.md": twice, "owls.txt": DOCS["owls.txt"]})
    code, stdout, _ = run(capsys, "index", folder, "--out", out, "--json", *FAST)
    assert code == 0 and json.loads(stdout)["counts"]["passages"] == 3
    code, stdout, _ = run(capsys, "show-doc", out, "twice.md", "--json")
    doc = json.loads(stdout)
    assert code == 0 and [c["chunk"] for c in doc["chunks"]] == [0, 1, 2]
    first, _, third = doc["chunks"]
    assert first["id"] == third["id"] and first["span"] != third["span"]
    for c in doc["chunks"]:
        s, e = c["span"]
        assert text_of(out, "twice.md")[s:e] in ("Run the command twice.", "Something else entirely.")

    code, stdout, _ = run(capsys, "index", folder, "--out", out, "--json", *FAST)
    r = json.loads(stdout)
    assert code == 0 and r["documents"]["unchanged"] == 2 and r["documents"]["lists"]["changed"] == [] and r["writes"] == {}

    (folder / "owls.txt").write_text(DOCS["owls.txt"] + " Owls cough up pellets.")
    code, stdout, _ = run(capsys, "index", folder, "--out", out, "--json", *FAST)
    r = json.loads(stdout)
    assert code == 0 and r["documents"]["lists"]["changed"] == ["owls.txt"] and r["documents"]["unchanged"] == 1
    assert text_of(out, "twice.md") == twice
    code, stdout, _ = run(capsys, "delete", out, "--doc", "twice.md", "--json")
    assert code == 0 and json.loads(stdout)["chunks_deleted"] == 2
    assert {d["id"] for d in list_documents(out)} == {"owls.txt"}


def test_chunk_deleted_by_id_comes_back_and_other_writers_passages_stay(tmp_path, capsys):
    folder, out = tmp_path / "docs", tmp_path / "idx"
    write(folder, {"ants.md": DOCS["ants.md"], "owls.txt": DOCS["owls.txt"]})
    assert run(capsys, "index", folder, "--out", out, *FAST)[0] == 0
    rows, _ = live(out)
    ant = next(p for p, (_, m) in rows.items() if m["document_id"] == "ants.md")
    assert run(capsys, "delete", out, "--ids", ant)[0] == 0
    import hippo
    from hippo.embed import HashingEmbedder

    with hippo.open_index(out, writable=True, embedder=HashingEmbedder(64)) as mem:  # another writer's document
        mem.add([{"text": "Session notes: the owl box is up.", "metadata": {"document_id": "session-1", "speaker": "ann"}}])
    (folder / "owls.txt").unlink()
    code, stdout, _ = run(capsys, "index", folder, "--out", out, "--sync", "--json")
    r = json.loads(stdout)
    assert code == 0 and r["documents"]["lists"]["changed"] == ["ants.md"] and r["documents"]["lists"]["deleted"] == ["owls.txt"]
    assert r["writes"]["add"]["passages"]["added"] == 1  # the chunk deleted by id, restored
    rows, _ = live(out)
    assert ant in rows and {m["document_id"] for _, m in rows.values()} == {"ants.md", "session-1"}
    assert {d["id"] for d in list_documents(out)} == {"ants.md", "session-1"} and r["counts"]["documents"] == 2


KILLED = """
import os, signal, sys
import hippo.ingest.pipeline as pipeline
from hippo.live.memory import MemoryWriter

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

point = sys.argv[1]
if point == "texts-written":      # the new texts and the pending note are on disk, nothing committed
    pipeline._write = die
elif point == "between-commits":  # the delete committed, the add not
    MemoryWriter.add = die
elif point == "passages-committed":  # both commits done, the registry not written
    pipeline.save_registry = die
from hippo.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("point", ["texts-written", "between-commits", "passages-committed"])
def test_killed_write_leaves_no_lie_and_the_next_run_finishes_it(tmp_path, capsys, point):
    folder, out = tmp_path / "docs", tmp_path / "idx"
    write(folder, DOCS)
    assert run(capsys, "index", folder, "--out", out, *FAST)[0] == 0
    before, _ = live(out)
    new_bees = DOCS["bees.md"].replace("The queen lays the eggs.", "The queen, alone, lays all the eggs.")
    (folder / "bees.md").write_text(new_bees)
    (folder / "moths.md").unlink()
    (folder / "wasps.md").write_text("# Wasps\n\nWasps build paper nests from chewed wood.\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", KILLED, point, "index", str(folder), "--out", str(out), "--sync"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert (out / FOLDER / PENDING).exists()

    # killed: the index tells no lie. What the passages hold is what exists, and each span
    # indexes the text of the version its passages come from.
    rows, contents = live(out)
    docs_now = {m["document_id"] for _, m in rows.values()}
    assert {d["id"] for d in list_documents(out)} == docs_now
    for pid, (_, meta) in rows.items():
        s, e = meta["span"]
        assert contents[pid].endswith(text_of(out, meta["document_id"])[s:e])
    if point == "texts-written":
        assert rows == before  # nothing committed
    elif point == "between-commits":  # the stale chunks are gone, the new ones not there yet
        assert docs_now == {"bees.md", "ants.md", "owls.txt"} and text_of(out, "bees.md") == DOCS["bees.md"]
    else:
        assert "wasps.md" in docs_now and text_of(out, "bees.md") == new_bees

    code, stdout, _ = run(capsys, "index", folder, "--out", out, "--sync", "--json")
    r = json.loads(stdout)
    assert code == 0
    assert_consistent(out, {"bees.md", "ants.md", "owls.txt", "wasps.md"})
    if point == "passages-committed":
        assert r["writes"] == {}  # everything was committed: only the registry was missing
    if point == "between-commits":
        assert set(r["writes"]) == {"add"}  # the delete was done; the new chunks come now
    assert text_of(out, "bees.md") == new_bees
