import hashlib
import json

import pytest

from hippo.corpus import make_passage
from hippo.errors import ExtractionError
from hippo.extract.precomputed import PrecomputedExtractor
from hippo.testing import ScriptedExtractor


def passages():
    return [make_passage("Alice founded Acme.", "Alice"), make_passage("Acme is in Berlin.", "Acme")]


def write(tmp_path, docs):
    f = tmp_path / "openie.json"
    f.write_text(json.dumps({"docs": docs}))
    return f


def test_v1_shape(tmp_path):
    docs = [
        {"title": "Alice", "text": "Alice founded Acme.", "passage": "Alice\nAlice founded Acme.",
         "extracted_entities": ["Alice", "Acme"], "extracted_triples": [["Alice", "founded", "Acme"], ["bad"], ["Alice", "founded", "Acme"]]},
        {"title": "Acme", "text": "Acme is in Berlin.", "passage": "Acme\nAcme is in Berlin.",
         "extracted_entities": ["Acme"], "extracted_triples": [["Acme", "located in", "Berlin"], ["x", None, "y"]]},
    ]
    ex = PrecomputedExtractor(write(tmp_path, docs))
    out = ex.extract(passages())
    assert out[0].triples == (("Alice", "founded", "Acme"),)
    assert out[0].entities == ("Alice", "Acme")
    assert out[1].triples == (("Acme", "located in", "Berlin"),)
    assert ex.invalid_triples == 2


def test_v2_shape_matched_by_chunk_id(tmp_path):
    ps = passages()
    docs = [
        {"idx": "chunk-" + hashlib.md5(p.content.encode()).hexdigest(), "passage": "(reformatted)",
         "extracted_entities": [], "extracted_triples": [[p.title, "is", "thing"]]}
        for p in ps
    ]
    out = PrecomputedExtractor(write(tmp_path, docs)).extract(ps)
    assert [e.triples[0][0] for e in out] == ["Alice", "Acme"]


def test_missing_passages_named(tmp_path):
    docs = [{"passage": "Alice\nAlice founded Acme.", "extracted_triples": []}]
    ex = PrecomputedExtractor(write(tmp_path, docs))
    with pytest.raises(ExtractionError, match=r"1 of 2 passages are not in the OpenIE file.*'Acme'.*extract\.missing=spacy"):
        ex.extract(passages())


def test_missing_passages_delegated_to_fallback(tmp_path):
    docs = [{"passage": "Alice\nAlice founded Acme.", "extracted_triples": [["Alice", "founded", "Acme"]]}]
    fallback = ScriptedExtractor({"Acme": [("Acme", "in", "Berlin")]})
    ex = PrecomputedExtractor(write(tmp_path, docs), fallback=fallback)
    out = ex.extract(passages())
    assert out[1].triples == (("Acme", "in", "Berlin"),) and ex.delegated == 1


def test_malformed_files(tmp_path):
    f = tmp_path / "bad.json"
    f.write_text("{nope")
    with pytest.raises(ExtractionError, match="malformed JSON"):
        PrecomputedExtractor(f)
    with pytest.raises(ExtractionError, match="not found"):
        PrecomputedExtractor(tmp_path / "missing.json")
    with pytest.raises(ExtractionError, match="not a HippoRAG OpenIE file"):
        PrecomputedExtractor(write(tmp_path, [{"passage": "x"}]))
