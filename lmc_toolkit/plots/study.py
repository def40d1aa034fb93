"""Figures that compare pruning methods across the study: trade-off, curvature, mask stability.

Inputs are the plain results of `lmc_toolkit.analyses` (`BarrierRow`, `CurvatureSummary`,
`MaskConvergence`); each method keeps one colour in every figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lmc_toolkit.plots.style import nth_color


def method_colors(methods: Sequence[str]) -> dict[str, str]:
    """One colour per method, in order of first appearance."""
    order = list(dict.fromkeys(methods))
    return {m: nth_color(i) for i, m in enumerate(order)}


def _group(items: Sequence[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for item in items:
        out.setdefault(item.method, []).append(item)
    for rows in out.values():
        rows.sort(key=lambda r: r.sparsity)
    return out


def plot_tradeoff(rows: Sequence[Any], threshold: float = 0.02, title: str = "") -> go.Figure:
    """Error barrier against performance ratio (accuracy / dense accuracy), one point per
    method and sparsity (figure F6); the dashed line is the stability threshold."""
    if not rows:
        raise ValueError("plot_tradeoff needs at least one row")
    groups = _group(rows)
    colors = method_colors(list(groups))
    fig = go.Figure()
    for method, items in groups.items():
        fig.add_trace(
            go.Scatter(
                x=[r.performance_ratio for r in items],
                y=[100 * r.error_barrier for r in items],
                mode="markers+text",
                text=[f"{100 * r.sparsity:.0f}%" for r in items],
                textposition="top center",
                marker={"size": 11, "color": colors[method]},
                name=method,
            )
        )
    fig.add_hline(
        y=100 * threshold,
        line_dash="dash",
        line_color="grey",
        annotation_text=f"{100 * threshold:.0f}% (stable below)",
    )
    fig.update_layout(
        title=title or "stability vs accuracy (labels: sparsity)",
        xaxis_title="performance ratio (accuracy / dense accuracy)",
        yaxis_title="error barrier (%)",
        template="plotly_white",
    )
    return fig


def plot_curvature_vs_sparsity(summaries: Sequence[Any], title: str = "") -> go.Figure:
    """Top Hessian eigenvalue and trace against sparsity, one line per method."""
    if not summaries:
        raise ValueError("plot_curvature_vs_sparsity needs at least one summary")
    groups = _group(summaries)
    colors = method_colors(list(groups))
    fig = make_subplots(rows=1, cols=2, subplot_titles=("top eigenvalue λ₁", "trace"))
    for method, items in groups.items():
        x = [100 * s.sparsity for s in items]
        common = {"mode": "lines+markers", "name": method, "legendgroup": method}
        fig.add_trace(
            go.Scatter(
                x=x, y=[s.eigenvalues[0] for s in items], line_color=colors[method], **common
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=[s.trace for s in items],
                error_y={"type": "data", "array": [s.trace_stderr for s in items]},
                line_color=colors[method],
                showlegend=False,
                **common,
            ),
            row=1,
            col=2,
        )
    fig.update_xaxes(title_text="sparsity (%)")
    fig.update_layout(title=title or "sharpness vs sparsity", template="plotly_white")
    return fig


def plot_diagonals(summaries: Sequence[Any], title: str = "") -> go.Figure:
    """The Hessian diagonal per network: sorted values (left) and a histogram of |values| on a
    log axis (right); pruned coordinates are left out."""
    if not summaries:
        raise ValueError("plot_diagonals needs at least one summary")
    colors = method_colors([s.method for s in summaries])
    fig = make_subplots(rows=1, cols=2, subplot_titles=("sorted diagonal", "|diagonal| histogram"))
    for s in summaries:
        name = f"{s.method} {100 * s.sparsity:.0f}%"
        values = np.asarray(s.diagonal_sorted, float)
        fig.add_trace(
            go.Scatter(
                x=np.linspace(0, 1, len(values)),
                y=values,
                mode="lines",
                name=name,
                legendgroup=name,
                line_color=colors[s.method],
            ),
            row=1,
            col=1,
        )
        positive = np.abs(values[values != 0])
        fig.add_trace(
            go.Histogram(
                x=np.log10(positive) if len(positive) else [],
                name=name,
                legendgroup=name,
                showlegend=False,
                opacity=0.5,
                marker_color=colors[s.method],
                histnorm="probability",
            ),
            row=1,
            col=2,
        )
    fig.update_xaxes(title_text="quantile", row=1, col=1)
    fig.update_xaxes(title_text="log₁₀ |H_ii|", row=1, col=2)
    fig.update_layout(barmode="overlay", title=title or "Hessian diagonal", template="plotly_white")
    return fig


def plot_densities(summaries: Sequence[Any], log_y: bool = True, title: str = "") -> go.Figure:
    """Spectral densities (stochastic Lanczos quadrature) of several networks."""
    if not summaries:
        raise ValueError("plot_densities needs at least one summary")
    colors = method_colors([s.method for s in summaries])
    fig = go.Figure()
    for s in summaries:
        density = np.asarray(s.density, float)
        fig.add_trace(
            go.Scatter(
                x=s.density_grid,
                y=np.maximum(density, 1e-12) if log_y else density,
                mode="lines",
                name=f"{s.method} {100 * s.sparsity:.0f}%",
                line_color=colors[s.method],
            )
        )
    fig.update_layout(
        title=title or "Hessian spectral density",
        xaxis_title="eigenvalue",
        yaxis_title="density",
        yaxis_type="log" if log_y else "linear",
        template="plotly_white",
    )
    return fig


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
    groups = _group(costs)
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
                customdata=[c.seconds for c in items],
                hovertemplate="%{y:.3s} samples, %{customdata:.0f} s",
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
