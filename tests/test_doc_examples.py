"""The rules of the documentation examples (tools/doc_examples.py): every example is in a
language that runs, a skip names its reason, a failing or hanging command fails its example."""

import re
from pathlib import Path

import pytest
from sybil import Sybil

from tools import doc_examples
from tools.doc_examples import OTHER_LANGUAGES, PARSERS, ROOT, RUN_LANGUAGES

FENCE = re.compile(r"^```(\S*)", re.MULTILINE)


def pages():
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_fenced_block_names_a_known_language():
    for page in pages():
        text = page.read_text(encoding="utf-8")
        openers = FENCE.findall(text)[::2]  # opening fences alternate with closing ones
        unknown = [lang or "(none)" for lang in openers if lang not in RUN_LANGUAGES + OTHER_LANGUAGES]
        assert not unknown, f"{page.name}: fenced blocks in {unknown}: use bash/python (run) or text/toml/json (shown)"


def test_the_pages_have_examples_that_run():
    sybil = Sybil(parsers=PARSERS, patterns=["*.md"], path=str(ROOT))
    counts = {"run": 0, "skip": 0}
    for page in pages():
        for example in sybil.parse(page).examples():
            counts["skip" if isinstance(example.parsed, tuple) else "run"] += 1
    assert counts["run"] >= 30 and counts["skip"] >= 1


def _parse(tmp_path, text):
    page = tmp_path / "page.md"
    page.write_text(text)
    return Sybil(parsers=PARSERS, patterns=["*.md"], path=str(tmp_path)).parse(page)


def test_a_skip_needs_a_reason(tmp_path):
    with pytest.raises(ValueError, match="needs a reason"):
        list(_parse(tmp_path, "<!-- skip: next -->\n```bash\ntrue\n```\n").examples())
    ok = list(_parse(tmp_path, '<!-- skip: next "needs a GPU" -->\n```bash\ntrue\n```\n').examples())
    assert len(ok) == 2


def _bash_example(tmp_path, script):
    (example,) = [e for e in _parse(tmp_path, f"```bash\n{script}\n```\n").examples()]
    box = tmp_path / "box"
    (box / "bin").mkdir(parents=True, exist_ok=True)
    example.namespace["_docs_sandbox"] = box
    return example


def test_a_failing_command_fails_its_example(tmp_path):
    assert doc_examples._run_bash(_bash_example(tmp_path, "true\nfalse\necho never")).startswith("bash exited 1")
    assert doc_examples._run_bash(_bash_example(tmp_path, 'test "$HIPPO_EMBED__MODEL" = hashing:256')) is None
    assert doc_examples._run_bash(_bash_example(tmp_path, 'pip install -e ".[dev]" && echo ran')) is None


def test_a_hanging_command_is_killed_with_its_children(tmp_path, monkeypatch):
    monkeypatch.setattr(doc_examples, "BASH_TIMEOUT_S", 1)
    marker = tmp_path / "child-still-alive"
    message = doc_examples._run_bash(_bash_example(tmp_path, f"(sleep 3; touch {marker}) &\nsleep 60"))
    assert message.startswith("still running after 1 s")
    import time

    time.sleep(3)
    assert not Path(marker).exists()
