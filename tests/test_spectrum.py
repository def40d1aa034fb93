"""Top eigenvalues, trace and spectral density against dense Hessians."""

from __future__ import annotations

import math

import pytest
import torch
from hessian_helpers import cnn, dense_hessian, mlp, tiny_data

from lmc_toolkit.hessian import Hessian, density, top_eigenvalues, trace


@pytest.fixture(scope="module")
def data(digits_train):
    return tiny_data(digits_train, 40)


@pytest.fixture(scope="module")
def case(data):
    """A tiny instance-norm CNN, its operator and its dense eigenvalues."""
    net = cnn(norm="gn", seed=1)
    dense = dense_hessian(net, data)
    return net, Hessian(net, data), torch.linalg.eigvalsh(dense), dense


@pytest.mark.parametrize("which", ["LA", "LM", "SA"])
def test_lanczos_top_k_matches_dense_eigenvalues(case, which):
    _, H, evals, dense = case
    key = {"LA": -evals, "SA": evals, "LM": -evals.abs()}[which]
    expected = evals[torch.argsort(key)][:3]
    eig = top_eigenvalues(H, k=3, which=which, tol=1e-8, progress=False)
    assert eig.converged
    rel = ((eig.values - expected).abs() / expected.abs()).max()
    assert rel <= 1e-6, (eig.values, expected)
    for lam, v, r in zip(eig.values, eig.vectors, eig.residuals, strict=True):
        true = (dense @ v - lam * v).norm()
        assert true <= max(10 * float(r), 1e-10)  # the reported residual is the true one
    assert eig.products == eig.iterations < H.dim


def test_sharpness_is_largest_algebraic_not_largest_magnitude(case):
    _, H, evals, _ = case
    la = top_eigenvalues(H, which="LA", progress=False).top
    lm = top_eigenvalues(H, which="LM", progress=False).top
    assert math.isclose(la, float(evals.max()), rel_tol=1e-6)
    assert math.isclose(abs(lm), float(evals.abs().max()), rel_tol=1e-6)


def test_power_iteration_with_deflation(case):
    _, H, evals, _ = case
    expected = evals[torch.argsort(-evals.abs())][:2]
    eig = top_eigenvalues(
        H, k=2, method="power", which="LM", tol=1e-6, max_iter=500, progress=False
    )
    torch.testing.assert_close(eig.values, expected, rtol=1e-2, atol=0)
    with pytest.raises(ValueError, match="which='LM'"):
        top_eigenvalues(H, method="power", which="LA")


def test_top_eigenvalues_on_an_mlp(data):
    net = mlp(seed=2)
    H = Hessian(net, data)
    evals = torch.linalg.eigvalsh(dense_hessian(net, data))
    eig = top_eigenvalues(H, k=5, progress=False)
    expected = evals.flip(0)[:5]
    assert ((eig.values - expected).abs() / expected.abs()).max() <= 1e-6


def test_invariant_subspace_restarts(data):
    """Operators of dimension < k steps: Lanczos exhausts the space and still returns exact values."""
    net = mlp()
    H = Hessian(net, data, select="3.bias")  # 10 × 10, rank 9 (softmax shift invariance)
    dense = dense_hessian(net, data, names=["3.bias"])
    evals = torch.linalg.eigvalsh(dense).flip(0)
    eig = top_eigenvalues(H, k=10, progress=False)
    torch.testing.assert_close(eig.values, evals, rtol=1e-8, atol=1e-10)


def test_bad_eigen_arguments(case):
    _, H, _, _ = case
    with pytest.raises(ValueError, match="exceeds the dimension"):
        top_eigenvalues(H, k=H.dim + 1)
    for kw in ({"k": 0}, {"method": "arnoldi"}, {"which": "BE"}, {"tol": 0.0}):
        with pytest.raises(ValueError):
            top_eigenvalues(H, **kw)
    with pytest.raises(TypeError, match="cannot use a str as a linear map"):
        top_eigenvalues("H")  # type: ignore[arg-type]
    assert top_eigenvalues(torch.eye(3), progress=False).top == pytest.approx(1.0)


