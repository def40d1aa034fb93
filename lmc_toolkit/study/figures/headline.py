"""One table of the study's headline numbers, merged from the figures' `headline.json` files.

F1 records test accuracy per method and sparsity, F2 the error and loss barriers between two
SGD-noise copies, F5 the top Hessian eigenvalue and trace, F9 the error barrier between two
initializations before and after weight matching (and REPAIR) and the aligned masks' IoU.
`summary_rows` joins them on (method, sparsity); `markdown` renders the result for the README,
`write_summary` writes it next to the report index as `headline.md` (so the committed report
shows it without a browser).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lmc_toolkit.store.files import atomic_write as _atomic_write
from lmc_toolkit.store.files import read_json

#: (figure, headline title, columns taken from its rows) merged into the summary.
SOURCES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("F1", "test accuracy (mean ± std over data seeds)", ("accuracy", "std")),
    ("F2", "error barrier between two data seeds", ("error_barrier", "loss_barrier")),
    ("F5", "curvature of the trained tickets", ("top_eigenvalue", "trace")),
    (
        "F9",
        "error barrier between two initializations",
        ("init_barrier", "aligned_barrier", "repaired_barrier", "aligned_iou"),
    ),
)
#: Column titles and how each value is shown (percentages for accuracies and error barriers).
COLUMNS: dict[str, tuple[str, str]] = {
    "method": ("method", "{}"),
    "sparsity": ("sparsity", "{:.1%}"),
    "accuracy": ("test accuracy", "{:.2%}"),
    "std": ("± std", "{:.2%}"),
    "error_barrier": ("error barrier", "{:.2%}"),
    "loss_barrier": ("loss barrier", "{:.4f}"),
    "top_eigenvalue": ("top Hessian eigenvalue", "{:.3f}"),
    "trace": ("Hessian trace", "{:.1f}"),
    "init_barrier": ("error barrier, two inits", "{:.2%}"),
    "aligned_barrier": ("after weight matching", "{:.2%}"),
    "repaired_barrier": ("+ REPAIR", "{:.2%}"),
    "aligned_iou": ("mask IoU after alignment", "{:.3f}"),
}
SUMMARY = "headline.md"


def summary_rows(root: str | Path) -> list[dict[str, Any]]:
    """One row per (method, sparsity) found in any source table, in the order first seen;
    a number a figure did not produce is None."""
    rows: dict[tuple[str, float], dict[str, Any]] = {}
    for figure, title, columns in SOURCES:
        for entry in read_json(Path(root) / figure / "headline.json", {}).get(title, []):
            key = (str(entry["method"]), round(float(entry["sparsity"]), 3))
            row = rows.setdefault(key, {"method": key[0], "sparsity": float(entry["sparsity"])})
            for c in columns:
                row[c] = entry.get(c)
    return [{c: row.get(c) for c in COLUMNS} for row in rows.values()]


def _show(column: str, value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and value != value:  # NaN
        return "nan"
    return COLUMNS[column][1].format(value)


def markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as a GitHub markdown table (columns no row has are left out)."""
    columns = [c for c in COLUMNS if any(r.get(c) is not None for r in rows)]
    if not rows or not columns:
        return ""
    lines = [
        "| " + " | ".join(COLUMNS[c][0] for c in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for r in rows:
        lines.append("| " + " | ".join(_show(c, r.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def html_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as an HTML table, formatted like `markdown`."""
    columns = [c for c in COLUMNS if any(r.get(c) is not None for r in rows)]
    if not rows or not columns:
        return ""
    head = "".join(f"<th>{html.escape(COLUMNS[c][0])}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_show(c, r.get(c)))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return f"<table class='summary'><tr>{head}</tr>{body}</table>"


def write_summary(root: str | Path) -> Path | None:
    """Write `root/headline.md` from the figures' headline tables (None when there are none)."""
    text = markdown(summary_rows(root))
    if not text:
        return None
    path = Path(root) / SUMMARY
    return _atomic_write(path, lambda f: f.write(text.encode()))
