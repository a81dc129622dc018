"""The time and speaker prior in the engine (hippo.retrieval.prior, Engine._rank) and turns
written to a conversation index through ``add``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hippo
from hippo.config import Config
from hippo.embed.hashing import HashingEmbedder
from hippo.retrieval.hipporag import GraphRanking
from hippo.retrieval.prior import candidates, reweight

TURNS = [
    {"id": f"t{n}", "speaker": speaker, "session": str(session), "time": time, "text": text}
    for n, (speaker, session, time, text) in enumerate([
        ("Ada", 1, "2023-05-08T13:56:00", "I went hiking in the Alps with my sister."),
        ("Ben", 1, "2023-05-08T13:57:00", "I went hiking near Lisbon with my dog."),
        ("Ada", 1, "2023-05-08T13:58:00", "My sister loves hiking and painting."),
        ("Ben", 2, "2023-06-20T09:00:00", "I went hiking in the Pyrenees last week."),
        ("Ada", 2, "2023-06-20T09:01:00", "I went hiking again, this time in Norway."),
        ("Ben", 2, "2023-06-20T09:02:00", "Painting is what I do when it rains."),
    ])
]


def _ranking(rows: list[int], scores: list[float], mode: str = "ppr") -> GraphRanking:
    e = np.zeros(0, np.int64)
    return GraphRanking(np.array(rows), np.array(scores, dtype=np.float64), e, np.zeros(0), e, np.zeros(0), mode)


def test_reweight_multiplies_resorts_and_cuts() -> None:
    r = reweight(_ranking([4, 2, 7], [0.5, 0.4, 0.1]), np.array([1, 1, 2.0, 1, 1, 1, 1, 10.0]), 2, 1.5)
    assert r.passages.tolist() == [7, 2] and r.scores.tolist() == pytest.approx([1.0, 0.8])
    # ties break by passage row, whatever the input order
    tie = reweight(_ranking([5, 3], [0.2, 0.2]), np.ones(6), 2, 1.5)
    assert tie.passages.tolist() == [3, 5]


def test_reweight_turns_dense_cosines_into_fused_scale() -> None:
    r = reweight(_ranking([0, 1], [0.9, 0.5], mode="dense"), np.array([1.0, 1.0]), 2, 2.0)
    assert r.scores.tolist() == pytest.approx([np.exp(2.0 * -0.1), np.exp(2.0 * -0.5)])
    assert candidates(5, 1000, 200) == 200 and candidates(500, 1000, 200) == 500 and candidates(5, 30, 200) == 30


@pytest.fixture(scope="module")
def conversation_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("conv") / "mem"
    config = Config().replace({"extract.extractor": "conversation", "embed.model": "hashing:256"})
    with hippo.open_index(root, writable=True, create=True, config=config, embedder=HashingEmbedder(256)) as mem:
        ids = mem.add(TURNS[:3])
        ids += mem.add(TURNS[3:])  # a second write: the prior's columns span segments
    assert ids == [t["id"] for t in TURNS]
    return root


def test_add_to_a_conversation_index_makes_turn_passages(conversation_index: Path) -> None:
    engine = hippo.open_index(conversation_index, embedder=HashingEmbedder(256))
    hit = next(h for h in engine.retrieve("Norway hiking", k=6, retriever="dense").hits if h.passage_id == "t4")
    assert hit.metadata["speaker"] == "Ada" and hit.metadata["session"] == "2"
    assert hit.metadata["time"].startswith("2023-06-20")
    assert hit.title.startswith("Ada, session 2")  # the title hippo index --format conversation gives


@pytest.mark.parametrize("retriever", ["hippo", "hipporag2", "dense"])
def test_time_prior_puts_the_named_month_first(conversation_index: Path, retriever: str) -> None:
    question = "Where did they go hiking in June 2023?"
    plain = hippo.open_index(conversation_index, embedder=HashingEmbedder(256))
    off = plain.retrieve(question, k=6, retriever=retriever)
    assert off.prior == ""
    boosted = plain.with_overrides({"retrieval.time_boost": 1e6}).retrieve(question, k=6, retriever=retriever)
    june = {"t3", "t4", "t5"}
    got = boosted.passage_ids
    assert set(got[: len(june & set(got))]) == june & set(got) and june & set(got)
    assert "2023-06" in boosted.prior and "turns weighted" in boosted.prior
    # scores stay sorted, and the same passages are ranked as without the prior
    assert [h.score for h in boosted.hits] == sorted((h.score for h in boosted.hits), reverse=True)
    assert set(got) == set(off.passage_ids)


def test_speaker_prior_and_rank_prepared_agree(conversation_index: Path) -> None:
    engine = hippo.open_index(conversation_index, {"retrieval.speaker_boost": 1e6}, embedder=HashingEmbedder(256))
    plain = hippo.open_index(conversation_index, embedder=HashingEmbedder(256))
    question = "Did Ben go hiking in Norway or the Alps?"
    assert any(h.metadata["speaker"] != "Ben" for h in plain.retrieve(question, k=3).hits)  # Ada's turns lead unboosted
    res = engine.retrieve(question, k=3)
    assert all(h.metadata["speaker"] == "Ben" for h in res.hits), res.passage_ids
    assert "speaker Ben" in res.prior
    ranked = engine.rank_prepared(engine.prepare([question]), 3)[0]
    assert [engine.passage_ids[i] for i in ranked.passages.tolist()] == res.passage_ids
    # a question that names no speaker and no date ranks as without the prior
    q2 = "hiking with a sister"
    assert engine.retrieve(q2, k=4).passage_ids == plain.retrieve(q2, k=4).passage_ids
    assert engine.retrieve(q2, k=4).prior == ""


def test_bad_boost_is_refused(conversation_index: Path) -> None:
    with pytest.raises(hippo.errors.HippoError, match="retrieval.time_boost"):
        hippo.open_index(conversation_index, {"retrieval.time_boost": 0}, embedder=HashingEmbedder(256))


def test_conversation_config_records_the_chosen_settings(tmp_path: Path) -> None:
    from hippo.conversation import CONVERSATION_SETTINGS, conversation_config

    config = conversation_config(Config().replace({"embed.model": "hashing:256"}))
    assert config.extract.extractor == "conversation" and config.embed.model == "hashing:256"
    for key, value in CONVERSATION_SETTINGS.items():  # query-time keys only: an opened index can override them
        section, name = key.split(".")
        assert section == "retrieval" and getattr(config.retrieval, name) == value
    with hippo.open_index(tmp_path / "m", writable=True, create=True, config=config, embedder=HashingEmbedder(256)) as mem:
        mem.add(TURNS)
    engine = hippo.open_index(tmp_path / "m", embedder=HashingEmbedder(256))
    assert engine.config.retrieval == config.retrieval  # recorded in the index's config
    res = engine.retrieve("Where did Ben go hiking in June 2023?", k=3)
    assert bool(res.prior) == (config.retrieval.time_boost != 1.0 or config.retrieval.speaker_boost != 1.0)
