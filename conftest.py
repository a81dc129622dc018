"""Collects every ``bash`` and ``python`` block of README.md and docs/*.md as a test (Sybil);
the machinery and its conventions are in tools/doc_examples.py and docs/development.md."""

from tools.doc_examples import docs_examples_template, pytest_collect_file

__all__ = ["docs_examples_template", "pytest_collect_file"]
