"""The structured exact diagonal of instance-norm conv chains against dense Hessians."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from hessian_helpers import apply_mask, dense_hessian, flat_mask, random_mask
from torch import nn

from lmc_toolkit import data as D
from lmc_toolkit import models
from lmc_toolkit.hessian import Hessian, diagonal
from lmc_toolkit.hessian.structured import early as hessian_diag_early
from lmc_toolkit.hessian.structured.chain import applies


def _data(n: int = 8, size: int = 12, seed: int = 0) -> D.Dataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, size, size, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (n,), generator=g)
    return D.Dataset(x, y, tuple(str(i) for i in range(10)), "random")


def _perturb_norms(net: nn.Module, seed: int) -> nn.Module:
    """Non-trivial affine parameters (and running statistics) in every norm layer."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.GroupNorm, nn.BatchNorm2d)) and m.weight is not None:
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.6 * torch.rand(m.bias.shape, generator=g) - 0.3)
            if isinstance(m, nn.BatchNorm2d) and m.running_mean is not None:
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) - 0.5)
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
    return net


def convnet3(depth: int, width: int = 3, size: int = 12, seed: int = 1) -> nn.Module:
    net = models.build("convnet3", 10, (1, size, size), seed, width=width, depth=depth)
    return _perturb_norms(net.double(), seed)


