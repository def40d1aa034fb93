"""The LMC tutorial notebook: committed clean, and runs top to bottom at the smoke scale."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "tutorial_lmc.ipynb"


def _stream_text(nb: nbformat.NotebookNode) -> str:
    return "".join(
        out.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "stream"
    )


def test_is_committed_without_outputs_and_with_a_parameters_cell():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert "preset" in code[0].source
    assert all(not c.outputs and c.execution_count is None for c in code)


def test_runs_at_the_smoke_scale(tmp_path: Path):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "tutorial_lmc.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(out),
        parameters={"preset": "smoke", "progress": False, "store": str(tmp_path / "store")},
        cwd=str(NOTEBOOK.parent),
        progress_bar=False,
    )
    nb = nbformat.read(out, as_version=4)
    text = _stream_text(nb)
    # The barrier the library reports is the one computed by hand from the curve's arrays.
    found = re.search(
        r"error barrier (-?[\d.]+) points at α = [\d.]+ \(by hand: (-?[\d.]+)\)", text
    )
    assert found is not None, text[:2000]
    assert found.group(1) == found.group(2)
    # Every section printed what it measured, and the summary covers every network.
    for marker in ("spawned at k =   0", "instability at initialization", "λ_max", "ran in"):
        assert marker in text
    summary = text[text.rindex("barrier at init") :]
    for network in ("dense", "IMP", "distilled", "random"):
        assert re.search(rf"^{network}\s", summary, re.MULTILINE), summary
    # The figures were drawn: curves, instability, mask curves, planes, spectrum, diagonal.
    figures = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "application/vnd.plotly.v1+json" in o.get("data", {})
    ]
    assert len(figures) >= 8
    # The results went into the store given, not the user's default store.
    assert any((tmp_path / "store").iterdir())