@pytest.mark.parametrize("method", ["hutchinson", "hutch++"])
def test_trace_within_three_standard_errors(case, method):
    _, H, evals, _ = case
    est = trace(H, probes=60, method=method, seed=3, progress=False)
    exact = float(evals.sum())
    assert est.products == 60
    assert est.stderr > 0
    assert abs(est.mean - exact) <= 3 * est.stderr, (est.mean, exact, est.stderr)


def test_hutchpp_has_smaller_error_than_hutchinson(case):
    """Same products: Hutch++ removes the variance of the top eigenvalues."""
    _, H, _, _ = case
    a = trace(H, probes=60, method="hutchinson", seed=4, progress=False)
    b = trace(H, probes=60, method="hutch++", seed=4, progress=False)
    assert b.stderr < a.stderr


def test_trace_rejects_bad_probes(case):
    _, H, _, _ = case
    for probes in (0, -3, 2.5):
        with pytest.raises(ValueError, match="probes"):
            trace(H, probes=probes)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="probes ≥ 3"):
        trace(H, probes=2, method="hutch++")


def test_density_full_krylov_nodes_are_eigenvalues(case):
    _, H, evals, _ = case
    spec = density(H, runs=2, steps=H.dim, seed=0, progress=False)
    assert math.isclose(spec.integral(), 1.0, rel_tol=1e-9)
    torch.testing.assert_close(spec.weights.sum(1), torch.ones(2, dtype=torch.float64))
    for node, weight in zip(spec.nodes.flatten(), spec.weights.flatten(), strict=True):
        if weight > 1e-8:
            assert (evals - node).abs().min() <= 1e-6 * evals.abs().max()


def test_density_mass_sits_on_the_spectrum(case):
    _, H, evals, dense = case
    spec = density(H, runs=16, steps=12, seed=1, progress=False)
    assert math.isclose(spec.integral(), 1.0, rel_tol=1e-9)
    lo, hi = float(evals.min()), float(evals.max())
    outside = (spec.grid < lo - 4 * spec.sigma) | (spec.grid > hi + 4 * spec.sigma)
    mass_outside = torch.trapezoid(spec.density * outside, spec.grid)
    assert mass_outside < 1e-3
    # moments: the quadrature is exact for polynomials of degree < 2·steps, so each run's moment is
    # a Hutchinson sample of tr(H^k)/dim
    for k, exact in ((1, torch.trace(dense)), (2, torch.trace(dense @ dense))):
        per_run = (spec.weights * spec.nodes**k).sum(1)
        err = per_run.std() / math.sqrt(spec.runs)
        assert abs(per_run.mean() - exact / H.dim) <= 3 * err
    with pytest.raises(ValueError, match="runs"):
        density(H, runs=0)


def test_top_eigenvalue_agrees_with_pyhessian_on_convnet3(digits_train):
    pytest.importorskip("pyhessian")
    import copy

    from pyhessian import hessian as pyhessian_operator

    from lmc_toolkit import models

    d = digits_train[:64]
    net = models.build("convnet3", 10, d.in_shape, init_seed=1, width=4, depth=2)
    ours = top_eigenvalues(Hessian(net, d), k=1, which="LM", progress=False)
    ref = pyhessian_operator(
        copy.deepcopy(net), torch.nn.CrossEntropyLoss(), data=(d.x, d.y), cuda=False
    )
    with torch.random.fork_rng():  # PyHessian draws its start vector from the global RNG
        torch.manual_seed(0)
        (theirs,), _ = ref.eigenvalues(top_n=1, tol=1e-3, maxIter=200)
    # power iteration stops when the Rayleigh quotient changes by < 1e-3 (relative)
    assert abs(theirs - ours.top) <= 1e-2 * abs(ours.top), (theirs, ours.top)
    assert ours.converged and float(ours.bounds[0]) <= 1e-6 * abs(ours.top)
