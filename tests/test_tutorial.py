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


def _run(tmp_path: Path, preset: str) -> nbformat.NotebookNode:
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "tutorial_lmc.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(out),
        parameters={"preset": preset, "progress": False, "store": str(tmp_path / "store")},
        cwd=str(NOTEBOOK.parent),
        progress_bar=False,
    )
    return nbformat.read(out, as_version=4)


def test_every_knob_is_a_parameter_and_every_section_is_timed():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    parameters = nb.cells[1].source
    for knob in ("width", "lr_high", "lr_low", "pairs", "spawn_fractions", "rounds", "rate",
                 "threshold", "accuracy_floor", "try_lr", "try_fraction", "try_sparsity",
                 "try_width", "try_seed"):  # fmt: skip
        # a top-level assignment papermill can override (typed: `width: int | None = None`)
        assert re.search(rf"^{knob}(?:: [^=\n]+)? = ", parameters, re.MULTILINE), knob
    text = "".join(c.source for c in nb.cells)
    for reference in ("1803.03635", "1912.05671", "2110.06296", "2209.04836", "2307.03364"):
        assert f"https://arxiv.org/abs/{reference}" in text
    assert "## Solutions" in text and text.count("<details>") >= 5


def test_runs_at_the_smoke_scale(tmp_path: Path):
    nb = _run(tmp_path, "smoke")
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
    _check_teaching(text)


def _check_teaching(text: str) -> None:
    """What the lesson must print whatever its numbers: spawn points as fractions of training,
    barriers with their standard errors, verdicts that check training and noise, rewinding,
    the three-solution plane, per-weight traces and each section's time."""
    assert re.search(
        r"spawned at k = +\d+ \( *\d+% of training\): error barrier [\d.]+ ± [\d.]+ points", text
    )
    verdicts = ("stable", "unstable", "not separable at this scale", "copies did not train")
    lines = re.findall(r"lr [\d.]+, k = +\d+(?: \( *\d+% of training\))?: (.+)", text)
    found = [v for v in lines if not v.startswith("error barrier")]  # the rows, not verdicts
    assert found and all(v.split(" (")[0] in verdicts for v in found), found
    assert re.search(r"(is lower than|not separable at this scale)", text)
    assert "IMP rewound to" in text and re.search(r"(matching|no verdict on matching) \(gap", text)
    assert text.count(": loss ") >= 3 and "copy 0 ↔ copy 1: error barrier" in text
    assert "trace per weight" in text and "trace/weight" in text
    assert "seconds per section: 1. barrier" in text and "7. exercises" in text


@pytest.mark.slow
def test_runs_at_the_lesson_scale(tmp_path: Path):
    """The lesson itself (a few minutes on 2 cores; its time is printed, not asserted)."""
    text = _stream_text(_run(tmp_path, "lesson"))
    _check_teaching(text)
    print(re.findall(r"this notebook ran in .+", text))
