"""The LangChain and LlamaIndex notebooks are executed, as the quickstart is, so they cannot rot."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def run_notebook(name: str, index: Path) -> str:
    """Execute a notebook with ``index`` injected after its ``parameters`` cell (as papermill
    does), so it reuses the session's index of the sample instead of building its own."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", ()))
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(f"index = {str(index)!r}"))
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    assert not any(o.output_type == "error" for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    return "".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs
    )


@pytest.mark.slow
def test_langchain_notebook_runs(sample_build):
    out = run_notebook("langchain.ipynb", sample_build[0])
    assert "'passages': 119" in out
    assert "1. " in out and "Journal of Psychotherapy Integration  (p-" in out
    assert "seeds: [" in out and "'passage_id': 'p-" in out
    assert out.count("recall@5 ") == 6 and "recall@5 1.00" in out
    assert "[Journal of Psychotherapy Integration]" in out and "'G. Stanley Hall'" in out


@pytest.mark.slow
def test_llama_index_notebook_runs(sample_build):
    out = run_notebook("llama_index.ipynb", sample_build[0])
    assert "'passages': 119" in out
    assert "1. " in out and "Journal of Psychotherapy Integration  (p-" in out
    assert "seeds: [" in out and "Context information is below." in out
    assert out.count("recall@5 ") == 6 and "recall@5 1.00" in out
