from hippo.ids import alnum_count, entity_id, fact_id, normalize, passage_id


def test_normalize_matches_hipporag_on_ascii():
    assert normalize("Journal of Mathematical Physics") == "journal of mathematical physics"
    assert normalize("U.S.A.") == "u s a"
    assert normalize("  Rock-and-roll!  ") == "rock and roll"


def test_normalize_keeps_non_latin_scripts():
    assert normalize("Zürich") == "zürich"
    assert normalize("東京都") == "東京都"
    assert normalize("Москва, Россия") == "москва россия"
    # Devanagari vowel signs are combining marks: they must survive.
    assert normalize("हिन्दी") == "हिन्दी"
    assert normalize("!!!") == ""


def test_normalize_nfkc_and_case():
    assert normalize("ＡＢＣ１２３") == "abc123"
    assert normalize("ǅ") == normalize("Ǆ")


def test_ids_are_stable_prefixed_and_distinct():
    assert passage_id("a") == passage_id("a")
    assert passage_id("a").startswith("p-") and len(passage_id("a")) == 18
    assert entity_id("x").startswith("e-")
    assert fact_id("a", "b", "c") != fact_id("a b", "", "c")
    assert passage_id("a") != passage_id("b")
    assert passage_id("a") == "p-0cc175b9c0f1b6a8"  # md5("a") prefix: stable across versions


def test_alnum_count():
    assert alnum_count("a b") == 2
    assert alnum_count("東京") == 2
