"""Every ``bash`` and ``python`` block of README.md and docs/*.md runs as a test (Sybil); the
root ``conftest.py`` installs the collector and the fixture defined here.

Each page runs in a fresh folder holding ``graphs/sample`` and ``graphs/sample-index`` (the
sample indexed once per session from its recorded OpenIE, hashing embedder), with
``HIPPO_EMBED__MODEL=hashing:256`` so that no example loads MiniLM (and no CLI query loads
spaCy's NER); the README gets no
prebuilt index, so its first command builds one. Python blocks of a page share a namespace;
bash blocks run in ``bash -euo pipefail``; a server a block starts in the background and
records in ``NAME.pid`` is stopped at the end of its page in any case.
``<!-- skip: next "reason" -->`` marks a block that cannot run here; a skip without a reason is
an error. See docs/development.md.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sybil import Document, Example, Region, Sybil
from sybil.evaluators.python import PythonEvaluator
from sybil.parsers.markdown import CodeBlockParser, SkipParser

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_ENV = {
    "HIPPO_EMBED__MODEL": "hashing:256",
    "HIPPO_RETRIEVAL__QUERY_NER": "false",
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
"""Set while an example runs: the hashing embedder makes every new index cheap to build, and no
``hippo query`` process loads spaCy's NER model (the CLI tests cover both with the real models)."""
BASH_TIMEOUT_S = 120
"""A bash example that runs longer fails: one that starts a server and never returns must be
marked ``<!-- skip: next "..." -->`` (or run it in the background and stop it)."""
PIP_PREFIX = re.compile(r"^\s*pip install [^\n&]*&&\s*")
"""A leading ``pip install ... &&`` is not run: the test environment is installed already."""


@pytest.fixture(scope="session")
def docs_examples_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``graphs/sample``, ``graphs/sample-index`` and ``bin/hippo`` (this interpreter)."""
    from hippo.testing import build_sample_index

    root = tmp_path_factory.mktemp("docs-examples")
    shutil.copytree(ROOT / "graphs" / "sample", root / "graphs" / "sample")
    build_sample_index(root / "graphs" / "sample-index")
    (root / "bin").mkdir()
    shim = root / "bin" / "hippo"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m hippo.cli.main "$@"\n')
    shim.chmod(0o755)
    return root


def _sandbox(example: Example) -> Path:
    """The page's folder, made from the template on its first example."""
    ns = example.namespace
    if "_docs_sandbox" not in ns:
        template: Path = ns["docs_examples_template"]
        page = Path(example.path)
        box = template.parent / f"page-{page.stem}-{os.getpid()}-{id(example.document)}"
        ignore = shutil.ignore_patterns("sample-index") if page.name == "README.md" else None
        shutil.copytree(template, box, ignore=ignore, symlinks=True)
        ns["_docs_sandbox"] = box
    return Path(ns["_docs_sandbox"])


def _env(box: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIPPO_")}
    env.update(EXAMPLE_ENV)
    env["PATH"] = f"{box / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


@contextlib.contextmanager
def _inside(box: Path) -> Iterator[None]:
    """Run in the page's folder with the example environment, then restore both."""
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.clear()
    os.environ.update(_env(box))
    os.chdir(box)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


class _PythonInSandbox:
    def __init__(self) -> None:
        self.inner = PythonEvaluator()

    def __call__(self, example: Example) -> Any:
        with _inside(_sandbox(example)):
            return self.inner(example)


def _run_bash(example: Example) -> str | None:
    box = _sandbox(example)
    script = PIP_PREFIX.sub("", str(example.parsed))
    with subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script], cwd=box, env=_env(box),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=BASH_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole group: a server it started goes too
            proc.communicate()
            return f"still running after {BASH_TIMEOUT_S} s (a server?): mark it <!-- skip: next \"why\" -->"
    if proc.returncode != 0:
        return f"bash exited {proc.returncode}\n--- stdout\n{out[-3000:]}\n--- stderr\n{err[-3000:]}"
    return None


def _stop_servers(namespace: dict[str, Any]) -> None:
    """After a page: a process a block left running in the background and whose id it wrote to a
    ``*.pid`` file of the page's folder (a server the page stops in a later block) is stopped
    here in any case, so a failed example leaves no server behind (SIGTERM, SIGKILL after 30 s)."""
    box = namespace.get("_docs_sandbox")
    if box is None:
        return
    for pid_file in Path(box).glob("*.pid"):
        try:
            pid = int(pid_file.read_text().split()[0])
            if b"hippo" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue  # gone, and its id reused by another process
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError, IndexError):
            continue
        for _ in range(300):
            if not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] == "Z":
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


class _SkipWithReason(SkipParser):
    """Sybil's skip directive, refusing ``skip: next`` without a reason."""

    def __call__(self, document: Document) -> Iterable[Region]:
        for region in super().__call__(document):
            action, reason = region.parsed
            if action in ("next", "start") and not reason:
                line = document.text.count("\n", 0, region.start) + 1
                raise ValueError(f"{document.path}:{line}: 'skip: {action}' needs a reason: <!-- skip: next \"why\" -->")
            yield region


PARSERS = [
    CodeBlockParser(language="python", evaluator=_PythonInSandbox()),
    CodeBlockParser(language="bash", evaluator=_run_bash),
    _SkipWithReason(),
]
"""What runs: ``python`` and ``bash`` blocks, and the skip directive."""
RUN_LANGUAGES = ("python", "bash")
OTHER_LANGUAGES = ("text", "toml", "json", "yaml", "ini", "http")
"""Fenced blocks in these languages are shown, not run (outputs, file layouts, config files)."""

pytest_collect_file = Sybil(
    parsers=PARSERS,
    patterns=["README.md", "docs/*.md"],
    excludes=["*/README.md"],  # only the top-level README (graphs/sample/README.md is data)
    fixtures=["docs_examples_template"],
    teardown=_stop_servers,
    path=str(ROOT),
).pytest()
