"""Figures that compare pruning methods across the study: the stability-accuracy trade-off and
the masks (convergence during distilled training, cost of finding them).

Inputs are the plain results of `lmc_toolkit.study.analyses` (`BarrierRow`, `MaskConvergence`,
`MaskCost`); each method keeps one colour in every figure. The curvature figures of
`CurvatureSummary` are in `lmc_toolkit.plots.hessian`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from lmc_toolkit.plots.style import group_by_method, method_colors, nth_color

#: Marker shapes for the sparsities of the trade-off plot, lowest sparsity first.
SPARSITY_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "star", "x", "cross", "pentagon")


def plot_tradeoff(rows: Sequence[Any], threshold: float = 0.02, title: str = "") -> go.Figure:
    """Error barrier against performance ratio (accuracy / dense accuracy), one point per
    method and sparsity (figure F6); the dashed line is the stability threshold.

    Colour is the method and the marker's shape its sparsity (a legend entry per shape; the
    exact values on hover), with each method's points joined in order of sparsity: text labels
    overlapped where points cluster. Error bars are the barrier's spread over seed pairs where
    a row has several pairs (`error_barrier_std`)."""
    if not rows:
        raise ValueError("plot_tradeoff needs at least one row")
    groups = group_by_method(rows)
    colors = method_colors(list(groups))
    levels = sorted({round(float(r.sparsity), 3) for r in rows})
    symbol = {s: SPARSITY_SYMBOLS[i % len(SPARSITY_SYMBOLS)] for i, s in enumerate(levels)}
    fig = go.Figure()
    for method, items in groups.items():
        items = sorted(items, key=lambda r: r.sparsity)
        spread = [getattr(r, "error_barrier_std", math.nan) for r in items]
        bars = [100 * e if math.isfinite(e) else 0.0 for e in spread]
        fig.add_trace(
            go.Scatter(
                x=[r.performance_ratio for r in items],
                y=[100 * r.error_barrier for r in items],
                error_y={"type": "data", "array": bars, "visible": any(bars), "thickness": 1},
                mode="lines+markers",
                line={"color": colors[method], "width": 1, "dash": "dot"},
                marker={
                    "size": 11,
                    "color": colors[method],
                    "symbol": [symbol[round(float(r.sparsity), 3)] for r in items],
                    "line": {"width": 1, "color": "white"},
                },
                customdata=[100 * r.sparsity for r in items],
                hovertemplate=(
                    f"{method}<br>sparsity %{{customdata:.1f}}%<br>performance ratio %{{x:.3f}}"
                    "<br>error barrier %{y:.2f}%<extra></extra>"
                ),
                name=method,
                legendgroup="methods",
                legendgrouptitle_text="method",
            )
        )
    _sparsity_key(fig, symbol)
    fig.add_hline(
        y=100 * threshold,
        line_dash="dash",
        line_color="grey",
        annotation_text=f"{100 * threshold:.0f}% (stable below)",
    )
    fig.update_layout(
        title=title or "stability vs accuracy",
        xaxis_title="performance ratio (accuracy / dense accuracy)",
        yaxis_title="error barrier (%)",
        template="plotly_white",
        legend={"groupclick": "toggleitem"},
    )
    return fig


def _sparsity_key(fig: go.Figure, symbol: dict[float, str]) -> None:
    """A legend entry per sparsity's marker shape (grey, no data)."""
    for s, shape in symbol.items():
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                marker={"size": 10, "color": "grey", "symbol": shape},
                name=f"{100 * s:.0f}%",
                legendgroup="sparsity",
                legendgrouptitle_text="sparsity",
            )
        )


def plot_mask_convergence(results: Sequence[Any], title: str = "") -> go.Figure:
    """Hamming distance of the mask at each epoch of distilled training to the final mask."""
    if not results:
        raise ValueError("plot_mask_convergence needs at least one result")
    fig = go.Figure()
    for i, r in enumerate(results):
        fig.add_trace(
            go.Scatter(
                x=r.epochs,
                y=[100 * h for h in r.hamming_to_final],
                mode="lines+markers",
                name=f"{r.source} ({100 * r.sparsity:.0f}% sparse)",
                line_color=nth_color(i),
            )
        )
    fig.update_layout(
        title=title or "mask convergence during distilled training",
        xaxis_title="epoch of training on the synthetic set",
        yaxis_title="Hamming distance to the final mask (% of weights)",
        template="plotly_white",
    )
    return fig


def plot_mask_costs(costs: Sequence[Any], title: str = "") -> go.Figure:
    """Sample-gradient evaluations spent finding each method's mask, against its sparsity (log
    y): IMP trains on the full training set every round, distilled pruning on a small set."""
    if not costs:
        raise ValueError("plot_mask_costs needs at least one row")
    groups = group_by_method(costs)
    colors = method_colors(list(groups))
    fig = go.Figure()
    for method, items in groups.items():
        fig.add_trace(
            go.Scatter(
                x=[100 * c.sparsity for c in items],
                y=[c.samples for c in items],
                mode="lines+markers",
                name=f"{method} ({items[0].prune_images} images)",
                line_color=colors[method],
                customdata=[_seconds_shown(c) for c in items],
                hovertemplate="%{y:.3s} samples, %{customdata}",
            )
        )
    fig.update_layout(
        title=title or "cost of finding the mask",
        xaxis_title="sparsity (%)",
        yaxis_title="sample-gradient evaluations",
        yaxis_type="log",
        template="plotly_white",
    )
    return fig


def _seconds_shown(cost: Any) -> str:
    """A mask's wall seconds for the hover: re-timed where it was, else as recorded."""
    quiet = getattr(cost, "quiet_seconds", None)
    if quiet is None:
        return f"{cost.seconds:.0f} s as recorded"
    return f"{quiet:.0f} s re-timed ({cost.seconds:.0f} s as recorded)"


def plot_replicates(
    points: Sequence[tuple[str, float, float]],
    y_title: str,
    title: str,
    what: str = "one replicate",
    scale: float = 1.0,
) -> go.Figure:
    """Replicated measurements `(method, sparsity, value)`: one marker per replicate and a line
    through each method's mean per sparsity, against sparsity (%). `scale` multiplies values."""
    if not points:
        raise ValueError("plot_replicates needs at least one (method, sparsity, value)")
    groups: dict[str, dict[float, list[float]]] = {}
    for method, sparsity, value in points:
        groups.setdefault(method, {}).setdefault(round(sparsity, 4), []).append(scale * value)
    colors = method_colors(list(groups))
    fig = go.Figure()
    for method, by in groups.items():
        xs = sorted(by)
        fig.add_trace(
            go.Scatter(
                x=[100 * x for x in xs for _ in by[x]], y=[v for x in xs for v in by[x]],
                mode="markers", name=f"{method} ({what})", legendgroup=method,
                marker={"color": colors[method], "size": 8, "opacity": 0.6},
            )
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=[100 * x for x in xs], y=[sum(by[x]) / len(by[x]) for x in xs], mode="lines",
                name=f"{method} mean", legendgroup=method, showlegend=False,
                line={"color": colors[method]},
            )
        )  # fmt: skip
    fig.update_layout(
        title=title, xaxis_title="sparsity (%)", yaxis_title=y_title, template="plotly_white"
    )
    return fig
