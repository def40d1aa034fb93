"""Every figure builder of `lmc_toolkit.plots` titles its axes: each visible x, y (and 3-D z)
axis a trace draws on, and each colour bar, has a title. A builder added to the package without
an entry in `FIGURES` below fails `test_every_builder_is_covered`."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from lmc_toolkit import data as D
from lmc_toolkit import models, plots
from lmc_toolkit.connectivity import PairwiseResult
from lmc_toolkit.hessian import Diagonal, Spectrum
from lmc_toolkit.landscape import Curve, Marker, Surface
from lmc_toolkit.pruning import ImpConfig, ImpResult, ImpRound, Mask, TicketTable, magnitude
from lmc_toolkit.pruning.ticket_table import TicketEntry
from lmc_toolkit.pruning.tickets import TicketRun
from lmc_toolkit.study.analyses import (
    AlignedRow,
    BarrierRow,
    CurvatureSummary,
    DiagonalReplicates,
)
from lmc_toolkit.study.analyses.masks import MaskConvergence, MaskCost

# traces drawn on a 3-D scene, and traces with no axes at all
SCENE_TRACES = {"scatter3d", "surface", "mesh3d", "cone", "streamtube", "volume", "isosurface"}
NO_AXES = {"pie", "sunburst", "treemap", "sankey", "table", "indicator", "funnelarea"}
COLOUR_SCALES = {"heatmap", "contour", "surface", "histogram2d", "histogram2dcontour"}


def _title(spec: dict) -> str:
    title = spec.get("title") or {}
    return title.get("text", "") if isinstance(title, dict) else str(title)


def untitled_axes(fig: go.Figure) -> list[str]:
    """The axes and colour bars of `fig` that a reader would see without a title."""
    spec = fig.to_plotly_json()
    layout, missing = spec.get("layout", {}), []
    used: set[str] = set()
    for trace in spec.get("data", []):
        kind = trace.get("type", "scatter")
        if kind in NO_AXES:
            continue
        if kind in SCENE_TRACES:
            used |= {f"{trace.get('scene', 'scene')}.{a}axis" for a in "xyz"}
        else:
            used.add("xaxis" + trace.get("xaxis", "x")[1:])
            used.add("yaxis" + trace.get("yaxis", "y")[1:])
        if kind in COLOUR_SCALES and trace.get("showscale") is not False:
            axis = trace.get("coloraxis")
            bar = layout.get(axis, {}).get("colorbar", {}) if axis else trace.get("colorbar", {})
            if not _title(bar):
                missing.append(f"colour bar of {kind} {trace.get('name', '')}".strip())
    for name in sorted(used):
        scene, _, axis_name = name.rpartition(".")
        axis = (layout.get(scene, {}) if scene else layout).get(axis_name, {})
        if axis.get("visible") is False or axis.get("showticklabels") is False:
            continue  # an image's pixel axes, hidden
        if not _title(axis):
            missing.append(name)
    return missing


def _curve(label: str = "a-b") -> Curve:
    a = np.linspace(0, 1, 5)
    return Curve(a, 1 + a * (1 - a), 0.1 + 0.2 * a * (1 - a), label=label)


def _surface() -> Surface:
    x, y = np.linspace(-1, 1, 3), np.linspace(-1, 1, 4)
    loss = 1 + np.add.outer(y**2, x**2)
    markers = (Marker("a", 0.0, 0.0), Marker("b", 1.0, 1.0))
    return Surface(x, y, loss, np.full_like(loss, 0.5), markers, {"kind": "random"})


def _spectrum() -> Spectrum:
    grid = torch.linspace(-3, 3, 61, dtype=torch.float64)
    one = torch.ones(1, 1, dtype=torch.float64)
    dens = torch.exp(-0.5 * grid**2) / math.sqrt(2 * math.pi)
    return Spectrum(grid, dens, 0 * one, one, 1.0, 1, 1, 10, 0, 0.0, 1)


def _diagonal() -> Diagonal:
    values = {"w": torch.tensor([1e-3, 1e-2, 1e-1, 2.0], dtype=torch.float64)}
    kept = {"w": torch.tensor([True, True, True, False])}
    return Diagonal(values, kept, "exact", "ggn", True, 0.0, 0)


def _summary(method: str, sparsity: float) -> CurvatureSummary:
    return CurvatureSummary(
        method, 1, sparsity, [5.0, 3.0], 40.0, 2.0, {"mean": 1e-3}, [1e-4, 1e-3, 1e-2],
        "ggn", True, [0.0, 1.0, 2.0], [0.2, 0.5, 0.3], 1.0, 256,
    )  # fmt: skip


def _convnet() -> torch.nn.Module:
    return models.build("convnet3", 10, (1, 8, 8), width=8)


def _tickets() -> TicketTable:
    rows = [("dense", 0.0, 0, 0.95), ("imp", 0.5, 0, 0.93), ("imp", 0.5, 1, 0.94)]
    entries = tuple(
        TicketEntry(m, s, seed, acc, 0.1, 1.0, False, TicketRun(data_seed=seed))
        for m, s, seed, acc in rows
    )
    return TicketTable(entries=entries, masks={}, test_data="t", data_seeds=(0, 1))


def _imp() -> ImpResult:
    masks = [Mask.ones(_convnet()), magnitude(_convnet(), 0.2)]
    rounds = tuple(
        ImpRound(r, m, {}, "digits", 10, 100, 1.0, 0.0, 100 * r, float(r), 0.5, 0.8, None)
        for r, m in enumerate(masks)
    )
    return ImpResult(ImpConfig(rounds=1), rounds, 0, None, 100, 100)


def _aligned(method: str, sparsity: float) -> AlignedRow:
    stages = {"before": 0.3, "after": 0.05, "repaired": 0.02}
    iou = None if method == "dense" else 0.5
    return AlignedRow(
        method, 0 if method == "dense" else 2, sparsity, 2, stages, {k: 0.01 for k in stages},
        {k: 10 * v for k, v in stages.items()}, 0.005, iou, iou, 0.03, 0,
    )  # fmt: skip


def _barrier(method: str, sparsity: float) -> BarrierRow:
    return BarrierRow(method, 1, sparsity, 0.01, 0.03, 0.97, 0.002, 1.0, 0.001, 3, 1000)


def _synthetic() -> D.Dataset:
    g = torch.Generator().manual_seed(0)
    return D.Dataset(
        x=torch.rand(4, 1, 8, 8, generator=g), y=torch.tensor([0, 0, 1, 1]), classes=("a", "b"),
        name="toy",
    )  # fmt: skip


def _pairwise() -> PairwiseResult:
    off = np.array([[0, 0.1], [0.1, 0]])
    return PairwiseResult(("a", "b"), off, np.zeros((2, 2)), 30 * off, {}, "eval")


#: builder name -> a call drawing a typical figure with it
FIGURES = {
    "plot_accuracy_vs_sparsity": lambda: plots.plot_accuracy_vs_sparsity(_tickets()),
    "plot_aligned_barriers": lambda: plots.plot_aligned_barriers(
        [_aligned("dense", 0.0), _aligned("imp", 0.36)]
    ),
    "plot_aligned_mask_iou": lambda: plots.plot_aligned_mask_iou(
        [_aligned("dense", 0.0), _aligned("imp", 0.36)]
    ),
    "plot_barriers": lambda: plots.plot_barriers({"imp": ([0, 36], [0.1, 0.02], [0.01, 0.0])}),
    "plot_curvature_vs_sparsity": lambda: plots.plot_curvature_vs_sparsity(
        [_summary("imp", 0.36), _summary("imp", 0.59)]
    ),
    "plot_curve": lambda: plots.plot_curve([_curve()]),
    "plot_densities": lambda: plots.plot_densities([_summary("imp", 0.36)]),
    "plot_diagonal_hist": lambda: plots.plot_diagonal_hist(_diagonal()),
    "plot_diagonal_sorted": lambda: plots.plot_diagonal_sorted({"a": _diagonal()}),
    "plot_diagonals": lambda: plots.plot_diagonals([_summary("imp", 0.36)]),
    "plot_diagonal_replicates": lambda: plots.plot_diagonal_replicates(
        [DiagonalReplicates("imp", 2, 0.36, [0, 1], [1e-3, 1.2e-3], "exact", 128)]
    ),
    "plot_replicates": lambda: plots.plot_replicates(
        [("imp", 0.36, 0.97), ("imp", 0.36, 0.96)], "test accuracy (%)", "replicates", scale=100
    ),
    "plot_imp": lambda: plots.plot_imp({"imp": _imp()}),
    "plot_interpolation": lambda: plots.plot_interpolation(_curve(), 0.5),
    "plot_layer_sparsity": lambda: plots.plot_layer_sparsity({"imp": magnitude(_convnet(), 0.5)}),
    "plot_mask_convergence": lambda: plots.plot_mask_convergence(
        [MaskConvergence("dm", 0.8, [0.0, 1.0, 2.0], [0.3, 0.1, 0.0], [0.6, 0.9, 1.0])]
    ),
    "plot_mask_costs": lambda: plots.plot_mask_costs(
        [MaskCost("imp", 1, 0.2, 8000, 2.0, 4000), MaskCost("distilled-dm", 1, 0.2, 500, 1.0, 100)]
    ),
    "plot_mask_iou": lambda: plots.plot_mask_iou(
        magnitude(_convnet(), 0.5), magnitude(_convnet(), 0.5, scope="layerwise")
    ),
    "plot_mask_iou over sparsity": lambda: plots.plot_mask_iou(
        [magnitude(_convnet(), s) for s in (0.2, 0.5)],
        [magnitude(_convnet(), s, scope="layerwise") for s in (0.2, 0.5)],
    ),
    "plot_pairwise": lambda: plots.plot_pairwise(_pairwise()),
    "plot_slice": lambda: plots.plot_slice(_surface()),
    "plot_spectrum": lambda: plots.plot_spectrum(_spectrum()),
    "plot_spectrum log": lambda: plots.plot_spectrum({"a": _spectrum()}, log_y=True),
    "plot_surface": lambda: plots.plot_surface(_surface()),
    "plot_synthetic": lambda: plots.plot_synthetic(_synthetic()),
    "plot_tradeoff": lambda: plots.plot_tradeoff([_barrier("dense", 0.0), _barrier("imp", 0.36)]),
    "plot_vs_sparsity": lambda: plots.plot_vs_sparsity({"imp": [(0, 5.0), (36, 4.0)]}),
}


def test_every_builder_is_covered():
    builders = {name for name in plots.__all__ if name.startswith("plot_")}
    covered = {name.split()[0] for name in FIGURES}
    assert builders - covered == set(), "builders this test does not draw"


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_the_figure_titles_every_axis_it_draws_on(name):
    fig = FIGURES[name]()
    assert isinstance(fig, go.Figure)
    assert untitled_axes(fig) == [], f"{name}: axes without a title"


def test_a_figure_without_axis_titles_fails_the_check():
    fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 0]))
    assert untitled_axes(fig) == ["xaxis", "yaxis"]
    fig.update_xaxes(title_text="α")
    assert untitled_axes(fig) == ["yaxis"]
    fig.add_trace(go.Heatmap(z=[[0, 1], [1, 0]], xaxis="x2", yaxis="y2"))
    fig.update_yaxes(title_text="loss")
    assert untitled_axes(fig) == ["colour bar of heatmap", "xaxis2", "yaxis2"]
    scene = go.Figure(go.Surface(z=[[0, 1], [1, 0]], colorbar={"title": {"text": "loss"}}))
    assert untitled_axes(scene) == ["scene.xaxis", "scene.yaxis", "scene.zaxis"]
