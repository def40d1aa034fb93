"""`GGN` and `EmpiricalFisher` against dense matrices built from `torch.func.jacrev`, the scipy
`LinearOperator` wrapper against the operator, and the estimators on the new operators."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.sparse.linalg import eigsh
from torch import nn
from torch.func import functional_call, jacrev

import lmc_toolkit as L
from lmc_toolkit.hessian import diagonal, top_eigenvalues, trace


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 1, 3), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 4, 4)).double()


def tiny_data(n: int = 12) -> L.Dataset:
    gen = torch.Generator().manual_seed(1)
    return L.Dataset(
        x=torch.randn(n, 1, 6, 6, generator=gen, dtype=torch.float64),
        y=torch.arange(n) % 4,
        classes=("a", "b", "c", "d"),
        name="tiny",
    )


def jacobians(net: nn.Module, data: L.Dataset, names, per_sample_loss: bool) -> torch.Tensor:
    """Rows: d(output)/d(selected params), flattened: the logits (N·C rows) or the per-image
    losses (N rows)."""
    params = {k: v.detach() for k, v in net.named_parameters()}
    chosen = {k: params[k] for k in names}

    def outputs(p):
        z = functional_call(net, {**params, **p}, (data.x,))
        return F.cross_entropy(z, data.y, reduction="none") if per_sample_loss else z.reshape(-1)

    jac = jacrev(outputs)(chosen)
    return torch.cat([jac[k].reshape(jac[k].shape[0], -1) for k in names], dim=1)


def dense_ggn(net: nn.Module, data: L.Dataset, names) -> torch.Tensor:
    n = len(data)
    J = jacobians(net, data, names, False).view(n, -1, sum(p.numel() for p in _sel(net, names)))
    with torch.no_grad():
        p = torch.softmax(net(data.x), -1)
    M = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    return torch.einsum("ncp,ncd,ndq->pq", J, M, J) / n


def dense_fisher(net: nn.Module, data: L.Dataset, names) -> torch.Tensor:
    G = jacobians(net, data, names, True)
    return G.T @ G / len(data)


def _sel(net, names):
    named = dict(net.named_parameters())
    return [named[k] for k in names]


@pytest.mark.parametrize("batch_size", [5, 12])
@pytest.mark.parametrize("hvp_method", ["reuse", "fresh"])
def test_ggn_and_fisher_equal_their_dense_matrices(batch_size, hvp_method):
    net, data = tiny_net(), tiny_data()
    names = [k for k, _ in net.named_parameters()]
    kw = dict(batch_size=batch_size, hvp_method=hvp_method)
    G = L.GGN(net, data, **kw).dense()
    Fm = L.EmpiricalFisher(net, data, **kw).dense()
    torch.testing.assert_close(G, dense_ggn(net, data, names), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(Fm, dense_fisher(net, data, names), rtol=1e-10, atol=1e-12)
    # positive semi-definite, unlike the Hessian of this tanh network
    assert torch.linalg.eigvalsh(G).min() > -1e-12 and torch.linalg.eigvalsh(Fm).min() > -1e-12
    assert torch.linalg.eigvalsh(L.Hessian(net, data).dense()).min() < -1e-6


def norm_net() -> nn.Module:
    """tiny_net with an instance norm (GroupNorm(1, 1)) after the convolution, as convnet3 has."""
    torch.manual_seed(0)
    layers = [nn.Conv2d(1, 1, 3), nn.GroupNorm(1, 1), nn.Tanh(), nn.Flatten(), nn.Linear(16, 4)]
    return nn.Sequential(*layers).double()


@pytest.mark.parametrize(("make", "route"), [(tiny_net, "jvp"), (norm_net, "double-vjp")])
def test_both_routes_to_jv_give_the_dense_matrices(make, route):
    net, data = make(), tiny_data()
    names = [k for k, _ in net.named_parameters()]
    G, Fm = L.GGN(net, data, batch_size=5), L.EmpiricalFisher(net, data, batch_size=5)
    assert G.jv_route == Fm.jv_route == route
    torch.testing.assert_close(G.dense(), dense_ggn(net, data, names), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(Fm.dense(), dense_fisher(net, data, names), rtol=1e-10, atol=1e-12)
    bn = nn.Sequential(nn.Flatten(), nn.Linear(36, 4), nn.BatchNorm1d(4)).double()
    assert L.GGN(bn, data, bn="batch", batch_size=len(data)).jv_route == "double-vjp"
    assert L.GGN(bn, data).jv_route == "jvp"  # eval-mode BatchNorm is a fixed affine map


def test_masks_and_selection_take_the_submatrix():
    net, data = tiny_net(), tiny_data()
    names = [k for k, _ in net.named_parameters()]
    mask = {
        names[0]: torch.rand(net[0].weight.shape, generator=torch.Generator().manual_seed(2)) > 0.5
    }
    G = L.GGN(net, data, mask=mask).dense()
    masked = tiny_net()
    with torch.no_grad():
        masked[0].weight.mul_(mask[names[0]])
    full = dense_ggn(masked, data, names)
    keep = torch.cat(
        [mask[names[0]].reshape(-1)]
        + [torch.ones(p.numel(), dtype=torch.bool) for p in _sel(net, names[1:])]
    )
    torch.testing.assert_close(G, full[keep][:, keep], rtol=1e-10, atol=1e-12)
    last = L.EmpiricalFisher(net, data, select=names[-2:]).dense()
    torch.testing.assert_close(last, dense_fisher(net, data, names[-2:]), rtol=1e-10, atol=1e-12)


def test_the_linear_operator_is_the_operator():
    net, data = tiny_net(), tiny_data()
    for op in (L.Hessian(net, data), L.GGN(net, data), L.EmpiricalFisher(net, data)):
        A = op.as_linear_operator()
        assert A.shape == (op.dim, op.dim) and A.dtype == np.float64
        v = np.random.default_rng(0).standard_normal(op.dim)
        expected = op.hvp(torch.from_numpy(v)).numpy()
        np.testing.assert_allclose(A @ v, expected, rtol=1e-12)
        np.testing.assert_allclose(A.rmatvec(v), expected, rtol=1e-12)
        V = np.random.default_rng(1).standard_normal((op.dim, 3))
        np.testing.assert_allclose(A @ V, op.dense().numpy() @ V, rtol=1e-9, atol=1e-12)
        top = eigsh(A, k=1, which="LA", return_eigenvectors=False)[0]
        assert top == pytest.approx(torch.linalg.eigvalsh(op.dense())[-1].item(), rel=1e-8)


def test_the_estimators_run_on_the_new_operators():
    net, data = tiny_net(), tiny_data()
    for op in (L.GGN(net, data, batch_size=4), L.EmpiricalFisher(net, data, batch_size=4)):
        dense = op.dense()
        eig = torch.linalg.eigvalsh(dense)
        top = top_eigenvalues(op, k=2, progress=False)
        np.testing.assert_allclose(top.values.numpy(), eig[-2:].flip(0).numpy(), rtol=1e-6)
        est = trace(op, probes=200, seed=0, progress=False)
        assert abs(est.mean - float(dense.trace())) < 4 * est.stderr + 1e-9
        dg = diagonal(op, progress=False)
        flat = op.flatten(dg.values)
        torch.testing.assert_close(flat, dense.diagonal(), rtol=1e-8, atol=1e-12)
        assert dg.exact and dg.meta["curvature"] == op.curvature
        with pytest.raises(ValueError, match="structured"):
            diagonal(op, method="structured", progress=False)


def test_only_the_cross_entropy_is_implemented():
    with pytest.raises(ValueError, match="'mse'"):
        L.GGN(tiny_net(), tiny_data(), loss="mse")
