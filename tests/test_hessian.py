"""The Hessian operator against dense Hessians from `torch.func.hessian`."""

from __future__ import annotations

import pytest
import torch
from hessian_helpers import (
    apply_mask,
    cnn,
    dense_hessian,
    finite_difference_hessian,
    flat_mask,
    mlp,
    random_mask,
    tiny_data,
)
from torch import nn

from lmc_toolkit import models
from lmc_toolkit.hessian import Hessian
from lmc_toolkit.hessian.options import select_names


@pytest.fixture(scope="module")
def data(digits_train):
    return tiny_data(digits_train, 40)


def test_hvp_equals_dense_hessian_times_vector(data):
    net = mlp()
    H = Hessian(net, data)
    dense = dense_hessian(net, data)
    v = torch.randn(H.dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert H.dim == dense.shape[0]
    torch.testing.assert_close(H.hvp(v), dense @ v, rtol=1e-10, atol=1e-12)
    assert H.products == 1


@pytest.mark.parametrize("norm", ["none", "gn", "bn"])
def test_dense_operator_equals_torch_func_hessian(data, norm):
    net = cnn(norm=norm)
    torch.testing.assert_close(Hessian(net, data).dense(), dense_hessian(net, data))


def test_batch_weighting_with_unequal_batches(data):
    """40 images in batches of 16, 16 and 8: the mean over images, not over batches."""
    net = cnn(norm="gn")
    dense = dense_hessian(net, data)
    V = torch.randn(
        3, dense.shape[0], generator=torch.Generator().manual_seed(0), dtype=dense.dtype
    )
    for method in ("reuse", "fresh"):
        H = Hessian(net, data, batch_size=16, hvp_method=method)
        torch.testing.assert_close(H.hvp(V), V @ dense)
        assert H.products == 3
    full = torch.nn.functional.cross_entropy(net(data.x), data.y)
    expected = torch.cat([g.reshape(-1) for g in torch.autograd.grad(full, list(net.parameters()))])
    torch.testing.assert_close(Hessian(net, data, batch_size=16).gradient(), expected)


def test_mask_gives_the_kept_coordinate_submatrix(data):
    net = mlp()
    mask = random_mask(net, ["1.weight", "3.weight"], keep=0.3)
    pruned = apply_mask(net, mask)
    keep = flat_mask(net, mask)
    H = Hessian(pruned, data, mask=mask)
    assert H.dim == int(keep.sum())
    torch.testing.assert_close(H.dense(), dense_hessian(pruned, data)[keep][:, keep])
    # an unpruned model is masked by the operator itself: same operator
    torch.testing.assert_close(Hessian(net, data, mask=mask).dense(), H.dense())


def test_select_gives_the_matching_diagonal_block(data):
    net = cnn(norm="bn")
    names = [k for k, _ in net.named_parameters()]
    for select in (["0.weight", "0.bias"], r"1\..*", "5.weight"):
        chosen = select_names(names, select)
        H = Hessian(net, data, select=select)
        assert list(H.names) == chosen
        torch.testing.assert_close(H.dense(), dense_hessian(net, data, names=chosen))


def test_select_and_mask_together(data):
    net = mlp()
    mask = random_mask(net, ["1.weight", "3.weight"], keep=0.5, seed=3)
    H = Hessian(net, data, mask=mask, select="3.weight")
    pruned = apply_mask(net, mask)
    dense = dense_hessian(pruned, data, names=["3.weight"])
    keep = mask["3.weight"].reshape(-1)
    torch.testing.assert_close(H.dense(), dense[keep][:, keep])
    torch.testing.assert_close(
        H.to_params(torch.ones(H.dim, dtype=torch.float64))["3.weight"], mask["3.weight"].double()
    )


def test_bn_policies(data):
    net = cnn(norm="bn")
    H_eval = Hessian(net, data, bn="eval")
    H_batch = Hessian(net, data, bn="batch", batch_size=len(data))
    torch.testing.assert_close(H_eval.dense(), dense_hessian(net, data, train=False))
    batch = H_batch.dense()
    torch.testing.assert_close(batch, finite_difference_hessian(net, data), rtol=1e-6, atol=1e-7)
    assert not torch.allclose(H_eval.dense(), batch)


def test_micro_batching_under_batch_statistics_is_refused(data):
    with pytest.raises(ValueError, match="micro-batching"):
        Hessian(cnn(norm="bn"), data, bn="batch", batch_size=16)
    Hessian(cnn(norm="gn"), data, bn="batch", batch_size=16)  # no BatchNorm: nothing changes


def test_callers_model_is_unchanged(data):
    net = cnn(norm="bn").train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    mask = random_mask(net, ["0.weight"], keep=0.5)
    H = Hessian(net, data, mask=mask, bn="batch", batch_size=len(data))
    H.hvp(torch.ones(H.dim, dtype=torch.float64))
    from lmc_toolkit.hessian import diagonal, top_eigenvalues

    top_eigenvalues(H, k=2, progress=False)
    diagonal(Hessian(net, data, mask=mask), progress=False)
    assert net.training
    assert all(p.requires_grad and p.grad is None for p in net.parameters())
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_bad_input_is_refused(data, digits_train):
    net = mlp()
    other = models.build("mlp", 10, (1, 8, 8), hidden=(5,))
    foreign = {k: torch.ones_like(p, dtype=torch.bool) for k, p in other.named_parameters()}
    with pytest.raises(ValueError, match="shape"):
        Hessian(net, data, mask=foreign)
    with pytest.raises(ValueError, match="lacks"):
        Hessian(net, data, mask={"conv.weight": torch.ones(3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="matches no parameter"):
        Hessian(net, data, select="nope.*")
    with pytest.raises(ValueError, match="bn must be"):
        Hessian(net, data, bn="train")
    with pytest.raises(ValueError, match="loss must be"):
        Hessian(net, data, loss="hinge")
    with pytest.raises(ValueError, match="keeps no coordinate"):
        Hessian(net, data, select="3.bias", mask={"3.bias": torch.zeros(10, dtype=torch.bool)})
    with pytest.raises(ValueError, match="length"):
        Hessian(net, data).hvp(torch.ones(3, dtype=torch.float64))
    with pytest.raises(TypeError):
        Hessian("not a model", data)  # type: ignore[arg-type]
    conv = models.build("convnet3", 10, (1, 28, 28), width=4)
    with pytest.raises(ValueError, match="shape"):
        Hessian(conv, digits_train)
    with pytest.raises(ValueError, match="classes"):
        Hessian(models.build("mlp", 3, (1, 8, 8), hidden=(4,)), digits_train)


def test_runs_on_float32_convnet3(digits_train):
    """The toolkit's own convnet3 in float32: products are symmetric to float precision."""
    net = models.build("convnet3", 10, (1, 8, 8), width=4, depth=2)
    H = Hessian(net, digits_train[:64], batch_size=32)
    g = torch.Generator().manual_seed(0)
    u, v = H.random(g, "gaussian"), H.random(g, "gaussian")
    a, b = float(u @ H.hvp(v)), float(v @ H.hvp(u))
    assert abs(a - b) <= 1e-4 * max(abs(a), 1e-3)
    assert isinstance(net[0], nn.Conv2d)
