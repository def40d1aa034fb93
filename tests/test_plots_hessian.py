"""Figures for spectra, diagonals and curvature against sparsity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lmc_toolkit.hessian import Diagonal, Eigen, Estimate, Spectrum
from lmc_toolkit.plots.hessian import (
    plot_diagonal_hist,
    plot_diagonal_sorted,
    plot_spectrum,
    plot_vs_sparsity,
)


def _spectrum(centre: float) -> Spectrum:
    grid = torch.linspace(centre - 3, centre + 3, 101, dtype=torch.float64)
    dens = torch.exp(-0.5 * (grid - centre) ** 2) / math.sqrt(2 * math.pi)
    one = torch.ones(1, 1, dtype=torch.float64)
    return Spectrum(grid, dens, centre * one, one, 1.0, 1, 1, 10, 0, 0.0, 1)


def _diagonal(values: list[float], kept: list[bool]) -> Diagonal:
    return Diagonal(
        values={"w": torch.tensor(values, dtype=torch.float64)},
        kept={"w": torch.tensor(kept)},
        method="exact",
        route="ggn",
        exact=True,
        seconds=0.0,
        products=0,
    )


def test_spectrum_linear_and_log():
    fig = plot_spectrum({"dense": _spectrum(0.0), "IMP": _spectrum(1.0)}, log_y=True)
    assert [t.name for t in fig.data] == ["dense", "IMP"]
    assert fig.layout.yaxis.type == "log"
    assert min(fig.data[0].y) > 0
    single = _spectrum(2.0).plot()
    assert single.layout.yaxis.type == "linear"
    np.testing.assert_allclose(single.data[0].y, _spectrum(2.0).density.numpy())
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_spectrum({})


def test_log_density_is_drawn_only_where_it_is_meaningful():
    """Two Ritz bumps far apart: between them the broadening's tails fall far below the peak;
    there the line breaks (NaN) instead of lying on a flat floor, and the axis starts at the
    floor."""
    from lmc_toolkit.plots.hessian import LOG_DENSITY_FLOOR

    grid = torch.linspace(-5, 25, 601, dtype=torch.float64)
    dens = torch.exp(-0.5 * grid**2) + 1e-3 * torch.exp(-0.5 * (grid - 20) ** 2)
    nodes = torch.tensor([[0.0, 20.0]], dtype=torch.float64)
    spec = Spectrum(grid, dens, nodes, torch.ones_like(nodes) / 2, 1.0, 1, 2, 10, 0, 0.0, 2)
    y = np.asarray(plot_spectrum(spec, log_y=True).data[0].y, dtype=float)
    peak = float(dens.max())
    valley = (grid > 8) & (grid < 12)
    assert np.isnan(y[valley.numpy()]).all()
    assert np.nanmin(y) >= peak * LOG_DENSITY_FLOOR
    assert not np.isnan(y[np.argmin(np.abs(grid.numpy() - 20))])  # the small bump stays
    fig = plot_spectrum(spec, log_y=True)
    assert fig.layout.yaxis.range[0] == pytest.approx(math.log10(peak * LOG_DENSITY_FLOOR))
    assert fig.layout.yaxis.title.text and fig.layout.xaxis.title.text


def test_diagonal_histogram_on_log_x_counts_kept_coordinates():
    d = _diagonal([1e-3, 1e-2, 1e-1, -1e-4, 5.0], [True, True, True, True, False])
    fig = plot_diagonal_hist(d, bins=3)
    assert fig.layout.xaxis.type == "log"
    trace = fig.data[0]
    assert math.isclose(sum(trace.y), 3 / 4)  # the pruned 5.0 is left out, the negative counted
    assert trace.name.endswith("(1 negative: not on the log axis)")
    assert fig.layout.xaxis.exponentformat == "power"  # 10⁻³, not SI's "1m"
    zeros = _diagonal([0.0, 0.0, 1e-2], [True, True, True])  # a Gauss-Newton diagonal: no negatives
    assert plot_diagonal_hist(zeros).data[0].name.endswith("(2 zero: not on the log axis)")
    assert plot_diagonal_hist(_diagonal([1.0, 2.0], [True, True])).data[0].name == "diagonal"
    assert d.plot("hist").layout.xaxis.type == "log"
    with pytest.raises(ValueError, match="bins"):
        plot_diagonal_hist(d, bins=0)


def test_diagonal_sorted_curve():
    d = _diagonal([3.0, 1.0, 2.0, 7.0], [True, True, True, False])
    fig = plot_diagonal_sorted({"a": d})
    np.testing.assert_allclose(fig.data[0].y, [3.0, 2.0, 1.0])
    assert fig.layout.yaxis.type == "log"
    assert d.plot("sorted").data[0].name == "diagonal"
    with pytest.raises(ValueError, match="kind"):
        d.plot("violin")


def test_curvature_vs_sparsity_one_line_per_method():
    def eig(v):
        t = torch.tensor([v], dtype=torch.float64)
        return Eigen(t, t[None], t * 0, t * 0 + 0.5, 3, 3, True, "lanczos", "LA", 1e-6, 0, 0.0)

    def est(v):
        return Estimate(v, 2.0, torch.zeros(3), 3, 3, "hutch++", 0, 0.0)

    fig = plot_vs_sparsity({"IMP": [(80, eig(2.0)), (0, eig(5.0))], "synthetic": [(80, 1.0)]})
    assert [t.name for t in fig.data] == ["IMP", "synthetic"]
    np.testing.assert_allclose(fig.data[0].x, [0, 80])
    np.testing.assert_allclose(fig.data[0].y, [5.0, 2.0])
    fig = plot_vs_sparsity({"IMP": [(0, est(10.0))]}, quantity="trace", log_y=True)
    np.testing.assert_allclose(fig.data[0].error_y.array, [2.0])
    assert fig.layout.yaxis.type == "log"
    with pytest.raises(TypeError, match="cannot read"):
        plot_vs_sparsity({"IMP": [(0, "sharp")]})
    with pytest.raises(ValueError):
        plot_vs_sparsity({})
