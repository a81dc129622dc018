"""Query-entity seeds and dense fusion: the two additions of the ``hippo`` retriever."""

import numpy as np
import pytest

from hippo.errors import ConfigError
from hippo.retrieval.query_entities import link_mentions, match_names, name_index, query_entity_weights
from hippo.testing import make_engine

NAMES = name_index(["boston red sox", "boston", "red sox", "founded", "zürich", "us", "kim jong chul"])


def test_match_names_longest_capitalised_spans_first():
    assert match_names("Who founded the Boston Red Sox?", NAMES) == [NAMES["boston red sox"]]
    assert match_names("Where is Boston and the Red Sox stadium?", NAMES) == [NAMES["red sox"], NAMES["boston"]]


def test_match_names_needs_a_capital_that_does_not_open_the_question():
    assert match_names("Boston is where?", NAMES) == []  # only the question's first word is capitalised
    assert match_names("who founded boston?", NAMES) == []  # lower case: not a name cue
    assert match_names("Which city is Boston in?", NAMES) == [NAMES["boston"]]


def test_match_names_unicode_hyphens_and_short_words():
    assert match_names("Who lives in Zürich?", NAMES) == [NAMES["zürich"]]
    assert match_names("Who is the wife of Kim Jong-chul?", NAMES) == [NAMES["kim jong chul"]]
    assert match_names("Is it in the US?", NAMES) == []  # one word under 3 characters


def test_link_mentions_exact_name_first_then_nearest_above_threshold():
    calls = []

    def nearest(mentions):
        calls.append(list(mentions))
        return np.array([1, 2]), np.array([0.9, 0.5])

    found = link_mentions(["The Boston Red Sox", "Sox of Boston", "Something"], NAMES, nearest, 0.8)
    # "The Boston Red Sox" normalises to "the boston red sox": not a name, so it needs the vectors.
    assert calls == [["The Boston Red Sox", "Sox of Boston", "Something"]]
    assert found == [1]
    calls.clear()
    assert link_mentions(["Boston Red Sox", "ZÜRICH"], NAMES, nearest, 0.8) == [NAMES["boston red sox"], NAMES["zürich"]]
    assert calls == []  # exact names never reach the embedder


def test_query_entity_weights_divide_by_passage_count():
    idx, w = query_entity_weights([2, 0], np.array([0, 4, 2]), 6.0)
    assert idx.tolist() == [2, 0] and w.tolist() == [3.0, 6.0]  # an entity in no passage counts as 1
    assert query_entity_weights([2], np.array([4, 0, 2]), 0.0)[0].size == 0


def test_spacy_mentions_drop_values_and_trim():
    from hippo.extract.spacy_ie import SpacyMentionRecognizer

    got = SpacyMentionRecognizer().mentions([
        "Where did Hello Love's performer live in 1930?",
        "What is the name of the waterfall in the country where the Bubye River is found?",
        "what is it",
    ])
    assert got[0] and all("1930" not in m for m in got[0]) and not any(m.endswith("'s") for m in got[0])
    assert "Bubye River" in got[1]
    assert got[2] == []


def _tiny(tmp_path, **overrides):
    return make_engine(tmp_path / "idx", **overrides)


def test_question_names_seed_the_graph(tmp_path):
    engine = _tiny(tmp_path).with_overrides({"retrieval.query_ner": False, "retrieval.linking_top_k": 1})
    result = engine.retrieve("Where is the company of Acme Corp based?", k=4)
    named = [s for s in result.seeds if s.source in ("query", "fact+query")]
    assert [s.name for s in named] == ["acme corp"]
    reference = engine.retrieve("Where is the company of Acme Corp based?", k=4, retriever="hipporag2")
    assert all(s.source == "fact" for s in reference.seeds)
    assert "acme corp" not in {s.name for s in reference.seeds if s.weight > 1}


def test_hippo_with_both_additions_off_is_the_reference(tmp_path):
    engine = _tiny(tmp_path)
    off = engine.with_overrides({"retrieval.query_entity_weight": 0, "retrieval.dense_fusion": 0})
    q = ["Who founded Acme Corp?", "What is the capital of Germany?"]
    for a, b in zip(off.retrieve_many(q, k=4), engine.retrieve_many(q, k=4, retriever="hipporag2")):
        assert [(h.passage_id, h.score) for h in a.hits] == [(h.passage_id, h.score) for h in b.hits]
        assert a.seeds == b.seeds


def test_strong_dense_fusion_converges_to_dense_order(tmp_path):
    engine = _tiny(tmp_path).with_overrides({"retrieval.dense_fusion": 500.0, "retrieval.query_ner": False})
    q = "Berlin is the capital of Germany"
    fused = engine.retrieve(q, k=4)
    dense = engine.retrieve(q, k=4, retriever="dense")
    assert [h.passage_id for h in fused.hits] == [h.passage_id for h in dense.hits]
    plain = engine.with_overrides({"retrieval.dense_fusion": 0.0}).retrieve(q, k=4)
    assert [h.score for h in plain.hits] != pytest.approx([h.score for h in fused.hits])


def test_with_overrides_shares_the_index_and_refuses_index_time_keys(tmp_path):
    engine = _tiny(tmp_path)
    twin = engine.with_overrides({"retrieval.damping": 0.7})
    assert twin.config.retrieval.damping == 0.7 and engine.config.retrieval.damping == 0.5
    assert twin.ranker is engine.ranker
    with pytest.raises(ConfigError, match="cannot change after indexing"):
        engine.with_overrides({"graph.synonymy_threshold": 0.5})
    with pytest.raises(ConfigError, match="retrieval.dense_fusion"):
        engine.with_overrides({"retrieval.dense_fusion": -1})


def test_prepared_batches_slice_and_rank_like_retrieve(tmp_path):
    engine = _tiny(tmp_path)
    qs = ["Who founded Acme Corp?", "Where was Alice Smith born?"]
    batch = engine.prepare(qs)
    assert len(batch) == 2 and batch[1:2].queries == (qs[1],)
    one = engine.rank_prepared(batch[1:2], 3)[0]
    assert one.passages.tolist() == [engine.passage_ids.index(h.passage_id) for h in engine.retrieve(qs[1], k=3).hits]
    with pytest.raises(TypeError):
        batch[0]


def test_spacy_mentions_of_one_query_equal_the_batch_path():
    """A query or two call the NER pipes directly; a batch goes through ``nlp.pipe``: same mentions."""
    import json
    from pathlib import Path

    from hippo.extract.spacy_ie import DIRECT_UP_TO, SpacyMentionRecognizer

    questions = [q["question"] for q in json.loads(
        (Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "musique100" / "questions.json").read_text())]
    recognizer = SpacyMentionRecognizer()
    batch = recognizer.mentions(questions)  # 100 > DIRECT_UP_TO: nlp.pipe
    assert len(questions) > DIRECT_UP_TO
    one_by_one = [recognizer.mentions([q])[0] for q in questions]
    assert one_by_one == batch
    assert sum(map(len, batch)) > 100  # the questions do name things
    assert recognizer.mentions(["Who  founded the   Boston Red Sox?", ""]) == [["Boston Red Sox"], []]
