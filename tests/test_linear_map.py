"""The estimators on any symmetric linear map (`LinearMap`): dense matrices with known spectra,
scipy operators, functions, curvlinops operators and the toolkit's own operator round-tripped
through `as_linear_operator`; and clear errors for what is not a map."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.sparse.linalg import aslinearoperator
from torch import nn

import lmc_toolkit as L
from lmc_toolkit.hessian import LinearMap, as_operator, density, diagonal, top_eigenvalues, trace


def known_matrix(dim: int = 60, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A symmetric float64 matrix with eigenvalues 10, 9, ..., decaying to small and a few
    negatives, in a random basis, and its eigenvalues (descending)."""
    gen = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
    values = torch.cat(
        [torch.tensor([10.0, 9.0, 8.0, 7.5, 7.0]), torch.linspace(2.0, -0.5, dim - 5)]
    ).double()
    return Q @ torch.diag(values) @ Q.T, values


def forms(A: torch.Tensor):
    """The same matrix as each kind of map the estimators take."""
    yield "torch", A
    yield "numpy", A.numpy()
    yield "scipy", aslinearoperator(A.numpy())
    yield "function", LinearMap(lambda v: A @ v, dim=A.shape[0], dtype=torch.float64)


def double(data: L.Dataset) -> L.Dataset:
    return L.Dataset(x=data.x.double(), y=data.y, classes=data.classes, name=data.name)


@pytest.mark.parametrize("kind", ["torch", "numpy", "scipy", "function"])
def test_top_eigenvalues_on_every_kind_of_map(kind: str) -> None:
    A, values = known_matrix()
    M = dict(forms(A))[kind]
    eig = top_eigenvalues(M, k=5, tol=1e-10, progress=False)
    assert eig.converged
    torch.testing.assert_close(eig.values, values[:5], rtol=1e-9, atol=0)
    residual = A @ eig.vectors.double().T - eig.vectors.double().T * eig.values
    # the reported residuals are the true ‖Av − λv‖, and the bounds hold
    torch.testing.assert_close(residual.norm(dim=0), eig.residuals, rtol=1e-3, atol=1e-9)
    assert bool(((eig.values - values[:5]).abs() <= eig.bounds + 1e-12).all())
    smallest = top_eigenvalues(M, k=1, which="SA", tol=1e-10, progress=False)
    assert smallest.top == pytest.approx(-0.5, rel=1e-8)
    assert eig.meta["dim"] == 60 and eig.products > 0


def test_trace_estimators_on_a_matrix_agree_with_the_exact_trace() -> None:
    A, values = known_matrix(dim=200)
    exact = float(values.sum())
    for method in ("xtrace", "hutch++", "hutchinson"):
        est = trace(A, probes=40, method=method, seed=3, progress=False)
        assert est.products == 40
        assert abs(est.mean - exact) < 4 * est.stderr, (method, est.mean, exact, est.stderr)
    auto = trace(aslinearoperator(A.numpy()), probes=40, seed=3, progress=False)
    assert auto.method == "xtrace"
    # a map of rank 3 is traced exactly by XTrace's sketch of its range
    low = A.new_zeros(200, 200)
    low[:3, :3] = torch.tensor([[2.0, 1.0, 0.0], [1.0, 3.0, 0.0], [0.0, 0.0, -1.0]])
    sharp = trace(low, probes=10, method="xtrace", progress=False)
    assert sharp.mean == pytest.approx(4.0, abs=1e-10) and sharp.stderr == 0.0


def test_diagonal_of_a_map_exact_and_estimated() -> None:
    A, _ = known_matrix(dim=150)
    exact = diagonal(aslinearoperator(A.numpy()), progress=False)
    assert exact.route == "onehot" and exact.exact
    torch.testing.assert_close(exact.flat(), A.diagonal(), rtol=1e-12, atol=1e-12)
    est = diagonal(A, method="hutchinson", probes=400, seed=1, progress=False)
    z = (est.flat() - A.diagonal()) / est.stderr["diagonal"].double()
    assert float(z.abs().max()) < 5 and float(z.abs().mean()) < 1.2


def test_density_of_a_map_integrates_to_one_and_matches_the_first_moment() -> None:
    A, values = known_matrix(dim=120)
    spec = density(A, runs=40, steps=20, seed=2, progress=False)
    assert spec.integral() == pytest.approx(1.0, abs=1e-6)
    # SLQ's first moment is Hutchinson's tr(A)/dim from Rademacher starts: within its noise
    assert spec.moment(1) == pytest.approx(float(values.mean()), abs=0.2)
    assert spec.nodes.max() == pytest.approx(10.0, rel=1e-8)


def test_the_hessian_through_scipy_and_back_gives_the_same_estimates(digits_train) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.Tanh(), nn.Linear(8, 10)).double()
    data = double(digits_train.subset(range(64)))
    H = L.Hessian(net, data)
    wrapped = as_operator(H.as_linear_operator())
    assert isinstance(wrapped, LinearMap) and wrapped.dim == H.dim
    direct = top_eigenvalues(H, k=3, tol=1e-10, progress=False)
    through = top_eigenvalues(wrapped, k=3, tol=1e-10, progress=False)
    torch.testing.assert_close(through.values, direct.values, rtol=1e-9, atol=0)
    exact = float(H.dense().diagonal().sum())
    assert diagonal(wrapped, progress=False).flat().sum() == pytest.approx(exact, rel=1e-10)


def test_a_curvlinops_operator_runs_through_the_estimators(digits_train) -> None:
    curvlinops = pytest.importorskip("curvlinops")
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.Tanh(), nn.Linear(8, 10)).double()
    data = double(digits_train.subset(range(64)))
    x, y = data.x.double(), data.y
    params = [p for p in net.parameters()]
    peer = curvlinops.GGNLinearOperator(net, nn.CrossEntropyLoss(), params, [(x, y)])
    ours = L.GGN(net, data)
    theirs = top_eigenvalues(peer, k=2, tol=1e-10, progress=False)
    mine = top_eigenvalues(ours, k=2, tol=1e-10, progress=False)
    torch.testing.assert_close(theirs.values, mine.values, rtol=1e-8, atol=0)
    dense = ours.dense()
    est = trace(peer, probes=60, method="xtrace", seed=0, progress=False)
    assert abs(est.mean - float(dense.trace())) < 4 * est.stderr + 1e-9
    assert F.cross_entropy(net(x), y).item() > 0  # the operator left the network usable


def test_what_is_not_a_map_is_refused_with_a_reason() -> None:
    with pytest.raises(TypeError, match="cannot use a str as a linear map"):
        top_eigenvalues("H", progress=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="square"):
        trace(torch.ones(3, 4), progress=False)
    with pytest.raises(ValueError, match="2-D"):
        density(torch.ones(3), progress=False)
    with pytest.raises(ValueError, match="needs its dimension"):
        LinearMap(lambda v: v)
    with pytest.raises(ValueError, match="dim must be a positive int, got 0"):
        LinearMap(lambda v: v, dim=0)
    A, _ = known_matrix(dim=10)
    with pytest.raises(ValueError, match="stratified.*has none"):
        trace(A, method="stratified", progress=False)
    with pytest.raises(ValueError, match="plain linear map"):
        diagonal(A, method="structured", progress=False)
    with pytest.raises(ValueError, match="length 10"):
        LinearMap(A).hvp(torch.ones(4, dtype=torch.float64))
    assert math.isfinite(LinearMap(np.eye(10)).dense().sum().item())
