"""The fused first block against the plain network: which blocks fuse, and equal numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import per_point_reference
from torch import nn

from lmc_toolkit import models
from lmc_toolkit.data import Dataset
from lmc_toolkit.landscape import evaluate_points
from lmc_toolkit.landscape.evaluator.points import grid_coords
from lmc_toolkit.landscape.evaluator.stem import find_stem
from lmc_toolkit.training import params as P

COORDS = grid_coords([-0.5, 0.0, 1.0], [0.0, 0.7])


def _rgb(data: Dataset) -> Dataset:
    """The digits as 3-channel images with different contrast per channel."""
    x = torch.cat([data.x, 0.5 * data.x, -data.x], dim=1)
    return Dataset(x, data.y, data.classes, "digits-rgb")


def _net(kind: str, channels: int) -> nn.Sequential:
    """Small convnets whose first blocks cover the supported patterns (8×8 inputs)."""
    blocks = {
        "instance-relu-avg": [nn.GroupNorm(6, 6), nn.ReLU(), nn.AvgPool2d(2)],
        "group-gelu-max": [nn.GroupNorm(2, 6), nn.GELU(), nn.MaxPool2d(2)],
        "batchnorm-tanh": [nn.BatchNorm2d(6), nn.Tanh()],
        "plain-relu-max": [nn.ReLU(), nn.MaxPool2d(2)],
        "odd-size": [nn.GroupNorm(3, 6, affine=False), nn.ReLU(), nn.AvgPool2d(2)],
    }[kind]
    padding = 0 if kind == "odd-size" else 1  # 8×8 → 6×6 → pooled 3×3, or 8×8 → 4×4
    stride = 2 if kind == "batchnorm-tanh" else 1
    net = nn.Sequential(
        nn.Identity(),
        nn.Conv2d(channels, 6, 3, padding=padding, stride=stride),
        *blocks,
        nn.Conv2d(6, 5, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.LazyLinear(10),
    )
    net(torch.zeros(1, channels, 8, 8))  # materialize the lazy layer
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.4 * torch.randn(p.shape, generator=generator))
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.3 * torch.randn(m.num_features, generator=generator))
                m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
    return net.eval()


def _directions(net: nn.Module) -> tuple[dict, list[dict]]:
    base = P.params_of(net)
    generator = torch.Generator().manual_seed(1)
    dirs = [
        {k: 0.3 * torch.randn(v.shape, generator=generator) for k, v in base.items()}
        for _ in range(2)
    ]
    return base, dirs


@pytest.mark.parametrize(
    "kind", ["instance-relu-avg", "group-gelu-max", "batchnorm-tanh", "plain-relu-max", "odd-size"]
)
@pytest.mark.parametrize("channels", [1, 3])
def test_fused_first_block_equals_the_network(digits_small, kind, channels):
    data = digits_small if channels == 1 else _rgb(digits_small)
    net = _net(kind, channels)
    assert find_stem(net) is not None
    base, dirs = _directions(net)
    fused = evaluate_points(
        net, data, base, dirs, COORDS, progress=False, batch_size=64, fuse_stem=True
    )
    assert fused.details["method"] == "loop+stem"
    loss, acc = per_point_reference(net, base, dirs, COORDS, data)
    np.testing.assert_allclose(fused.loss, loss, rtol=0, atol=1e-5)
    np.testing.assert_allclose(fused.accuracy, acc, rtol=0, atol=1e-9)


def test_recalibrated_batchnorm_runs_through_the_fused_block(digits_small):
    net = _net("batchnorm-tanh", 1)
    base, dirs = _directions(net)
    runs = [
        evaluate_points(
            net, digits_small, base, dirs, COORDS, bn="recalibrate", progress=False, **kw
        )
        for kw in ({"fuse_stem": True}, {"fuse_stem": False, "reuse_first_layer": False})
    ]
    assert [r.details["method"] for r in runs] == ["loop+stem", "loop"]
    np.testing.assert_allclose(runs[0].loss, runs[1].loss, rtol=0, atol=1e-5)
    assert not np.allclose(
        runs[0].loss, per_point_reference(net, base, dirs, COORDS, digits_small)[0], atol=1e-3
    )


def test_which_first_blocks_fuse():
    assert find_stem(models.build("convnet3", 10, (1, 8, 8), width=4)) is not None
    assert find_stem(models.build("mlp", 10, (1, 8, 8), hidden=(8,))) is None
    wide = nn.Sequential(nn.Conv2d(16, 4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    assert find_stem(wide) is None  # 144 taps: the conv's own kernel is cheaper
    bare = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.LazyLinear(2))
    assert find_stem(bare) is None
    layer_norm = nn.Sequential(nn.Conv2d(1, 4, 3), nn.LayerNorm([4, 6, 6]), nn.ReLU())
    assert find_stem(layer_norm) is None
    strided_pool = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(3, 2))
    stem = find_stem(strided_pool)
    assert stem is not None and stem.pool is None  # the pooling stays in the rest


def test_chunk_sizes_agree_and_the_model_is_unchanged(digits_small):
    net = _net("instance-relu-avg", 1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    base, dirs = _directions(net)
    kw = {"progress": False, "fuse_stem": True}
    a = evaluate_points(net, digits_small, base, dirs, COORDS, batch_size=7, **kw)
    b = evaluate_points(net, digits_small, base, dirs, COORDS, batch_size=300, **kw)
    assert a.details["method"] == b.details["method"] == "loop+stem"
    np.testing.assert_allclose(a.loss, b.loss, rtol=0, atol=1e-5)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["group-gelu-max", "batchnorm-tanh"])
def test_compiled_fused_block_equals_the_network(digits_small, kind):
    data = _rgb(digits_small)
    net = _net(kind, 3)
    base, dirs = _directions(net)
    fused = evaluate_points(net, data, base, dirs, COORDS, progress=False, compile=True)
    assert fused.details["method"] == "loop+stem" and fused.details["compiled"]
    loss, acc = per_point_reference(net, base, dirs, COORDS, data)
    np.testing.assert_allclose(fused.loss, loss, rtol=0, atol=1e-5)
    np.testing.assert_allclose(fused.accuracy, acc, rtol=0, atol=1e-9)


@pytest.mark.slow
def test_compiled_cpu_block_over_window_groups_and_a_short_chunk(digits_small, monkeypatch):
    """The CPU's compiled path keeps windows for groups of chunks; one chunk per group and a
    short last chunk (run eagerly) give the same values."""
    from lmc_toolkit.landscape.evaluator import paths

    monkeypatch.setattr(paths, "STEM_WINDOW_BYTES", 1)
    net = _net("instance-relu-avg", 1)
    base, dirs = _directions(net)
    data = digits_small[: len(digits_small) // 7 * 7 - 3]  # the last chunk of 7 is short
    fused = evaluate_points(net, data, base, dirs, COORDS, progress=False, compile=True,
                            batch_size=7)  # fmt: skip
    assert fused.details["method"] == "loop+stem" and fused.details["compiled"]
    loss, acc = per_point_reference(net, base, dirs, COORDS, data)
    np.testing.assert_allclose(fused.loss, loss, rtol=0, atol=1e-5)
    np.testing.assert_allclose(fused.accuracy, acc, rtol=0, atol=1e-9)
