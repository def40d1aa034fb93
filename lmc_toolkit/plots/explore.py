"""Figures of the interactive explorer: an interpolation curve with a movable α marker, and a
landscape slice drawn as a contour map that fills in while it is computed.

Both figures keep a fixed trace order so the explorer can update their data in place
(`MARKER_TRACES`, `SLICE_TRACE`, `SLICE_MARKERS`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from lmc_toolkit.plots.connectivity import plot_curve
from lmc_toolkit.plots.style import metric_title, plane_axis_titles

#: Indices of the α-marker traces (loss panel, error panel) in `plot_interpolation`'s figure.
MARKER_TRACES = (2, 3)
#: Index of the contour trace and of the model-marker trace in `plot_slice`'s figure.
SLICE_TRACE, SLICE_MARKERS = 0, 1


def plot_interpolation(curve: Any, alpha: float, title: str = "") -> go.Figure:
    """`plot_curve` of one `Curve` plus a marker at the grid point nearest `alpha` in each panel."""
    fig = plot_curve([curve], title=title)
    i = nearest_index(curve.alphas, alpha)
    for col, values in ((1, curve.loss), (2, 100 * curve.error)):
        fig.add_trace(
            go.Scatter(
                x=[float(curve.alphas[i])],
                y=[float(values[i])],
                mode="markers",
                marker={"size": 14, "color": "black", "symbol": "diamond"},
                name="α",
                showlegend=col == 1,
            ),
            row=1,
            col=col,
        )
    fig.update_layout(
        width=900,
        height=400,
        margin={"t": 70, "b": 40},
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0},
    )
    return fig


def nearest_index(grid: np.ndarray, value: float) -> int:
    """The index of the grid value nearest `value`."""
    return int(np.abs(np.asarray(grid, float) - float(value)).argmin())


def slice_values(surface: Any, metric: str) -> np.ndarray:
    """The surface's `metric` as drawn: loss as is, error and accuracy in percent."""
    z = np.asarray(surface.values(metric), float)
    return z if metric == "loss" else 100 * z


def slice_title(surface: Any) -> str:
    meta = surface.meta
    return f"{meta.get('kind', 'plane')} slice on {meta.get('dataset', '?')} (BN: {surface.bn})"


def plot_slice(surface: Any, metric: str = "loss", title: str = "") -> go.Figure:
    """A contour map of `metric` over the plane, with the models marked; NaN (not yet computed)
    points are left blank."""
    z = slice_values(surface, metric)
    markers = list(surface.markers)
    fig = go.Figure(
        [
            go.Contour(
                x=np.asarray(surface.x, float),
                y=np.asarray(surface.y, float),
                z=z,
                colorscale="Viridis",
                colorbar={"title": {"text": metric_title(metric)}},
                connectgaps=False,
                name=metric,
            ),
            go.Scatter(
                x=[m.x for m in markers],
                y=[m.y for m in markers],
                text=[m.label for m in markers],
                mode="markers+text",
                textposition="top center",
                textfont={"color": "white", "size": 14},
                marker={"color": "white", "size": 11, "line": {"color": "black", "width": 2}},
                name="models",
            ),
        ]
    )
    x_title, y_title = plane_axis_titles(surface.meta)
    fig.update_layout(
        title=title or slice_title(surface),
        xaxis_title=x_title,
        yaxis_title=y_title,
        template="plotly_white",
        width=700,
        height=520,
        margin={"t": 60, "b": 40},
    )
    return fig
