"""The explore notebook is executed so it cannot rot; its Neo4j part runs when the tests
have a server (HIPPO_NEO4J_URI, as .ci/run sets), and must then match the index's counts."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from hippo.neo4j import server

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "explore.ipynb"
# Read at import: the autouse fixture of conftest.py clears HIPPO_* before each test.
URI = os.environ.get("HIPPO_NEO4J_URI")
HOME = os.environ.get("HIPPO_NEO4J_HOME")


@pytest.mark.slow
def test_explore_notebook_runs(monkeypatch, tmp_path):
    local = server.status(Path(HOME)) if HOME else None
    for name in ("NEO4J_URI", "NEO4J_USERNAME", "NEO4J_PASSWORD", "EXPLORE_INDEX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HIPPO_NEO4J_HOME", str(tmp_path / "no-server"))  # never a developer's own server
    if URI:
        monkeypatch.setenv("NEO4J_URI", URI)
        if local is not None and local.auth:
            monkeypatch.setenv("NEO4J_USERNAME", local.user)
            monkeypatch.setenv("NEO4J_PASSWORD", local.password)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = "".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs
    )
    assert not any(o.output_type == "error" for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "'passages': 119" in outputs and "largest synonym cluster sizes" in outputs and "drawn:" in outputs
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert images == 2
    if URI:
        assert "Neo4j counts match the index: True" in outputs and "second export changed anything: False" in outputs
    else:
        assert "skipping the export" in outputs
