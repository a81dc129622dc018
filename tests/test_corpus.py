import json

import pytest

from hippo.corpus import read_corpus
from hippo.errors import CorpusError
from hippo.ids import passage_id


def test_hipporag_json(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps([{"title": "T", "text": "body"}, {"title": "", "text": "no title"}]))
    ps = read_corpus(f)
    assert [p.content for p in ps] == ["T\nbody", "no title"]
    assert ps[0].id == passage_id("T\nbody") and ps[0].text == "body" and ps[0].title == "T"


def test_jsonl_keeps_ids_and_dedupes(tmp_path):
    f = tmp_path / "c.jsonl"
    lines = [{"id": "a1", "title": "A", "text": "x"}, {"text": "y"}, {"text": "y"}]
    f.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    ps = read_corpus(f)
    assert [p.id for p in ps] == ["a1", passage_id("y")]


def test_folder_of_text_files(tmp_path):
    (tmp_path / "b.md").write_text("# B\nsecond")
    (tmp_path / "a.txt").write_text("first")
    (tmp_path / "skip.csv").write_text("nope")
    ps = read_corpus(tmp_path)  # documents: chunked, titled by a leading "# " heading, else the file stem
    assert [p.title for p in ps] == ["a", "B"]
    assert ps[0].content == "a\nfirst" and ps[1].content == "B\nsecond"
    assert [p.metadata["document_id"] for p in ps] == ["a.txt", "b.md"]


def test_missing_file():
    with pytest.raises(CorpusError, match="corpus not found"):
        read_corpus("/nonexistent/corpus.json")


def test_malformed_jsonl_names_the_line(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text('{"text": "ok"}\n{"text": broken}\n')
    with pytest.raises(CorpusError, match=r"c\.jsonl:2: malformed JSON"):
        read_corpus(f)


def test_malformed_json_names_line_and_column(tmp_path):
    f = tmp_path / "c.json"
    f.write_text('[{"text": "ok"},\n {"text": }]')
    with pytest.raises(CorpusError, match="line 2"):
        read_corpus(f)


def test_item_without_text_names_the_item(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps([{"text": "a"}, {"title": "only"}]))
    with pytest.raises(CorpusError, match='item 1: missing string field "text"'):
        read_corpus(f)


def test_empty_corpus(tmp_path):
    f = tmp_path / "c.json"
    f.write_text("[]")
    with pytest.raises(CorpusError, match="empty"):
        read_corpus(f)


def test_conflicting_ids(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text('{"id": "x", "text": "a"}\n{"id": "x", "text": "b"}\n')
    with pytest.raises(CorpusError, match="used by two passages"):
        read_corpus(f)


def test_unknown_extension(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text("a,b")
    with pytest.raises(CorpusError, match="unknown corpus format"):
        read_corpus(f)


def test_passage_lists_are_validated_like_files(tmp_path):
    from hippo.corpus import make_passage
    from hippo.testing import make_engine

    a = make_passage("Alice Smith was born in Paris.", "Alice Smith")
    engine = make_engine(tmp_path / "idx", passages=[a, a, make_passage("Paris is in France.", "Paris")])
    assert len(engine.passage_ids) == 2
    with pytest.raises(CorpusError, match="empty"):
        make_engine(tmp_path / "idx2", passages=[])
