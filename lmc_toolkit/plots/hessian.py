"""Figures for Hessian analysis: spectral densities, diagonal distributions, curvature vs sparsity.

The raw-result builders take one result or a `{label: result}` mapping, so dense, IMP and
synthetic networks can be drawn on one figure; `plot_curvature_vs_sparsity`, `plot_diagonals`
and `plot_densities` draw the study's `CurvatureSummary` rows, one colour per method.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lmc_toolkit.plots.study import plot_replicates
from lmc_toolkit.plots.style import group_by_method, method_colors, nth_color


def _labelled(results: Any, what: str) -> dict[str, Any]:
    if isinstance(results, Mapping):
        out = dict(results)
    elif isinstance(results, Sequence) and not isinstance(results, str):
        out = {f"{what} {i}": r for i, r in enumerate(results)}
    else:
        out = {"": results}
    if not out:
        raise ValueError(f"nothing to plot: pass a {what} or a non-empty {{label: {what}}} dict")
    return out


def plot_spectrum(spectra: Any, log_y: bool = False, title: str = "") -> go.Figure:
    """The SLQ density of one `Spectrum` or of a `{label: Spectrum}` dict; with `log_y` the
    density axis is logarithmic (tails and outliers show) and drawn where it is meaningful
    (see `LOG_DENSITY_FLOOR`)."""
    curves = []
    for i, (label, s) in enumerate(_labelled(spectra, "spectrum").items()):
        dens = np.asarray(s.density, dtype=float)
        curves.append((label or "density", s.grid, dens, nth_color(i)))
    return _density_figure(curves, log_y, title or "Hessian spectral density (SLQ)")


def plot_densities(summaries: Sequence[Any], log_y: bool = True, title: str = "") -> go.Figure:
    """Spectral densities (stochastic Lanczos quadrature) of several networks' curvature
    summaries (`CurvatureSummary`), one colour per method; on a log y axis each is drawn where
    it is meaningful (see `LOG_DENSITY_FLOOR`)."""
    if not summaries:
        raise ValueError("plot_densities needs at least one summary")
    colors = method_colors([s.method for s in summaries])
    curves = []
    for s in summaries:
        density = np.asarray(s.density, float)
        curves.append((_summary_name(s), s.density_grid, density, colors[s.method]))
    return _density_figure(curves, log_y, title or "Hessian spectral density")


#: On a log axis a density is drawn only where it is at least this fraction of its peak: an
#: SLQ density is Ritz nodes broadened by Gaussians, and far below the peak what remains between
#: the bumps is those Gaussians' tails (it fell to a flat 1e-12 floor), not spectrum. One
#: eigenvalue of a network of 10⁶ weights still carries 1e-6 of the mass, so no bump is lost.
LOG_DENSITY_FLOOR = 1e-6


def _density_figure(
    curves: Sequence[tuple[str, Any, Any, str]], log_y: bool, title: str
) -> go.Figure:
    """One line per (name, eigenvalue grid, density, colour); on a log axis, gaps where a
    density is below `LOG_DENSITY_FLOOR` of its peak, and the axis starts at that floor."""
    fig = go.Figure()
    lowest, highest = math.inf, 0.0
    for name, grid, density, color in curves:
        density = np.asarray(density, dtype=float)
        if log_y and density.size and np.nanmax(density) > 0:
            floor = np.nanmax(density) * LOG_DENSITY_FLOOR
            density = np.where(density >= floor, density, np.nan)
            lowest, highest = min(lowest, floor), max(highest, np.nanmax(density))
        fig.add_trace(
            go.Scatter(
                x=np.asarray(grid, dtype=float), y=density, mode="lines", name=name,
                line={"color": color}, connectgaps=False,
            )
        )  # fmt: skip
    fig.update_xaxes(title_text="eigenvalue")
    fig.update_yaxes(
        title_text="density (per unit eigenvalue)",
        type="log" if log_y else "linear",
        exponentformat="power",
    )
    if log_y and highest > 0:
        fig.update_yaxes(range=[math.log10(lowest), math.log10(highest) + 0.3])
        fig.add_annotation(
            text=f"drawn where ≥ {LOG_DENSITY_FLOOR:g} of each peak",
            xref="paper", yref="paper", x=1, y=1.02, showarrow=False, font={"size": 10},
        )  # fmt: skip
    fig.update_layout(title=title, template="plotly_white")
    return fig


def _summary_name(s: Any) -> str:
    return f"{s.method} {100 * s.sparsity:.0f}%"


def _positive(diag: Any) -> tuple[np.ndarray, str, int]:
    """The positive entries, what was left out of a log axis ("" when nothing), and how many
    kept coordinates there are."""
    values = diag.flat().numpy()
    zero, negative = int((values == 0).sum()), int((values < 0).sum())
    left = [f"{n} {what}" for n, what in ((zero, "zero"), (negative, "negative")) if n]
    note = f" ({', '.join(left)}: not on the log axis)" if left else ""
    return values[values > 0], note, len(values)


def plot_diagonal_hist(diagonals: Any, bins: int = 60, title: str = "") -> go.Figure:
    """Histograms of the Hessian diagonal (kept coordinates) on a log x-axis, as fractions of
    each network's coordinates; zero and negative entries cannot be placed on it and are counted
    in the legend."""
    if not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive int, got {bins!r}")
    items = _labelled(diagonals, "diagonal")
    positives = {k: _positive(d) for k, d in items.items()}
    pooled = np.concatenate([v for v, _, _ in positives.values()] or [np.ones(1)])
    if len(pooled) == 0:
        raise ValueError("no positive diagonal entries to place on a log axis")
    edges = np.logspace(np.log10(pooled.min()), np.log10(pooled.max()), bins + 1)
    edges[-1] *= 1 + 1e-12
    fig = go.Figure()
    for i, (label, (values, left_out, total)) in enumerate(positives.items()):
        counts, _ = np.histogram(values, bins=edges)
        name = (label or "diagonal") + left_out
        fig.add_trace(
            go.Scatter(
                x=np.sqrt(edges[:-1] * edges[1:]),
                y=counts / max(total, 1),
                mode="lines",
                line={"shape": "hvh", "color": nth_color(i)},
                name=name,
            )
        )
    fig.update_xaxes(title_text="Hessian diagonal entry", type="log", exponentformat="power")
    fig.update_yaxes(title_text="fraction of coordinates")
    fig.update_layout(title=title or "Hessian diagonal", template="plotly_white")
    return fig


def plot_diagonal_sorted(diagonals: Any, log_y: bool = True, title: str = "") -> go.Figure:
    """Each network's diagonal sorted from largest to smallest against the rank as a fraction
    of its kept coordinates (log y: positive entries only)."""
    fig = go.Figure()
    for i, (label, d) in enumerate(_labelled(diagonals, "diagonal").items()):
        values = np.sort(d.flat().numpy())[::-1]
        rank = (np.arange(len(values)) + 0.5) / max(len(values), 1)
        if log_y:
            keep = values > 0
            values, rank = values[keep], rank[keep]
        fig.add_trace(
            go.Scatter(
                x=rank,
                y=values,
                mode="lines",
                name=label or "diagonal",
                line={"color": nth_color(i)},
            )
        )
    fig.update_xaxes(title_text="rank (fraction of kept coordinates)")
    fig.update_yaxes(
        title_text="Hessian diagonal entry",
        type="log" if log_y else "linear",
        exponentformat="power",
    )
    fig.update_layout(title=title or "Hessian diagonal, sorted", template="plotly_white")
    return fig


def _value(r: Any) -> tuple[float, float | None]:
    """A number and its standard error from an `Eigen` (top value), `Estimate` (mean ± SE),
    `Diagonal` (mean over kept coordinates) or a plain number."""
    if hasattr(r, "values") and hasattr(r, "bounds"):
        return float(r.values[0]), float(r.bounds[0])
    if hasattr(r, "mean") and hasattr(r, "stderr"):
        return float(r.mean), float(r.stderr)
    if hasattr(r, "summary"):
        return float(r.summary()["mean"]), None
    if isinstance(r, int | float | np.floating):
        return float(r), None
    raise TypeError(f"cannot read a value from {type(r).__name__}")


def plot_vs_sparsity(
    series: Mapping[str, Sequence[tuple[float, Any]]],
    quantity: str = "top eigenvalue",
    log_y: bool = False,
    title: str = "",
) -> go.Figure:
    """One line per method (e.g. dense, IMP, synthetic) of a curvature measure against
    sparsity (%): `series[method] = [(sparsity, result), ...]`, results being `Eigen`,
    `Estimate` (plotted with ± one standard error), `Diagonal` or numbers."""
    if not isinstance(series, Mapping) or not series:
        raise ValueError("series must be a non-empty {method: [(sparsity, result), ...]} dict")
    fig = go.Figure()
    for i, (method, points) in enumerate(series.items()):
        pts = sorted(((float(s), *_value(r)) for s, r in points), key=lambda p: p[0])
        if not pts:
            raise ValueError(f"method {method!r} has no points")
        errors = [e for _, _, e in pts]
        has_err = any(e is not None for e in errors)
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in pts],
                y=[p[1] for p in pts],
                mode="lines+markers",
                name=method,
                line={"color": nth_color(i)},
                error_y={"type": "data", "array": [e or 0.0 for e in errors]} if has_err else None,
            )
        )
    fig.update_xaxes(title_text="sparsity (%)")
    fig.update_yaxes(title_text=quantity, type="log" if log_y else "linear", exponentformat="power")
    fig.update_layout(title=title or f"{quantity} vs sparsity", template="plotly_white")
    return fig


def plot_curvature_vs_sparsity(summaries: Sequence[Any], title: str = "") -> go.Figure:
    """Top Hessian eigenvalue and trace against sparsity, one line per method."""
    if not summaries:
        raise ValueError("plot_curvature_vs_sparsity needs at least one summary")
    groups = group_by_method(summaries)
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
    fig.update_yaxes(title_text="λ₁ (top Hessian eigenvalue)", row=1, col=1)
    fig.update_yaxes(title_text="trace of the Hessian (± 1 SE)", row=1, col=2)
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
        name = _summary_name(s)
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
    fig.update_yaxes(title_text="H_ii (Hessian diagonal entry)", row=1, col=1)
    fig.update_yaxes(title_text="fraction of coordinates", row=1, col=2)
    fig.update_layout(barmode="overlay", title=title or "Hessian diagonal", template="plotly_white")
    return fig


def plot_diagonal_replicates(replicates: Sequence[Any], title: str = "") -> go.Figure:
    """The mean Hessian diagonal per kept weight of every replicated network (one marker per
    data seed) and their mean for each method against sparsity: the spread claim 3's verdict
    reads (`study.analyses.DiagonalReplicates`)."""
    points = [(r.method, r.sparsity, v) for r in replicates for v in r.means]
    return plot_replicates(
        points,
        "mean diagonal entry (loss per weight², nats)",
        title or "mean Hessian diagonal per kept weight, one network per data seed",
        "one network per seed",
    )
