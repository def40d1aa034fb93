"""Figures for curves, barriers, pairwise matrices and surfaces."""

from __future__ import annotations

import numpy as np
import pytest

from lmc_toolkit.connectivity import PairwiseResult
from lmc_toolkit.landscape import Curve, Marker, Surface
from lmc_toolkit.plots.connectivity import plot_barriers, plot_curve, plot_pairwise, plot_surface


def _curve(label):
    a = np.linspace(0, 1, 5)
    return Curve(a, 1 + a * (1 - a), 0.9 - 0.2 * a * (1 - a), label=label)


def test_plot_curve_has_a_loss_and_an_error_panel_per_curve():
    fig = plot_curve([_curve("one"), _curve("two")])
    assert len(fig.data) == 4
    np.testing.assert_allclose(fig.data[1].y, 100 * _curve("one").error)
    assert fig.data[0].name == "one" and fig.data[2].name == "two"
    assert len(_curve("x").plot().data) == 2
    with pytest.raises(ValueError, match="at least one curve"):
        plot_curve([])


def test_plot_barriers_with_error_bars():
    fig = plot_barriers(
        {"IMP": ([0, 20, 36], [0.1, 0.05, 0.02], [0.01, 0.01, 0.0]), "dense": ([0], [0.1])}
    )
    assert [t.name for t in fig.data] == ["IMP", "dense"]
    np.testing.assert_allclose(fig.data[0].y, [10, 5, 2])
    np.testing.assert_allclose(fig.data[0].error_y.array, [1, 1, 0])
    with pytest.raises(ValueError, match=r"\(x, barrier\)"):
        plot_barriers({"bad": ([0],)})


def test_plot_barriers_draws_the_threshold_in_the_series_units():
    assert not plot_barriers({"dense": ([0], [0.1])}).layout.shapes
    fig = plot_barriers({"dense": ([0, 0.25], [0.1, 0.0])}, threshold=0.02)
    (line,) = fig.layout.shapes
    assert line.y0 == line.y1 == pytest.approx(2.0) and line.line.dash == "dash"
    assert "threshold 2" in fig.layout.annotations[0].text


def test_plot_surface_contour_3d_and_markers():
    x, y = np.linspace(-1, 1, 3), np.linspace(-1, 1, 4)
    loss = 1 + np.add.outer(y**2, x**2)
    s = Surface(
        x,
        y,
        loss,
        np.full_like(loss, 0.5),
        (Marker("a", 0.0, 0.0), Marker("b", 1.0, 1.0)),
        {"kind": "random"},
    )
    fig = s.plot()
    kinds = [t.type for t in fig.data]
    assert kinds == ["contour", "surface", "scatter", "scatter3d"]
    assert list(fig.data[2].text) == ["a", "b"]
    logged = plot_surface(s, log=True)
    np.testing.assert_allclose(np.asarray(logged.data[0].z), np.log10(loss))
    # the labels sit in light boxes, readable on dark and light colours alike
    boxes = [a for a in fig.layout.annotations if a.text in ("a", "b")]
    assert len(boxes) == 2 and all(a.bgcolor and a.font.color == "black" for a in boxes)


def test_plot_surface_colour_range_caps_the_scale():
    x, y = np.linspace(-1, 1, 3), np.linspace(-1, 1, 4)
    loss = 1 + np.add.outer(y**2, x**2)
    s = Surface(x, y, loss, np.full_like(loss, 0.5), (), {"kind": "random"})
    assert plot_surface(s).data[0].zmax is None
    capped = plot_surface(s, color_range=(None, 2.0))
    assert (capped.data[0].zmin, capped.data[0].zmax) == (loss.min(), 2.0)
    assert (capped.data[1].cmin, capped.data[1].cmax) == (loss.min(), 2.0)
    with pytest.raises(ValueError, match=r"color_range needs low < high, got \(3.0, 2.0\)"):
        plot_surface(s, color_range=(3.0, 2.0))


def test_plot_surface_colour_range_capped_between_the_markers():
    x = y = np.linspace(-2, 2, 9)  # steps of 0.5
    loss = 1 + np.add.outer(y**2, x**2)  # highest (9) in the corners
    markers = (Marker("a", -0.5, 0.0), Marker("b", 0.5, 0.5))
    s = Surface(x, y, loss, np.full_like(loss, 0.5), markers, {"kind": "paper"})
    fig = plot_surface(s, color_range="markers")
    # the box around the markers, one grid step wider: x, y in [-1, 1] -> 1 + 1 + 1
    assert (fig.data[0].zmin, fig.data[0].zmax) == (1.0, 3.0)
    logged = plot_surface(s, log=True, color_range="markers")
    assert logged.data[0].zmax == pytest.approx(np.log10(3.0))
    # without two markers there is nothing to cap at: the scale stays automatic
    alone = Surface(x, y, loss, np.full_like(loss, 0.5), markers[:1], {"kind": "paper"})
    assert plot_surface(alone, color_range="markers").data[0].zmax is None
    with pytest.raises(ValueError, match=r"\(low, high\) or 'markers', got 'corners'"):
        plot_surface(s, color_range="corners")


def test_plot_pairwise_heatmaps():
    r = PairwiseResult(
        ("a", "b"),
        np.array([[0, 0.1], [0.1, 0]]),
        np.zeros((2, 2)),
        np.array([[0, 3.0], [3.0, 0]]),
        {},
        "eval",
    )
    fig = plot_pairwise(r)
    assert [t.type for t in fig.data] == ["heatmap", "heatmap"]
    np.testing.assert_allclose(np.asarray(fig.data[0].z), [[0, 10], [10, 0]])
