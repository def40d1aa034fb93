"""Figures for F9: barriers between networks from two initializations before and after
permutation alignment, and how alike their masks become once aligned."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lmc_toolkit.plots.style import group_by_method, method_colors

#: The panels of the barrier figure: the row key and its title.
PANELS = (
    ("before", "before alignment"),
    ("after", "after weight matching"),
    ("repaired", "after weight matching + REPAIR"),
)


def plot_aligned_barriers(
    rows: Sequence[Any], metric: str = "error", title: str = "", method: str = "weight matching"
) -> go.Figure:
    """Barrier (mean ± std over pairs) against sparsity per pruning method, one panel per stage
    (before alignment, after it, after REPAIR), on one y axis. `rows` are `AlignedRow`s;
    `metric` is "error" (in %) or "loss" (nats, no spread recorded). When REPAIR corrected no
    layer (every hidden unit is normalized per sample already), its panel is left out and the
    title says so."""
    if metric not in ("error", "loss"):
        raise ValueError(f"metric must be 'error' or 'loss', got {metric!r}")
    if not rows:
        raise ValueError("plot_aligned_barriers needs at least one row")
    repaired = any(r.repaired_layers > 0 for r in rows)
    panels = PANELS if repaired else PANELS[:2]
    titles = [t.replace("weight matching", method) for _, t in panels]
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=titles, shared_yaxes=True)
    groups = group_by_method(rows)
    colors = method_colors(list(groups))
    scale = 100.0 if metric == "error" else 1.0
    dense = groups.get("dense", [])
    for name, mine in groups.items():
        points = mine if name == "dense" else dense + mine
        for col, (stage, _) in enumerate(panels, start=1):
            if not all(stage in _values(r, metric) for r in points):
                continue
            err = None
            if metric == "error":
                spread = [scale * r.error_barrier_std[stage] for r in points]
                err = {"type": "data", "array": spread, "visible": True}
            fig.add_trace(
                go.Scatter(
                    x=[100 * r.sparsity for r in points],
                    y=[scale * _values(r, metric)[stage] for r in points],
                    error_y=err,
                    mode="lines+markers",
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                    line={"color": colors[name]},
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="sparsity (%)")
    unit = "error barrier (%)" if metric == "error" else "loss barrier (nats)"
    fig.update_yaxes(title_text=unit, row=1, col=1)
    title = title or f"{metric} barrier between networks from two initializations"
    if not repaired:
        title += (
            "<br><sup>REPAIR corrects no layer here: every hidden unit meets a norm layer</sup>"
        )
    fig.update_layout(title=title, template="plotly_white")
    return fig


def _values(row: Any, metric: str) -> dict[str, float]:
    return row.error_barrier if metric == "error" else row.loss_barrier


def plot_aligned_mask_iou(rows: Sequence[Any], title: str = "") -> go.Figure:
    """IoU of the two initializations' masks against sparsity per pruning method: before
    alignment (dotted) and after permuting the second mask with its weights (solid), with the
    IoU two independent random masks of that sparsity have on average (dashed grey)."""
    pruned = [r for r in rows if r.iou_before is not None]
    if not pruned:
        raise ValueError("plot_aligned_mask_iou needs rows of pruned networks (with masks)")
    groups = group_by_method(pruned)
    colors = method_colors([r.method for r in rows])
    fig = go.Figure()
    levels = sorted({r.sparsity for r in pruned})
    fig.add_trace(
        go.Scatter(
            x=[100 * s for s in levels],
            y=[(1 - s) / (1 + s) for s in levels],  # q / (2 - q) with q = 1 - s kept
            mode="lines",
            name="chance (two independent masks)",
            line={"color": "#7f7f7f", "dash": "dash"},
        )
    )
    for name, mine in groups.items():
        x = [100 * r.sparsity for r in mine]
        for key, dash, label in (("iou_before", "dot", "before"), ("iou_after", "solid", "after")):
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=[getattr(r, key) for r in mine],
                    mode="lines+markers",
                    name=f"{name} ({label} alignment)",
                    line={"color": colors[name], "dash": dash},
                )
            )
    fig.update_layout(
        title=title or "mask IoU between two initializations, before and after alignment",
        xaxis_title="sparsity (%)",
        yaxis_title="IoU of the kept weights",
        yaxis_range=[0, 1],
        template="plotly_white",
    )
    return fig
