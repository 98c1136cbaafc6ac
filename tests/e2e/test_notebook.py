"""The story notebook runs from top to bottom with the code as it is now (it must not rot)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "story.ipynb"


def test_story_notebook_runs_and_tells_its_story(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # importing streamlit (the UI tests) sets MPLBACKEND=Agg for this process; the kernel would
    # inherit it and draw nothing inline. A user's Jupyter has no such variable.
    monkeypatch.delenv("MPLBACKEND", raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # raises CellExecutionError naming the cell and the traceback on the first failing cell
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []) if out.get("output_type") == "stream")
    assert "honest features: no leak among them" in text  # the leakage guard's verdict
    assert "does not beat champion" in text  # the gate refuses a model without skill
    assert "reasons:\n  - " in text  # a decision with its plain-language reasons
    figures = sum(out.get("output_type") == "display_data" for cell in nb.cells
                  for out in cell.get("outputs", []))
    assert figures >= 4
