"""Pruning figures: accuracy vs sparsity with bands, per-layer sparsity, mask overlap, IMP rounds."""

from __future__ import annotations

import pytest
import torch

from lmc_toolkit import models
from lmc_toolkit.plots.pruning import (
    plot_accuracy_vs_sparsity,
    plot_imp,
    plot_layer_sparsity,
    plot_mask_iou,
)
from lmc_toolkit.pruning import (
    ImpConfig,
    ImpResult,
    ImpRound,
    Mask,
    TicketTable,
    iou,
    magnitude,
    random,
)
from lmc_toolkit.pruning.ticket_table import TicketEntry
from lmc_toolkit.pruning.tickets import TicketRun


def convnet():
    return models.build("convnet3", 10, (1, 8, 8), width=8)


def table() -> TicketTable:
    rows = [("dense", 0.0, 0, 0.95), ("dense", 0.0, 1, 0.97)]
    for s, accs in ((0.2, (0.94, 0.96)), (0.5, (0.90, 0.92))):
        rows += [("imp", s, seed, a) for seed, a in enumerate(accs)]
        rows += [("random", s, seed, a - 0.1) for seed, a in enumerate(accs)]
    entries = tuple(
        TicketEntry(m, s, seed, acc, 0.1, 1.0, False, TicketRun(data_seed=seed))
        for m, s, seed, acc in rows
    )
    return TicketTable(entries=entries, masks={}, test_data="t", data_seeds=(0, 1))


def test_accuracy_vs_sparsity_has_a_line_and_a_band_per_method():
    t = table()
    fig = plot_accuracy_vs_sparsity(t)
    lines = [tr for tr in fig.data if tr.showlegend is not False]
    bands = [tr for tr in fig.data if tr.fill == "toself"]
    assert [tr.name for tr in lines] == ["dense", "imp", "random"] and len(bands) == 3
    imp_line = lines[1]
    assert list(imp_line.x) == [20.0, 50.0]
    assert list(imp_line.y) == pytest.approx([95.0, 91.0])
    imp_band = bands[1]  # mean ± sample std (ddof 1): that of (0.94, 0.96) is 0.01·√2
    w = 100 * 0.01 * 2**0.5
    assert list(imp_band.y) == pytest.approx([95.0 + w, 91.0 + w, 91.0 - w, 95.0 - w])
    dense = lines[0]  # one point at sparsity 0: drawn across the sparsity range
    assert list(dense.x) == [0.0, 50.0] and list(dense.y) == pytest.approx([96.0, 96.0])
    assert t.plot().data[1].name == fig.data[1].name
    only = plot_accuracy_vs_sparsity(t, methods=["imp"], percent=False)
    assert len(only.data) == 2 and max(only.data[1].y) < 1
    with pytest.raises(ValueError, match="not in the table"):
        plot_accuracy_vs_sparsity(t, methods=["distilled"])


def test_layer_sparsity_profiles_one_bar_group_per_layer():
    model = convnet()
    masks = {"global": magnitude(model, 0.5), "layerwise": magnitude(model, 0.5, scope="layerwise")}
    fig = plot_layer_sparsity(masks)
    assert [tr.type for tr in fig.data] == ["bar", "bar"]
    assert list(fig.data[0].x) == ["0", "4", "8", "13"]
    assert list(fig.data[1].y) == pytest.approx(
        [100 * r.sparsity for r in masks["layerwise"].per_layer()]
    )
    assert "50.0% overall" in fig.data[0].name
    with pytest.raises(ValueError, match="at least one"):
        plot_layer_sparsity({})


def test_mask_iou_per_layer_and_over_sparsity():
    model = convnet()
    a, b = magnitude(model, 0.5), random(model, 0.5, seed=0)
    fig = plot_mask_iou(a, b, labels=("imp", "random"))
    bars, chance = fig.data
    assert list(bars.x) == ["0", "4", "8", "13", "all"]
    assert bars.y[-1] == pytest.approx(iou(a, b)) and len(chance.y) == 5
    ham = plot_mask_iou(a, b, metric="hamming", chance=False)
    assert len(ham.data) == 1 and min(ham.data[0].y) >= 0
    seq_a = [magnitude(model, s) for s in (0.2, 0.5, 0.8)]
    seq_b = [random(model, s, seed=1) for s in (0.2, 0.5, 0.8)]
    fig = plot_mask_iou(seq_a, seq_b)
    names = [tr.name for tr in fig.data]
    assert names == ["0", "4", "8", "13", "all", "chance (all)"]
    assert list(fig.data[4].x) == pytest.approx([100 * m.sparsity for m in seq_a])
    with pytest.raises(ValueError, match="equally long"):
        plot_mask_iou(seq_a, seq_b[:2])
    with pytest.raises(ValueError, match="metric"):
        plot_mask_iou(a, b, metric="jaccard")


def test_imp_rounds_figure():
    model = convnet()
    masks = [Mask.ones(model), magnitude(model, 0.2)]
    rounds = tuple(
        ImpRound(r, m, {}, "digits", 10, 100, 1.0, 0.0, 100 * r, float(r), 0.5, 0.8, None)
        for r, m in enumerate(masks)
    )
    result = ImpResult(ImpConfig(rounds=1), rounds, 0, None, 100, 100)
    fig = plot_imp({"imp": result, "other": result})
    assert len(fig.data) == 4 and list(fig.data[1].y) == [100]
    assert result.plot().data[0].name == "imp"
    assert torch.equal(result.mask(0.2)["0.weight"], masks[1]["0.weight"])