def mixed(seed: int = 2) -> nn.Module:
    """Max pooling, instance norm, eval BatchNorm and no norm, a strided conv, no-bias conv."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1),
        nn.GroupNorm(3, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(3, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 3, 3, stride=2, padding=1),
        nn.GroupNorm(3, 3),
        nn.ReLU(),
        nn.MaxPool2d(2, padding=1),
        nn.Conv2d(3, 2, 2),
        nn.GroupNorm(2, 2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(2, 10),
    ).double()
    return _perturb_norms(net, seed)


def _flat(diag) -> torch.Tensor:
    return torch.cat([v.reshape(-1) for v in diag.values.values()])


@pytest.mark.parametrize(
    ("make", "size"),
    [
        (lambda: convnet3(depth=1), 12),
        (lambda: convnet3(depth=2), 12),
        (lambda: convnet3(depth=3), 12),
        (lambda: convnet3(depth=2, width=4, size=8), 8),
        (lambda: mixed(), 12),
    ],
    ids=["depth1", "depth2", "depth3", "depth2_8x8", "maxpool_bn_stride"],
)
def test_structured_diagonal_equals_dense_diagonal(make, size):
    net = make()
    data = _data(size=size)
    before = copy.deepcopy(net.state_dict())
    H = Hessian(net, data, batch_size=3)
    diag = diagonal(H, progress=False)
    assert diag.route == "structured" and diag.exact and diag.products == 0
    expected = torch.diagonal(dense_hessian(net, data))
    torch.testing.assert_close(_flat(diag), expected, rtol=1e-9, atol=1e-12)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_float32_convnet3_matches_one_hot_products(digits_train):
    d = digits_train[:6]
    net = _perturb_norms(models.build("convnet3", 10, d.in_shape, 0, width=3, depth=3), 3)
    H = Hessian(net, d)
    ours, onehot = diagonal(H, progress=False), diagonal(H, method="onehot", progress=False)
    assert ours.route == "structured"
    scale = float(onehot.flat().abs().max())
    assert float((ours.flat() - onehot.flat()).abs().max()) <= 1e-4 * scale


def test_masked_structured_diagonal_is_the_kept_submatrix_diagonal():
    net = convnet3(depth=3)
    data = _data()
    mask = random_mask(net, ["0.weight", "4.weight", "8.weight", "13.weight"], keep=0.5, seed=4)
    H = Hessian(net, data, mask=mask)
    diag = diagonal(H, progress=False)
    keep = flat_mask(net, mask)
    expected = torch.diagonal(dense_hessian(apply_mask(net, mask), data))[keep]
    assert diag.route == "structured"
    torch.testing.assert_close(diag.flat(), expected, rtol=1e-9, atol=1e-12)
    assert all(float(v[~diag.kept[k]].abs().sum()) == 0 for k, v in diag.values.items())
    assert diag.meta["early_coordinates"] == int(mask["0.weight"].sum()) + 6  # + norm γ, β


@pytest.mark.parametrize("select", [r"(1|4|9)\..*", "0.weight", ["8.weight", "13.bias"]])
def test_selected_structured_diagonal(select):
    net = convnet3(depth=3)
    data = _data()
    H = Hessian(net, data, select=select)
    diag = diagonal(H, progress=False)
    assert diag.route == "structured"
    expected = torch.diagonal(dense_hessian(net, data, names=list(H.names)))
    torch.testing.assert_close(_flat(diag), expected, rtol=1e-9, atol=1e-12)
    early = [k for k in H.names if k in ("0.weight", "1.weight", "1.bias")]
    assert diag.meta["early_coordinates"] == sum(H.kept()[k].sum() for k in early)


def test_chunks_of_every_size_give_the_same_diagonal(monkeypatch):
    """Operator batches, closed-form chunks and early-block chunks all weighted by size."""
    net = convnet3(depth=3)
    data = _data(n=7)
    ref = diagonal(Hessian(net, data), progress=False)
    monkeypatch.setattr(hessian_diag_early, "_BUDGET", 1)  # one sample per early step
    diag = diagonal(Hessian(net, data, batch_size=3), progress=False, ggn_batch=2)
    assert diag.meta["chunk"] == 2
    torch.testing.assert_close(_flat(diag), _flat(ref), rtol=1e-12, atol=1e-14)
    expected = torch.diagonal(dense_hessian(net, data))
    torch.testing.assert_close(_flat(diag), expected, rtol=1e-9, atol=1e-12)


def test_limit_computes_a_prefix_of_the_early_coordinates():
    net = convnet3(depth=3)
    data = _data()
    H = Hessian(net, data)
    full = diagonal(H, progress=False)
    part = diagonal(H, method="structured", limit=5, progress=False)
    assert part.meta["early_done"] == 5 and part.meta["early_coordinates"] == 27 + 6
    first = part.values["0.weight"].reshape(-1)
    torch.testing.assert_close(first[:5], full.values["0.weight"].reshape(-1)[:5])
    assert bool(first[5:].isnan().all()) and bool(part.values["1.weight"].isnan().all())
    for k in ("0.bias", "4.weight", "9.bias", "13.weight"):  # not products: computed in full
        torch.testing.assert_close(part.values[k], full.values[k])


def test_structured_route_refuses_other_models_and_exact_falls_back(digits_train):
    d = digits_train[:8]
    mlp = models.build("mlp", 10, d.in_shape, 0, hidden=(4,)).double()
    H = Hessian(mlp, D.Dataset(d.x.double(), d.y, d.classes, d.name))
    assert not applies(H)
    with pytest.raises(ValueError, match="Conv2d"):
        diagonal(H, method="structured", progress=False)
    net = convnet3(depth=2)
    net[1] = nn.GroupNorm(1, 3).double()  # layer norm over channels: not instance norm
    H = Hessian(net, _data())
    assert not applies(H) and diagonal(H, progress=False, limit=2).route == "onehot"
    with pytest.raises(ValueError, match="ReLU"):
        diagonal(H, method="structured", progress=False)
    assert not applies(Hessian(convnet3(depth=2), _data(), loss=lambda o, y: o.square().mean()))
    assert math.isfinite(float(diagonal(Hessian(convnet3(1), _data()), progress=False).flat()[0]))


def _batchnorm(net: nn.Module, seed: int, affine: bool = True) -> nn.Module:
    """`net` with every instance norm replaced by a BatchNorm2d (perturbed affine parameters)."""
    for i, m in enumerate(net):
        if isinstance(m, nn.GroupNorm):
            net[i] = nn.BatchNorm2d(m.num_channels, affine=affine).double()
    return _perturb_norms(net, seed)


@pytest.mark.parametrize(
    ("make", "size", "mask_names"),
    [
        (lambda: _batchnorm(convnet3(depth=1), 5), 12, None),
        (lambda: _batchnorm(convnet3(depth=2), 6), 12, None),
        (lambda: _batchnorm(convnet3(depth=3), 7), 12, ["0.weight", "4.weight", "13.weight"]),
        (lambda: _batchnorm(convnet3(depth=2, width=4, size=8), 8, affine=False), 8, None),
        (lambda: mixed(), 12, None),  # train-mode BatchNorm between instance norms, max pooling
        (lambda: _batchnorm(mixed(), 9), 12, ["4.weight", "15.weight"]),
    ],
    ids=["depth1", "depth2", "depth3_masked", "8x8_no_affine", "mixed", "mixed_bn_masked"],
)
def test_train_mode_batchnorm_diagonal_equals_dense_diagonal(make, size, mask_names):
    """bn='batch': batch statistics couple the samples; the structured route stays exact."""
    net = make()
    data = _data(size=size)
    before = copy.deepcopy(net.state_dict())
    mask = random_mask(net, mask_names, keep=0.5, seed=3) if mask_names else None
    H = Hessian(net, data, bn="batch", mask=mask)
    diag = diagonal(H, progress=False)
    assert diag.route == "structured" and diag.exact and diag.products == 0
    ref_net = apply_mask(net, mask) if mask else net
    expected = torch.diagonal(dense_hessian(ref_net, data, train=True))
    if mask:
        expected = expected[flat_mask(net, mask)]
    torch.testing.assert_close(diag.flat(), expected, rtol=1e-9, atol=1e-12)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # running stats too


def test_train_mode_batchnorm_in_coordinate_steps_and_selection(monkeypatch):
    """One coordinate per step gives the same diagonal; a selection is the matching block."""
    net = _batchnorm(convnet3(depth=3), 4)
    data = _data(n=7)
    ref = diagonal(Hessian(net, data, bn="batch"), progress=False)
    monkeypatch.setattr(hessian_diag_early, "_BUDGET", 1)
    small = diagonal(Hessian(net, data, bn="batch"), progress=False)
    torch.testing.assert_close(_flat(small), _flat(ref), rtol=1e-12, atol=1e-14)
    H = Hessian(net, data, bn="batch", select=r"(4|5|13)\..*")
    part = diagonal(H, progress=False)
    expected = torch.diagonal(dense_hessian(net, data, names=list(H.names), train=True))
    torch.testing.assert_close(_flat(part), expected, rtol=1e-9, atol=1e-12)
    assert float(part.values["4.bias"].abs().max()) == 0  # a bias right before BatchNorm
