"""MkDocs hooks of hippo's documentation site (``hooks:`` in ``mkdocs.yml``).

* ``<!-- config-reference -->`` in a page becomes the table of every config key, generated
  from the config declarations: ``hippo.config.reference_markdown()`` when hippo has it, else
  (interim) an introspection of the config dataclasses and their attribute docstrings.
* Sphinx roles in docstrings (``:class:`Engine` ``) render as plain code spans.
* ``<!-- cli-reference -->`` becomes the ``--help`` of every ``hippo`` command, from the parser.
* ``benchmarks/results/*.md``, ``*.png`` and ``*.txt`` are published under ``results/``, and a
  page's links to ``../benchmarks/results/X`` (right when read in the repository) go there.
* Pages that other branches are writing (:data:`PENDING`) get a short placeholder page while
  their file is absent, so the navigation can name them now; the real file wins once merged.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import os
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"

PENDING: dict[str, tuple[str, str]] = {}
"""Pages other branches write: file name -> (title, what it will cover)."""


def _ensure_importable() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def on_files(files: Files, config: Any) -> Files:
    """Publish the benchmark results and the placeholders of pending pages."""
    for path in sorted(p for ext in ("md", "png", "txt") for p in RESULTS.glob(f"*.{ext}")):
        uri = f"results/{path.name}"
        if files.get_file_from_path(uri) is None:
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    for name, (title, what) in PENDING.items():
        if files.get_file_from_path(name) is None:
            text = (
                f"# {title}\n\nThis page documents {what}. That work is on its own branch and not merged "
                "yet; this placeholder keeps the navigation whole until it is.\n"
            )
            files.append(File.generated(config, name, content=text))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Expand the generated sections of a page; point links into ``benchmarks/results/`` (which
    work when the Markdown is read in the repository) at their published copies."""
    markdown = markdown.replace("](../benchmarks/results/", "](results/")
    if "<!-- config-reference -->" in markdown:
        markdown = markdown.replace("<!-- config-reference -->", config_reference())
    if "<!-- cli-reference -->" in markdown:
        markdown = markdown.replace("<!-- cli-reference -->", cli_reference())
    return markdown


ROLE = re.compile(r":(?:func|class|meth|attr|mod|data|exc|obj):(?=<code>)")
"""A Sphinx role before an inline code span (``:func:`x` ``) in a docstring rendered by mkdocstrings."""


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    """Drop the Sphinx roles that docstrings carry: the code span after them stays."""
    return ROLE.sub("", html)


def config_reference() -> str:
    """The config table: hippo's own generator when present, else the interim introspection."""
    _ensure_importable()
    import hippo.config as hc

    generate = getattr(hc, "reference_markdown", None)
    if callable(generate):
        return str(generate())
    return _introspected_reference(hc)


def _introspected_reference(hc: Any) -> str:
    """Interim: one table per section from the dataclasses (type, default) and the attribute
    docstrings in ``hippo/config.py`` (read with :mod:`ast`); keys without a docstring say so."""
    docs = _attribute_docstrings(Path(hc.__file__))
    sections = getattr(hc, "_SECTION_TYPES")
    query_time = tuple(getattr(hc, "QUERY_TIME", ()))
    out = [
        "!!! note \"Generated (interim)\"",
        "    Generated at build time from the dataclasses in `hippo/config.py` (the defaults)",
        "    and their attribute docstrings; keys whose declaration has no docstring show a dash.",
        "    Interim: once the config is declarative (`hippo.config.reference_markdown`), this",
        "    page is generated from those declarations, ranges included.",
        "",
    ]
    for section, cls in sections.items():
        changeable = any(f"{section}.".startswith(p) for p in query_time)
        out += [
            f"### `{section}`",
            "",
            f"{(cls.__doc__ or '').strip().splitlines()[0]} "
            + ("May change after indexing." if changeable else "Fixed when the index is built."),
            "",
            "| key | default | meaning |",
            "|---|---|---|",
        ]
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            doc = " ".join(docs.get((cls.__name__, f.name), "—").split()).replace("|", "\\|")
            out.append(f"| `{section}.{f.name}` | `{default!r}` | {doc} |")
        out.append("")
    return "\n".join(out)


def _attribute_docstrings(path: Path) -> dict[tuple[str, str], str]:
    """``(class, attribute) -> docstring`` for the string literal after each annotated attribute."""
    found: dict[tuple[str, str], str] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.ClassDef):
            continue
        body = node.body
        for stmt, nxt in zip(body, body[1:]):
            if (
                isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)
            ):
                found[(node.name, stmt.target.id)] = nxt.value.value
    return found


def cli_reference() -> str:
    """``hippo --help`` and the help of every command and subcommand, as code blocks."""
    _ensure_importable()
    from hippo.cli.main import build_parser

    out: list[str] = []

    def walk(parser: argparse.ArgumentParser, name: str, depth: int) -> None:
        out.extend([f"{'#' * depth} `{name}`", "", "```text", parser.format_help().rstrip(), "```", ""])
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    walk(sub, f"{name} {sub_name}", min(depth + 1, 4))

    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: a fixed width builds the same page anywhere
    try:
        walk(build_parser(), "hippo", 3)
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    return "\n".join(out)
