"""The Hessian diagonal: exact routes against dense Hessians and BackPACK, Hutchinson's estimate."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from hessian_helpers import (
    apply_mask,
    cnn,
    dense_hessian,
    flat_mask,
    mlp,
    random_mask,
    tiny_data,
    tiny_resnet,
)
from torch import nn

from lmc_toolkit import data as D
from lmc_toolkit import models
from lmc_toolkit.hessian import Hessian, diagonal
from lmc_toolkit.hessian.diagonal_estimators import is_piecewise_linear


@pytest.fixture(scope="module")
def data(digits_train):
    return tiny_data(digits_train, 40)


def _flat(diag) -> torch.Tensor:
    return torch.cat([v.reshape(-1) for v in diag.values.values()])


@pytest.mark.parametrize(
    ("make", "route"),
    [
        (lambda: mlp(), "ggn"),
        (lambda: cnn(norm="none"), "ggn"),
        (lambda: cnn(norm="bn"), "ggn"),  # eval-mode BatchNorm is affine: still exact
        (lambda: cnn(norm="gn"), "structured"),  # instance norm: the GGN is not the Hessian
        (tiny_resnet, "ggn"),  # residual sums, empty shortcuts: each weight still enters linearly
    ],
)
def test_exact_diagonal_equals_dense_diagonal(data, make, route):
    net = make()
    H = Hessian(net, data, batch_size=16)
    diag = diagonal(H, progress=False)
    assert diag.route == route and diag.exact
    expected = torch.diagonal(dense_hessian(net, data))
    torch.testing.assert_close(_flat(diag), expected, rtol=1e-9, atol=1e-12)
    assert diag.products == (H.dim if route == "onehot" else 0)


def test_ggn_is_flagged_approximate_under_instance_norm(data):
    net = cnn(norm="gn")
    H = Hessian(net, data)
    assert not is_piecewise_linear(H)
    ggn = diagonal(H, method="ggn", progress=False)
    assert not ggn.exact
    exact = torch.diagonal(dense_hessian(net, data))
    assert not torch.allclose(_flat(ggn), exact, rtol=1e-3)
    # the layers after the last normalization are piecewise linear: there the GGN is exact
    torch.testing.assert_close(ggn.values["5.weight"].reshape(-1), exact[-90:-10])


def test_batch_mode_batchnorm_takes_the_structured_route_and_agrees_with_products(data):
    net = cnn(norm="bn")
    H = Hessian(net, data, bn="batch", batch_size=len(data))
    diag = diagonal(H, progress=False)
    assert diag.route == "structured" and diag.products == 0
    torch.testing.assert_close(_flat(diag), torch.diagonal(H.dense()))
    onehot = diagonal(H, method="onehot", progress=False)
    torch.testing.assert_close(_flat(onehot), _flat(diag))


def test_masked_diagonal_and_summary_leave_pruned_coordinates_out(data):
    net = mlp()
    mask = random_mask(net, ["1.weight", "3.weight"], keep=0.4, seed=5)
    keep = flat_mask(net, mask)
    pruned = apply_mask(net, mask)
    diag = diagonal(Hessian(net, data, mask=mask), progress=False)
    expected = torch.diagonal(dense_hessian(pruned, data))[keep]
    torch.testing.assert_close(diag.flat(), expected, rtol=1e-9, atol=1e-12)
    assert all(float(v[~diag.kept[k]].abs().sum()) == 0 for k, v in diag.values.items())
    s = diag.summary()
    assert s["count"] == int(keep.sum())
    assert math.isclose(s["mean"], float(expected.mean()), rel_tol=1e-9)
    assert math.isclose(s["sum"], float(expected.sum()), rel_tol=1e-9)
    assert math.isclose(s["min"], float(expected.min()), rel_tol=1e-9)
    assert math.isclose(s["max"], float(expected.max()), rel_tol=1e-9)
    assert set(diag.per_layer()) == {"1.weight", "1.bias", "3.weight", "3.bias"}


def test_selected_diagonal(data):
    net = cnn(norm="bn")
    diag = diagonal(Hessian(net, data, select=r"1\..*"), progress=False)
    names = ["1.weight", "1.bias"]
    torch.testing.assert_close(
        _flat(diag), torch.diagonal(dense_hessian(net, data, names=names)), rtol=1e-9, atol=1e-12
    )


def test_hutchinson_diagonal_within_three_standard_errors(data):
    net = cnn(norm="gn")
    H = Hessian(net, data)
    est = diagonal(H, method="hutchinson", probes=200, seed=1, progress=False)
    exact = torch.diagonal(dense_hessian(net, data))
    err = torch.cat([v.reshape(-1) for v in est.stderr.values()])
    within = (_flat(est) - exact).abs() <= 3 * err + 1e-12
    assert est.products == 200 and not est.exact
    assert within.double().mean() >= 0.97, within.double().mean()
    with pytest.raises(ValueError, match="probes"):
        diagonal(H, method="hutchinson", probes=0)


def test_prefix_of_the_one_hot_route(data):
    net = cnn(norm="gn")
    H = Hessian(net, data)
    diag = diagonal(H, method="onehot", limit=5, progress=False)
    flat = _flat(diag)
    assert diag.products == 5 and bool(flat[5:].isnan().all())
    torch.testing.assert_close(flat[:5], torch.diagonal(dense_hessian(net, data))[:5])


def test_exact_diagonal_agrees_with_backpack(digits_train):
    backpack = pytest.importorskip("backpack")
    from backpack.extensions import DiagHessian

    d = digits_train[:64]
    net = models.build("mlp", 10, d.in_shape, init_seed=3, hidden=(16,))
    ours = diagonal(Hessian(net, d), progress=False)
    assert ours.route == "ggn"
    ref = backpack.extend(copy.deepcopy(net))
    loss = backpack.extend(nn.CrossEntropyLoss())(ref(d.x), d.y)
    with backpack.backpack(DiagHessian()):
        loss.backward()
    for (name, p), theirs in zip(ref.named_parameters(), ours.values.values(), strict=True):
        torch.testing.assert_close(theirs, p.diag_h, rtol=1e-4, atol=1e-7, msg=name)


def test_ggn_route_on_convnet3_layers(digits_train):
    """The toolkit's convnet3 (float32): the GGN diagonal of its last layer is exact."""
    d: D.Dataset = digits_train[:32]
    net = models.build("convnet3", 10, d.in_shape, width=4, depth=1)
    H = Hessian(net, d, select="5.weight")
    ggn = diagonal(H, method="ggn", progress=False)
    exact = diagonal(H, method="onehot", progress=False)
    torch.testing.assert_close(ggn.flat(), exact.flat(), rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="method must be"):
        diagonal(H, method="bfgs")
