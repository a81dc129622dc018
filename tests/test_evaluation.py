import json

import pytest

from hippo.errors import QuestionsError
from hippo.evaluation import GoldMatcher, evaluate, load_questions, recall_at
from hippo.testing import make_engine


def test_recall_at_k_is_hipporag_definition():
    assert recall_at(["a", "b", "c"], ["b", "d"], 1) == 0.0
    assert recall_at(["a", "b", "c"], ["b", "d"], 2) == 0.5
    assert recall_at(["a", "b", "c"], ["a", "b"], 5) == 1.0
    assert recall_at(["a"], [], 5) == 0.0


def test_musique_and_2wiki_gold(tmp_path):
    f = tmp_path / "q.json"
    f.write_text(json.dumps([
        {"id": "m1", "question": "q?", "answer": "A", "answer_aliases": ["a"], "paragraphs": [
            {"title": "T1", "paragraph_text": "one", "is_supporting": True},
            {"title": "T2", "paragraph_text": "two", "is_supporting": False}]},
        {"_id": "w1", "question": "q2?", "answer": "B", "supporting_facts": [["T3", 0], ["T9", 1]],
         "context": [["T3", ["s1.", "s2."]], ["T4", ["x"]]]},
    ]))
    qs = load_questions(f)
    assert qs[0].gold == (("T1", "T1\none"),) and qs[0].answers == ("A", "a")
    assert qs[1].gold == (("T3", "T3\ns1. s2."), ("T9", ""))


def test_gold_matching_order():
    m = GoldMatcher(["p1", "p2", "p3"], ["A", "B", "B"], ["A\nx", "B\ny", "B\nz"])
    assert m.match("zzz", "A\nx") == ("p1", "content")  # exact content first
    assert m.match("A", "A\nchanged") == ("p1", "title")  # unique title
    assert m.match("B", "B\n  z") == ("p3", "whitespace")  # duplicate title: whitespace-insensitive
    assert m.match("B", "B\nnothing") == (None, "missing")


def test_evaluate_reports_missing_gold(tmp_path):
    engine = make_engine(tmp_path / "idx")
    f = tmp_path / "q.json"
    f.write_text(json.dumps([
        {"question": "Where was Alice Smith born?", "paragraphs": [
            {"title": "Alice Smith", "paragraph_text": "Alice Smith was born in Paris. She founded Acme Corp.", "is_supporting": True},
            {"title": "Nowhere", "paragraph_text": "not in the corpus", "is_supporting": True}]},
    ]))
    report = evaluate(engine, load_questions(f), ks=(1, 2, 5))
    assert report["gold_missing"] == 1 and report["gold_matched_by_title"] == 0
    assert report["questions"] == 1
    # one of two gold passages is findable: recall can reach 0.5 at most
    assert report["recall"]["5"] == 0.5
    assert set(report["latency_ms"]) == {"p50", "p95"}
    assert report["per_question"][0]["gold_missing"] == ["Nowhere"]


def test_bad_question_files(tmp_path):
    f = tmp_path / "q.json"
    f.write_text('[{"question": "no gold"}]')
    with pytest.raises(QuestionsError, match="no gold passages"):
        load_questions(f)
    f.write_text("[{")
    with pytest.raises(QuestionsError, match="malformed JSON"):
        load_questions(f)
    with pytest.raises(QuestionsError, match="not found"):
        load_questions(tmp_path / "none.json")


def test_jsonl_questions_name_the_bad_line(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_text('{"question": "a", "paragraphs": []}\n\n{"question": \n')
    with pytest.raises(QuestionsError, match=r"q\.jsonl:3: malformed JSON"):
        load_questions(f)
    with pytest.raises(QuestionsError, match="cannot read"):
        load_questions(tmp_path)


def test_title_matches_are_reported(tmp_path):
    engine = make_engine(tmp_path / "idx")
    f = tmp_path / "q.json"
    f.write_text(json.dumps([{"question": "Alice?", "paragraphs": [
        {"title": "Alice Smith", "paragraph_text": "an older revision of the text", "is_supporting": True}]}]))
    report = evaluate(engine, load_questions(f), ks=(1, 4))
    assert report["gold_matched_by_title"] == 1 and report["gold_missing"] == 0
    assert report["recall"]["4"] == 1.0
