"""The merged headline table: F1's accuracies, F2's barriers and F5's curvature per row."""

from __future__ import annotations

import json
from pathlib import Path

from lmc_toolkit.study.figures.headline import (
    SOURCES,
    html_table,
    markdown,
    summary_rows,
    write_summary,
)


def _write(root: Path, figure: str, rows: list[dict]) -> None:
    title = next(t for f, t, _ in SOURCES if f == figure)
    (root / figure).mkdir(parents=True, exist_ok=True)
    (root / figure / "headline.json").write_text(json.dumps({title: rows}))


def test_rows_are_joined_on_method_and_sparsity(tmp_path: Path):
    _write(tmp_path, "F1", [
        {"method": "dense", "sparsity": 0.0, "accuracy": 0.97, "std": 0.001},
        {"method": "imp", "sparsity": 0.488, "accuracy": 0.96, "std": 0.002},
    ])  # fmt: skip
    _write(tmp_path, "F2", [
        {"method": "dense", "sparsity": 0.0, "error_barrier": 0.2, "loss_barrier": 0.5},
        {"method": "imp", "sparsity": 0.48800001, "error_barrier": 0.01, "loss_barrier": 0.02},
    ])  # fmt: skip
    _write(tmp_path, "F5", [{"method": "dense", "sparsity": 0.0, "top_eigenvalue": 3.5,
                             "trace": 120.0}])  # fmt: skip
    rows = summary_rows(tmp_path)
    assert [(r["method"], r["sparsity"]) for r in rows] == [("dense", 0.0), ("imp", 0.488)]
    assert rows[0]["error_barrier"] == 0.2 and rows[0]["trace"] == 120.0
    assert rows[1]["error_barrier"] == 0.01 and rows[1]["top_eigenvalue"] is None
    text = markdown(rows)
    lines = text.splitlines()
    assert lines[0].startswith("| method | sparsity | test accuracy | ± std | error barrier |")
    assert lines[2] == "| dense | 0.0% | 97.00% | 0.10% | 20.00% | 0.5000 | 3.500 | 120.0 |"
    assert lines[3].endswith("| – | – |")  # no curvature for imp
    assert "<td>97.00%</td>" in html_table(rows)
    path = write_summary(tmp_path)
    assert path is not None and path.read_text() == text


def test_missing_figures_leave_their_columns_out(tmp_path: Path):
    assert summary_rows(tmp_path) == [] and write_summary(tmp_path) is None
    _write(tmp_path, "F1", [{"method": "dense", "sparsity": 0.0, "accuracy": 0.9, "std": 0.0}])
    text = markdown(summary_rows(tmp_path))
    assert "error barrier" not in text and "| dense | 0.0% | 90.00% | 0.00% |" in text


def test_the_alignment_columns_join_the_same_rows(tmp_path: Path):
    _write(tmp_path, "F2", [{"method": "imp", "sparsity": 0.36, "error_barrier": 0.01}])
    _write(tmp_path, "F9", [{"method": "imp", "sparsity": 0.36, "init_barrier": 0.3,
                             "aligned_barrier": 0.05, "repaired_barrier": None,
                             "aligned_iou": 0.61}])  # fmt: skip
    (row,) = summary_rows(tmp_path)
    assert row["init_barrier"] == 0.3 and row["aligned_iou"] == 0.61
    lines = markdown([row]).splitlines()
    assert "error barrier, two inits | after weight matching | mask IoU after alignment" in lines[0]
    assert "+ REPAIR" not in lines[0]  # no row has it: the column is left out
    assert lines[2] == "| imp | 36.0% | 1.00% | 30.00% | 5.00% | 0.610 |"
