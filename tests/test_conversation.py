"""Conversation schema, loaders, time parsing and the conversation extractor (hippo.conversation)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from hippo.conversation import ConversationError, read_conversations, read_turns, turn_passages, turns_from_records
from hippo.conversation.time import DateSpan, conversation_now, normalize_time, question_dates, time_prior

DATA = Path(__file__).parent / "data" / "conversation"


def _write(tmp_path: Path, name: str, lines: list[object]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- loaders


def test_jsonl_turns() -> None:
    turns = read_turns(DATA / "turns.jsonl")
    assert [t.id for t in turns] == ["s1:1", "s1:2", "s1:3", "s2:1", "s2:2"]
    assert [t.session for t in turns] == ["1", "1", "1", "2", "2"]  # numbers and strings alike
    assert turns[0].time == "2023-05-08T13:56:00"
    assert turns[3].time == "2023-06-02T09:00:00+02:00"  # the offset is kept
    assert turns[2].metadata == {"mood": "happy"}  # unknown keys are metadata


def test_locomo_release_format_prefixes_ids_and_keeps_captions() -> None:
    convs = read_conversations(DATA / "locomo_release.json")
    assert [c.id for c in convs] == ["conv-a", "conv-b"]
    a = convs[0]
    assert [t.id for t in a.turns] == ["conv-a/D1:1", "conv-a/D1:2", "conv-a/D1:3", "conv-a/D2:1"]
    assert a.speakers == ("Ada", "Ben")
    assert a.turns[0].time == "2023-05-08T13:56:00" and a.turns[3].time == "2023-06-02T09:00:00"
    assert a.turns[2].text.endswith("[shares a photo: a photo of a beagle puppy]")
    assert a.turns[2].metadata["img_url"] == ["http://example.invalid/p.jpg"]
    assert a.turns[0].metadata["conversation"] == "conv-a"


def test_locomo_flat_format_single_conversation_keeps_ids() -> None:
    (conv,) = read_conversations(DATA / "locomo_flat.json")
    assert [t.id for t in conv.turns] == ["D1:1", "D1:2"]
    assert conv.turns[1].session == "1" and conv.turns[1].time == "2023-05-08T13:56:00"


def test_openai_messages_json_object() -> None:
    (conv,) = read_conversations(DATA / "chat_openai.json")
    # system, tool, and the assistant message that only calls a tool are not turns
    assert [(t.id, t.speaker, t.session) for t in conv.turns] == [
        ("thread-42:1", "user", "thread-42"), ("thread-42:2", "assistant", "thread-42")]
    assert conv.turns[1].text == "Noted: dentist on Friday."  # content parts joined
    assert conv.turns[0].time == "2024-06-02T09:00:00+00:00"  # Unix seconds
    assert conv.turns[0].metadata["role"] == "user"


def test_openai_messages_jsonl_grouped_by_conversation() -> None:
    convs = read_conversations(DATA / "chat_openai.jsonl")
    assert [c.id for c in convs] == ["a", "b"]
    assert [(t.id, t.speaker) for t in convs[0].turns] == [("a:1", "Ada"), ("a:2", "assistant")]
    assert convs[0].turns[1].time == "2024-04-01T10:00:05+00:00"
    assert convs[1].turns[0].time == ""  # no time given: allowed


def test_records_as_add_receives_them() -> None:
    turns = turns_from_records([{"id": "D12:4", "speaker": "Caroline", "session": 12, "time": "2023-10-08T15:09",
                                 "text": "I went to the support group yesterday."}])
    assert turns[0].session == "12" and turns[0].time == "2023-10-08T15:09:00"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"id": "x1", "speaker": "Ada", "session": 1, "time": "2023-05-08", "text": "  "}, "turns.jsonl:2: turn has \"text\""),
        ({"id": "x1", "speaker": "Ada", "session": 1, "time": "2023-05-08"}, "turns.jsonl:2: turn has no \"text\" field"),
        ({"id": "x1", "speaker": "Ada", "session": 1, "time": "next tuesday", "text": "hi"},
         "turns.jsonl:2: unparseable time 'next tuesday'"),
        ({"id": "x1", "speaker": "Ada", "session": 1, "time": "2023-02-30T10:00", "text": "hi"},
         "turns.jsonl:2: unparseable time '2023-02-30T10:00'"),
        ({"id": "a1", "speaker": "Ada", "session": 1, "time": "2023-05-08", "text": "again"},
         "turns.jsonl:2: duplicate turn id 'a1' (first at"),
        ({"id": "x1", "session": 1, "text": "hi"}, "turns.jsonl:2: turn has no \"speaker\""),
    ],
)
def test_bad_turn_names_the_record(tmp_path: Path, record: dict[str, object], message: str) -> None:
    first = {"id": "a1", "speaker": "Ben", "session": 1, "time": "2023-05-08", "text": "hello"}
    path = _write(tmp_path, "turns.jsonl", [first, record])
    with pytest.raises(ConversationError) as err:
        read_turns(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_bad_files(tmp_path: Path) -> None:
    (tmp_path / "broken.jsonl").write_text('{"speaker": "A", "text": "x"}\n{oops\n')
    with pytest.raises(ConversationError, match=r"broken.jsonl:2: malformed JSON"):
        read_turns(tmp_path / "broken.jsonl")
    mixed = _write(tmp_path, "mixed.jsonl", [{"speaker": "A", "text": "x"}, {"role": "user", "content": "y"}])
    with pytest.raises(ConversationError, match="mixes OpenAI messages"):
        read_turns(mixed)
    (tmp_path / "t.csv").write_text("a,b\n")
    with pytest.raises(ConversationError, match="unknown conversation format '.csv'"):
        read_turns(tmp_path / "t.csv")


# --------------------------------------------------------------------------- passages


def test_turn_passages_title_metadata_previous() -> None:
    turns = read_turns(DATA / "turns.jsonl")
    ps = turn_passages(turns)
    assert ps[0].id == "s1:1" and ps[0].title == "Ada, session 1, 8 May 2023"
    assert ps[0].content == "Ada, session 1, 8 May 2023\nI finally adopted a puppy! Her name is Biscuit."
    assert ps[2].metadata == {"mood": "happy", "speaker": "Ada", "session": "1", "time": "2023-05-08T13:58:00",
                              "previous": "Ben: Congrats! What breed is she?"}
    assert "previous" not in ps[3].metadata  # a new session has no predecessor
    assert turn_passages(turns, title="speaker-date")[3].title == "Ben, 2 June 2023"
    ctx = turn_passages(turns, context=True)[1]
    assert ctx.text == "(Ada: I finally adopted a puppy! Her name is Biscuit.)\nCongrats! What breed is she?"


# --------------------------------------------------------------------------- time


def test_normalize_time() -> None:
    assert normalize_time("11:01 am on 17 December, 2022") == "2022-12-17T11:01:00"
    assert normalize_time("8 May 2023") == "2023-05-08T00:00:00"
    assert normalize_time("2023-10-08T15:09Z") == "2023-10-08T15:09:00+00:00"
    assert normalize_time(None) == ""
    for bad in ("yesterday", "soon", "2023-13-01", True):
        with pytest.raises(ValueError, match="unparseable time"):
            normalize_time(bad)


def test_question_dates() -> None:
    now = datetime(2023, 9, 1)
    (day,) = question_dates("Who did Maria have dinner with on May 3, 2023?", now)
    assert (day.start, day.end, day.relation) == (datetime(2023, 5, 3), datetime(2023, 5, 4), "in")
    (month,) = question_dates("What did John attend in March 2023?", now)
    assert (month.start, month.end) == (datetime(2023, 3, 1), datetime(2023, 4, 1))
    (last,) = question_dates("What did Maria do last June?", now)
    assert last.start == datetime(2023, 6, 1)
    (bare,) = question_dates("Which outdoor spot did Joanna visit in May?", now)
    assert bare.start == datetime(2023, 5, 1)
    (year,) = question_dates("What did John do in 2022?", now)
    assert (year.start, year.end) == (datetime(2022, 1, 1), datetime(2023, 1, 1))
    (week,) = question_dates("What did John do the week before August 3, 2023?", now)
    assert week.start < datetime(2023, 7, 27) and week.end == datetime(2023, 8, 4)
    (season,) = question_dates("What state did Joanna visit in summer 2021?", now)
    assert (season.start, season.end) == (datetime(2021, 6, 1), datetime(2021, 9, 1))
    (after,) = question_dates("What happened after June 2023?", now)
    assert after.relation == "after"
    assert question_dates("What may happen if John goes to the second meeting now?", now) == []
    assert question_dates("When did Caroline go to the support group?", now) == []


def test_time_prior() -> None:
    times = ["2023-05-01T10:00:00", "2023-05-10T10:00:00", "2023-07-01T10:00:00", ""]
    span = DateSpan(datetime(2023, 5, 3), datetime(2023, 5, 4), "May 3, 2023")
    assert time_prior([span], times, boost=2.0, slack_days=14).tolist() == [1.0, 2.0, 1.0, 1.0]
    before = DateSpan(datetime(2023, 6, 1), datetime(2023, 7, 1), "June 2023", "before")
    assert time_prior([before], times, 3.0, 0).tolist() == [3.0, 3.0, 1.0, 1.0]
    nowhere = DateSpan(datetime(2019, 1, 1), datetime(2019, 2, 1), "January 2019")
    assert np.all(time_prior([nowhere], times) == 1.0)  # no passage in the span: the prior says nothing
    assert np.all(time_prior([], times) == 1.0)
    assert conversation_now(times) == datetime(2023, 7, 1, 10)


def test_turn_prior_explains_itself() -> None:
    from hippo.conversation.prior import turn_prior

    times = ["2023-05-01T10:00:00", "2023-05-10T10:00:00", "2023-07-01T10:00:00"]
    speakers = ["Ada", "Ben", "Ada"]
    prior = turn_prior("What did Ada do in May?", speakers, times, 2.0, 1.5)  # "now" is the last turn: July 2023
    assert prior.weights is not None and prior.weights.tolist() == [3.0, 2.0, 1.5]
    assert prior.explain() == 'time "in May" -> in 2023-05-01..2023-06-01; speaker Ada; 3 turns weighted'
    assert turn_prior("What breed is the puppy?", speakers, times).weights is None
    assert turn_prior("What did Ada and Ben eat?", speakers, times, 1.0, 1.5).weights is None  # two speakers named


# --------------------------------------------------------------------------- extractor


@pytest.fixture(scope="module")
def spacy_extractor():  # type: ignore[no-untyped-def]
    from hippo.extract.spacy_ie import SpacyExtractor

    return SpacyExtractor()


def test_conversation_extractor(spacy_extractor) -> None:  # type: ignore[no-untyped-def]
    from hippo.conversation.extractor import ConversationExtractor, resolve_first_person, strip_caption_boilerplate
    from hippo.types import Passage

    assert resolve_first_person("I'm sure my sister told me.", "Ada") == "Ada is sure Ada's sister told Ada."
    assert strip_caption_boilerplate("Look! [shares a photo: a photo of a beagle]") == "Look! [shares a beagle]"
    turns = read_turns(DATA / "turns.jsonl")
    ps = turn_passages(turns)
    plain = Passage("doc", "Hamlet was written by William Shakespeare.")
    off = ConversationExtractor(spacy_extractor, coref=False, mentions=False).extract(ps[:1])[0]
    assert not any(t[0] == "Ada" for t in off.triples)  # "I adopted" names no one
    on = ConversationExtractor(spacy_extractor, coref=True, mentions=False).extract([*ps[:1], plain])
    assert ("Ada", "adopted", "puppy") in on[0].triples
    assert on[1].triples == spacy_extractor.extract([plain])[0].triples  # other passages: as the wrapped extractor
    session = ConversationExtractor(spacy_extractor, coref=True, mentions=True, speakers="session", session_nodes=True)
    ex = session.extract(ps)
    assert ("Ada (8 May 2023)", "adopted", "puppy") in ex[0].triples
    assert ("Ben (2 June 2023)", "ran", "Lisbon marathon") in ex[3].triples
    assert any(t[0] == "conversation of 8 May 2023" and t[1] == "includes" for t in ex[1].triples)
    assert all("Ada" not in t[2] for t in ex[2].triples if t[1] == "mentions")  # speakers are no mentions
    assert session.settings()["speakers"] == "session" and session.name == "hippo.extractor.conversation.v1"
    prev = ConversationExtractor(spacy_extractor, coref=True, mentions=False, previous=True).extract(ps[1:2])[0]
    assert ("Ada", "adopted", "puppy") in prev.triples  # read from the predecessor


# --------------------------------------------------------------------------- CLI


def test_cli_index_format_conversation(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import hippo.conversation
    from hippo import open_index
    from hippo.cli.main import main

    # a new conversation index records the conversation settings (a known value, not the chosen one)
    monkeypatch.setitem(hippo.conversation.CONVERSATION_SETTINGS, "retrieval.speaker_boost", 1.75)
    out = tmp_path / "mem"
    assert main(["index", str(DATA / "turns.jsonl"), "--out", str(out), "--format", "conversation",
                 "--set", "embed.model=hashing:64", "--json"]) == 0
    engine = open_index(out)
    assert engine.config.extract.extractor == "conversation"
    assert engine.config.retrieval.speaker_boost == 1.75
    assert open_index(out, {"retrieval.speaker_boost": 1.0}).config.retrieval.speaker_boost == 1.0  # --set still wins
    assert engine.manifest["extractor"]["name"] == "hippo.extractor.conversation.v1"
    assert list(engine.passage_ids) == ["s1:1", "s1:2", "s1:3", "s2:1", "s2:2"]
    assert engine.passage_titles[3] == "Ben, session 2, 2 June 2023"
    assert "ada" in engine.entity_names  # "I adopted a puppy" -> (Ada, adopted, puppy)
    # adding to a conversation index reads the file as turns without --format again
    assert main(["index", str(DATA / "chat_openai.jsonl"), "--out", str(out)]) == 0
    assert "a:1" in open_index(out).passage_ids
    capsys.readouterr()
    assert main(["index", str(DATA / "turns.jsonl"), "--out", str(tmp_path / "x"), "--format", "conversation",
                 "--openie", "x.json"]) == 2
    bad = _write(tmp_path, "bad.jsonl", [{"id": "1", "speaker": "A", "time": "someday 2023", "text": "hi"}])
    assert main(["index", str(bad), "--out", str(tmp_path / "y"), "--format", "conversation"]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:1: unparseable time 'someday 2023'" in err and not (tmp_path / "y").exists()
