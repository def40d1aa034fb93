"""The study's summary figures: the stability/accuracy trade-off (F6)."""

from __future__ import annotations

import math

import pytest

from lmc_toolkit.plots.study import SPARSITY_SYMBOLS, plot_tradeoff
from lmc_toolkit.study.analyses import BarrierRow


def row(method: str, sparsity: float, ratio: float, barrier: float, std: float = math.nan):
    return BarrierRow(method, 1, sparsity, barrier, 3 * barrier, 0.97, 0.002, ratio, std, 3, 1000)


def test_tradeoff_marks_sparsity_by_shape_not_by_overlapping_text():
    rows = [row("dense", 0.0, 1.0, 0.30)]
    for method, shift in (("imp", 0.0), ("distilled-dm", 0.001)):
        rows += [row(method, s, 1.0 + shift, 0.003 + shift, std=0.001) for s in (0.36, 0.59, 0.87)]
    fig = plot_tradeoff(rows)
    methods = [t for t in fig.data if t.legendgroup == "methods"]
    assert [t.name for t in methods] == ["dense", "imp", "distilled-dm"]
    assert all(t.text is None for t in fig.data)  # no text labels to collide
    imp = methods[1]
    assert list(imp.marker.symbol) == list(SPARSITY_SYMBOLS[1:4])  # 0% takes the first shape
    assert imp.error_y.visible and list(imp.error_y.array) == pytest.approx([0.1] * 3)
    assert not methods[0].error_y.visible  # one pair: no spread to draw
    key = [t.name for t in fig.data if t.legendgroup == "sparsity"]
    assert key == ["0%", "36%", "59%", "87%"]
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text == "error barrier (%)"
    with pytest.raises(ValueError, match="at least one row"):
        plot_tradeoff([])
