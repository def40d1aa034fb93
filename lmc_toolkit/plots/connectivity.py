"""Figures for connectivity and landscapes: curves, barriers, pairwise matrices, surfaces."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lmc_toolkit.plots.style import LOSS_TITLE, metric_title, nth_color, plane_axis_titles


def plot_curve(
    curves: Sequence[Any], labels: Sequence[str] | None = None, title: str = ""
) -> go.Figure:
    """Loss and error (%) against α for one or more `Curve`s, side by side."""
    curves = list(curves)
    if not curves:
        raise ValueError("plot_curve needs at least one curve")
    if labels is not None and len(labels) != len(curves):
        raise ValueError(f"got {len(labels)} labels for {len(curves)} curves")
    x_title = "α" if curves[0].kind == "interpolation" else "t"
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "error (%)"))
    fig.update_yaxes(title_text=LOSS_TITLE, row=1, col=1)
    fig.update_yaxes(title_text="error (%)", row=1, col=2)
    for i, c in enumerate(curves):
        name = labels[i] if labels is not None else (c.label or f"curve {i}")
        color = nth_color(i)
        for col, values in ((1, c.loss), (2, 100 * c.error)):
            fig.add_trace(
                go.Scatter(
                    x=c.alphas,
                    y=values,
                    mode="lines+markers",
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                    line={"color": color},
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text=x_title)
    fig.update_layout(
        title=title or f"{x_title}-sweep (BN: {curves[0].bn})", template="plotly_white"
    )
    return fig


def plot_barriers(
    series: Mapping[str, Any],
    x_title: str = "sparsity (%)",
    y_title: str = "error barrier (%)",
    scale: float = 100.0,
    title: str = "",
    threshold: float | None = None,
) -> go.Figure:
    """Barrier against sparsity (or spawn step, ...) per method.

    `series` maps a method name to `(x, barrier)` or `(x, barrier, std)` arrays; barriers are
    multiplied by `scale` (100 turns error fractions into percent). `threshold` (a barrier, in
    the series' units) draws the stability threshold as a dashed line.
    """
    if not series:
        raise ValueError("plot_barriers needs at least one series")
    fig = go.Figure()
    for i, (name, values) in enumerate(series.items()):
        if len(values) not in (2, 3):
            raise ValueError(f"series {name!r} must be (x, barrier) or (x, barrier, std)")
        x = np.asarray(values[0], float)
        y = scale * np.asarray(values[1], float)
        err = None
        if len(values) == 3 and values[2] is not None:
            err = {"type": "data", "array": scale * np.asarray(values[2], float), "visible": True}
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                error_y=err,
                mode="lines+markers",
                name=name,
                line={"color": nth_color(i)},
            )
        )
    if threshold is not None:
        fig.add_hline(
            y=scale * threshold,
            line={"dash": "dash", "color": "gray"},
            annotation_text=f"stability threshold {scale * threshold:g}",
            annotation_position="top left",
        )
    fig.update_layout(
        title=title or "barriers",
        xaxis_title=x_title,
        yaxis_title=y_title,
        template="plotly_white",
    )
    return fig


def plot_pairwise(result: Any, title: str = "") -> go.Figure:
    """Heat maps of a `PairwiseResult`: error barriers (%) and weight distances."""
    labels = list(result.labels)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("error barrier (%)", "L2 distance"))
    fig.add_trace(
        go.Heatmap(
            z=100 * result.error_barriers,
            x=labels,
            y=labels,
            colorscale="Reds",
            colorbar={"x": 0.45, "title": {"text": "error barrier (%)"}},
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Heatmap(
            z=result.distances,
            x=labels,
            y=labels,
            colorscale="Blues",
            colorbar={"title": {"text": "L2 distance"}},
        ),
        row=1,
        col=2,
    )
    fig.update_xaxes(title_text="solution")
    fig.update_yaxes(title_text="solution")
    fig.update_layout(title=title or f"pairwise (BN: {result.bn})", template="plotly_white")
    return fig


def plot_surface(
    surface: Any,
    metric: str = "loss",
    log: bool = False,
    title: str = "",
    color_range: tuple[float | None, float | None] | str | None = None,
) -> go.Figure:
    """A contour map and a 3-D surface of `metric` over the plane, with the models marked.

    `log=True` shows log10 of the metric (loss landscapes span orders of magnitude).
    `color_range` (low, high; None keeps that end automatic) fixes the colour scale in the shown
    units; `"markers"` caps it at the highest value inside the models' bounding box, so that a
    ridge between them is not washed out by the corners. Values beyond it take the end colour.
    """
    z = np.asarray(surface.values(metric), float)
    if metric == "error":
        z = 100 * z
    shown = np.log10(np.clip(z, 1e-12, None)) if log else z
    if isinstance(color_range, str):
        if color_range != "markers":
            raise ValueError(f"color_range must be (low, high) or 'markers', got {color_range!r}")
        top = _top_between_markers(surface, shown)
        color_range = None if top is None else (None, top)
    label = f"log₁₀ {metric_title(metric)}" if log else metric_title(metric)
    fig = make_subplots(
        rows=1,
        cols=2,
        specs=[[{"type": "xy"}, {"type": "scene"}]],
        subplot_titles=(f"{label} (contour)", f"{label} (surface)"),
    )
    fig.add_trace(
        go.Contour(
            x=surface.x,
            y=surface.y,
            z=shown,
            colorscale="Viridis",
            colorbar={"x": 0.45, "title": {"text": label}},
            **_color_limits(shown, color_range),
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Surface(
            x=surface.x,
            y=surface.y,
            z=shown,
            colorscale="Viridis",
            showscale=False,
            **{k.replace("z", "c"): v for k, v in _color_limits(shown, color_range).items()},
        ),
        row=1,
        col=2,
    )
    if surface.markers:
        _mark_models(fig, surface, shown)
    _title_plane(fig, surface.meta, label, title)
    return fig


def _title_plane(fig: go.Figure, meta: Mapping[str, Any], label: str, title: str) -> None:
    """Axis titles from the plane's record (its directions), and the figure's title."""
    x_title, y_title = plane_axis_titles(meta)
    fig.update_xaxes(title_text=x_title, row=1, col=1)
    fig.update_yaxes(title_text=y_title, row=1, col=1)
    fig.update_scenes(xaxis_title_text="x", yaxis_title_text="y", zaxis_title_text=label)
    fig.update_layout(
        title=title
        or f"{meta.get('kind', 'plane')} plane on {meta.get('dataset', '?')} "
        f"(BN: {meta.get('bn', '?')})",
        template="plotly_white",
    )


def _mark_models(fig: go.Figure, surface: Any, shown: np.ndarray) -> None:
    """The surface's markers on both panels: labelled points on the contour map and on the
    3-D surface at their grid value."""
    mx = [m.x for m in surface.markers]
    my = [m.y for m in surface.markers]
    names = [m.label for m in surface.markers]
    fig.add_trace(
        go.Scatter(
            x=mx,
            y=my,
            mode="markers",
            text=names,
            marker={"color": "white", "size": 10, "line": {"color": "black", "width": 2}},
            name="models",
        ),
        row=1,
        col=1,
    )
    for m in surface.markers:  # dark text on a light box: readable on every colour
        fig.add_annotation(
            x=m.x, y=m.y, text=m.label, yshift=14, showarrow=False,
            bgcolor="rgba(255,255,255,0.8)", font={"color": "black"}, row=1, col=1,
        )  # fmt: skip
    mz = [_nearest(surface, shown, m.x, m.y) for m in surface.markers]
    fig.add_trace(
        go.Scatter3d(
            x=mx,
            y=my,
            z=mz,
            mode="markers+text",
            text=names,
            marker={"color": "red", "size": 5},
            name="models",
            showlegend=False,
        ),
        row=1,
        col=2,
    )


def _color_limits(
    shown: np.ndarray, color_range: tuple[float | None, float | None] | None
) -> dict[str, float]:
    """zmin/zmax for a colour range with open ends filled from the finite values shown."""
    if color_range is None:
        return {}
    if len(color_range) != 2:
        raise ValueError(f"color_range must be (low, high), got {color_range!r}")
    finite = shown[np.isfinite(shown)]
    low = float(finite.min()) if color_range[0] is None else float(color_range[0])
    high = float(finite.max()) if color_range[1] is None else float(color_range[1])
    if not low < high:
        raise ValueError(f"color_range needs low < high, got ({low}, {high})")
    return {"zmin": low, "zmax": high}


def _top_between_markers(surface: Any, shown: np.ndarray) -> float | None:
    """The highest finite value on the grid inside the markers' bounding box (one grid step of
    margin); None (automatic) without two markers apart or without a finite value there."""
    if len(surface.markers) < 2:
        return None
    xs, ys = np.asarray(surface.x, float), np.asarray(surface.y, float)
    step_x = float(np.diff(xs).max()) if xs.size > 1 else 0.0
    step_y = float(np.diff(ys).max()) if ys.size > 1 else 0.0
    mx, my = [m.x for m in surface.markers], [m.y for m in surface.markers]
    near_x = (xs >= min(mx) - step_x) & (xs <= max(mx) + step_x)
    near_y = (ys >= min(my) - step_y) & (ys <= max(my) + step_y)
    box = shown[np.ix_(near_y, near_x)]
    finite = box[np.isfinite(box)]
    if finite.size == 0 or finite.max() <= np.nanmin(shown):
        return None
    return float(finite.max())


def _nearest(surface: Any, z: np.ndarray, x: float, y: float) -> float:
    i, j = int(np.abs(surface.y - y).argmin()), int(np.abs(surface.x - x).argmin())
    return float(z[i, j])
