"""F9's figures: barriers per stage of alignment, and the masks' IoU against chance."""

from __future__ import annotations

import pytest

from lmc_toolkit.plots.alignment import plot_aligned_barriers, plot_aligned_mask_iou
from lmc_toolkit.study.analyses import AlignedRow


def _row(method, sparsity, before, after, repaired_layers=0, iou=None):
    stages = {"before": before, "after": after, "repaired": after / 2}
    return AlignedRow(
        method, 0 if method == "dense" else 2, sparsity, 2, stages,
        {k: 0.01 for k in stages}, {k: 10 * v for k, v in stages.items()}, 0.005,
        None if iou is None else iou[0], None if iou is None else iou[1], 0.03, repaired_layers,
    )  # fmt: skip


ROWS = [_row("dense", 0.0, 0.3, 0.05), _row("imp", 0.36, 0.2, 0.04, iou=(0.47, 0.6))]


def test_barrier_panels_per_stage_with_the_dense_point_on_every_line():
    fig = plot_aligned_barriers(ROWS)
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["before alignment", "after weight matching"]  # REPAIR corrected nothing
    assert "REPAIR corrects no layer" in fig.layout.title.text
    imp_before = next(t for t in fig.data if t.name == "imp" and t.xaxis == "x")
    assert list(imp_before.x) == [0.0, 36.0] and list(imp_before.y) == pytest.approx([30.0, 20.0])
    assert fig.layout.yaxis.title.text == "error barrier (%)"
    assert fig.layout.xaxis.title.text == "sparsity (%)"
    repaired = [_row("dense", 0.0, 0.3, 0.05, repaired_layers=2)]
    fig3 = plot_aligned_barriers(repaired, "loss", method="activation matching")
    assert [a.text for a in fig3.layout.annotations][1:] == [
        "after activation matching", "after activation matching + REPAIR",
    ]  # fmt: skip
    assert list(fig3.data[2].y) == pytest.approx([0.25])  # loss, in nats: 10 × 0.05 / 2
    assert fig3.layout.yaxis.title.text == "loss barrier (nats)"
    with pytest.raises(ValueError, match="metric must be"):
        plot_aligned_barriers(ROWS, "accuracy")


def test_mask_iou_before_and_after_with_the_chance_level():
    fig = plot_aligned_mask_iou(ROWS)
    chance = fig.data[0]
    assert chance.name.startswith("chance") and list(chance.y) == pytest.approx([0.64 / 1.36])
    assert [t.name for t in fig.data[1:]] == ["imp (before alignment)", "imp (after alignment)"]
    assert list(fig.data[2].y) == [0.6] and fig.layout.yaxis.title.text == "IoU of the kept weights"
    with pytest.raises(ValueError, match="pruned networks"):
        plot_aligned_mask_iou(ROWS[:1])
