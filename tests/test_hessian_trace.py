"""Trace estimators (stratified Hutchinson, XTrace, Hutch++, Hutchinson): unbiased, with standard
errors that match the spread over seeds, on dense matrices with known spectra and on a tiny
model's dense Hessian (and its per-chunk Hessians)."""

from __future__ import annotations

import math

import pytest
import torch
from hessian_helpers import cnn, dense_hessian, tiny_data

from lmc_toolkit.hessian import Hessian, estimate_trace, trace
from lmc_toolkit.hessian.trace_estimators import TRACE_METHODS


def hessian_like(n: int = 200, seed: int = 0) -> tuple[torch.Tensor, float]:
    """A symmetric n × n matrix shaped like a trained network's Hessian: nine outliers over an
    indefinite bulk, in a random eigenbasis; and its trace."""
    g = torch.Generator().manual_seed(seed)
    outliers = torch.tensor([40.0, 25, 18, 12, 9, 7, 5, 4, 3], dtype=torch.float64)
    bulk = 0.5 * torch.randn(n - len(outliers), generator=g, dtype=torch.float64)
    evals = torch.cat([outliers, bulk])
    basis = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64)).Q
    return (basis * evals) @ basis.T, float(evals.sum())


def chunked(A: torch.Tensor, chunks: int = 4, seed: int = 1) -> list[torch.Tensor]:
    """`chunks` symmetric matrices A_c that sum to A: shares of A plus zero-sum symmetric noise,
    like the Hessians of batches of the same data (weighted by their share of it)."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(chunks, *A.shape, generator=g, dtype=A.dtype) * 0.01
    noise = noise + noise.transpose(1, 2)
    noise = noise - noise.mean(0)
    return [A / chunks + e for e in noise]


def splitter(parts: list[torch.Tensor]):
    return lambda V: torch.stack([a @ v for a, v in zip(parts, V, strict=True)])


def over_seeds(A: torch.Tensor, probes: int, method: str, seeds: int, parts=None):
    """Means and reported standard errors of `seeds` independent estimates."""
    split = None if parts is None else splitter(parts)
    strata = 1 if parts is None else len(parts)
    ests = [
        estimate_trace(
            lambda v: A @ v,
            A.shape[0],
            probes,
            method,
            seed,
            progress=False,
            split=split,
            strata=strata,
        )
        for seed in range(seeds)
    ]
    return (
        torch.tensor([e.mean for e in ests], dtype=torch.float64),
        torch.tensor([e.stderr for e in ests], dtype=torch.float64),
    )


@pytest.fixture(scope="module")
def spread():
    """For each method at 30 products: (means, stderrs) over 400 seeds on `hessian_like`."""
    A, exact = hessian_like()
    runs = {m: over_seeds(A, 30, m, 400) for m in ("xtrace", "hutch++", "hutchinson")}
    runs["stratified"] = over_seeds(A, 30, "stratified", 400, parts=chunked(A))
    return exact, runs


METHODS = ["stratified", "xtrace", "hutch++", "hutchinson"]


@pytest.mark.parametrize("method", METHODS)
def test_estimators_are_unbiased(spread, method):
    exact, runs = spread
    means, _ = runs[method]
    error_of_average = float(means.std()) / math.sqrt(len(means))
    assert abs(float(means.mean()) - exact) <= 3 * error_of_average, (means.mean(), exact)


@pytest.mark.parametrize("method", METHODS)
def test_reported_stderr_matches_the_spread_over_seeds(spread, method):
    """The typical reported error (root mean square over seeds) is within 15 % of the standard
    deviation of the estimates (the sampling error of that deviation is ~4 % at 400 seeds)."""
    _, runs = spread
    means, stderrs = runs[method]
    reported = float(stderrs.pow(2).mean().sqrt())
    assert 0.85 <= reported / float(means.std()) <= 1.15, (reported, float(means.std()))


def off_diagonal_square(A: torch.Tensor) -> float:
    return float(A.pow(2).sum() - A.diagonal().pow(2).sum())


def test_error_at_equal_products(spread):
    """XTrace beats Hutch++, which beats Hutchinson; the stratified deviation is the one its
    variance formula gives, 2·Σ_c‖A_c‖²_off / probes, here about half of Hutchinson's
    (2·‖A‖²_off / probes), since four strata share the curvature."""
    _, runs = spread
    sd = {m: float(runs[m][0].std()) for m in runs}
    assert sd["xtrace"] < 0.8 * sd["hutch++"] < 0.8 * sd["hutchinson"], sd
    A, _ = hessian_like()
    for method, parts in (("hutchinson", [A]), ("stratified", chunked(A))):
        predicted = math.sqrt(2 * sum(off_diagonal_square(a) for a in parts) / 30)
        assert 0.9 <= sd[method] / predicted <= 1.1, (method, sd[method], predicted)
    assert sd["stratified"] < 0.6 * sd["hutchinson"], sd


def test_xtrace_samples_are_the_leave_one_out_estimates():
    """Estimate i is Hutch++ with the sketch of the other probes, recomputed here directly."""
    A, _ = hessian_like(60, seed=3)
    est = estimate_trace(lambda v: A @ v, 60, 10, "xtrace", seed=5, progress=False)
    g = torch.Generator().manual_seed(5)
    omega = (torch.randint(0, 2, (5, 60), generator=g, dtype=torch.int8) * 2 - 1).double()
    for i in range(5):
        others = torch.cat([omega[:i], omega[i + 1 :]])
        Q = torch.linalg.qr(A @ others.T).Q
        r = omega[i] - Q @ (Q.T @ omega[i])
        expected = torch.trace(Q.T @ A @ Q) + r @ A @ r
        assert math.isclose(float(est.samples[i]), float(expected), rel_tol=1e-9)
    assert math.isclose(est.mean, float(est.samples.mean()), rel_tol=1e-12)
    assert est.products == 10


@pytest.fixture(scope="module")
def model_case(digits_train):
    """A tiny instance-norm CNN, its operator and its dense Hessian."""
    data = tiny_data(digits_train, 40)
    net = cnn(norm="gn", seed=1)
    return Hessian(net, data), dense_hessian(net, data), net, data


@pytest.fixture(scope="module")
def chunk_hessians(model_case):
    """The dense Hessians of the four 10-image chunks, each weighted by its share (1/4)."""
    _, _, net, data = model_case
    return [dense_hessian(net, data[i : i + 10]) / 4 for i in range(0, 40, 10)]


@pytest.mark.parametrize("method", ["auto", "stratified", "xtrace", "hutch++", "hutchinson"])
def test_operator_trace_equals_the_dense_estimate_with_the_same_probes(
    model_case, chunk_hessians, method
):
    """trace(H) draws the same probes as the dense estimate, so both agree to float precision,
    and the estimate is within 3 standard errors of the dense Hessian's trace."""
    H, dense, _, _ = model_case
    est = trace(H, probes=40, method=method, seed=2, progress=False)
    expected = "stratified" if method == "auto" else method
    ref = estimate_trace(
        lambda v: dense @ v,
        H.dim,
        40,
        expected,
        2,
        progress=False,
        split=splitter(chunk_hessians),
        strata=4,
    )
    assert est.method == ref.method == expected
    assert est.products == 40 and est.meta["dim"] == H.dim
    assert math.isclose(est.mean, ref.mean, rel_tol=1e-8)
    assert math.isclose(est.stderr, ref.stderr, rel_tol=1e-6)
    exact = float(torch.trace(dense))
    assert abs(est.mean - exact) <= 3 * est.stderr, (est.mean, exact, est.stderr)


@pytest.mark.parametrize("method", ["stratified", "xtrace"])
def test_on_the_dense_hessian_unbiased_and_calibrated(model_case, chunk_hessians, method):
    _, dense, _, _ = model_case
    torch.testing.assert_close(sum(chunk_hessians), dense)  # the chunks add up to H
    parts = chunk_hessians if method == "stratified" else None
    means, stderrs = over_seeds(dense, 24, method, 300, parts)
    exact = float(torch.trace(dense))
    assert abs(float(means.mean()) - exact) <= 3 * float(means.std()) / math.sqrt(len(means))
    reported = float(stderrs.pow(2).mean().sqrt())
    assert 0.85 <= reported / float(means.std()) <= 1.15, (reported, float(means.std()))


def test_same_seed_same_estimate(model_case):
    H, _, _, _ = model_case
    a = trace(H, probes=12, seed=7, progress=False)
    b = trace(H, probes=12, seed=7, progress=False)
    assert a.mean == b.mean and a.stderr == b.stderr
    assert torch.equal(a.samples, b.samples)


def test_low_rank_operator_gives_the_exact_trace():
    """Sketches of an operator of rank r < probes // 2 span its range: exact, with error 0."""
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(50, 4, generator=g, dtype=torch.float64)).Q
    A = (basis * torch.tensor([3.0, 2.0, -1.0, 0.5], dtype=torch.float64)) @ basis.T
    est = estimate_trace(lambda v: A @ v, 50, 20, "xtrace", progress=False)
    assert math.isclose(est.mean, 4.5, rel_tol=1e-10)
    assert est.stderr == 0.0 and est.meta["rank"] == 4
    assert est.products == 10 + 4


def test_more_probes_than_twice_the_dimension_is_exact(model_case):
    _, dense, net, data = model_case
    small = Hessian(net, data, select="5.bias")  # 10 coordinates, rank 9
    est = trace(small, probes=24, method="xtrace", progress=False)
    exact = float(torch.trace(dense[-10:, -10:]))
    assert math.isclose(est.mean, exact, rel_tol=1e-9) and est.stderr == 0.0


def test_odd_probes_use_pairs_and_auto_falls_back_without_strata(model_case):
    H, _, net, data = model_case
    assert trace(H, probes=9, method="xtrace", progress=False).products == 8
    one = Hessian(net, data[:8])  # 8 images: one stratum of 10
    assert trace(one, probes=6, progress=False).method == "xtrace"
    few = trace(one, probes=3, progress=False)
    assert few.method == "hutchinson" and few.products == 3
    est = trace(H, probes=3, stratum=16, progress=False)
    assert est.method == "stratified" and est.meta["strata"] == 3 and est.products == 3


def test_stratified_refuses_batch_statistics(digits_train):
    data = tiny_data(digits_train, 24)
    H = Hessian(cnn(norm="bn"), data, bn="batch", batch_size=24)
    assert trace(H, probes=4, progress=False).method == "xtrace"  # one batch: no strata
    with pytest.raises(ValueError, match="one batch"):
        trace(H, probes=4, method="stratified")
    with pytest.raises(ValueError, match="change the function"):
        H.hvp_chunks(torch.zeros(3, H.dim), batch_size=8)


def test_hvp_chunks_are_the_weighted_chunk_hessians(model_case, chunk_hessians):
    H, _, net, data = model_case
    V = torch.randn(4, H.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = torch.stack([a @ v for a, v in zip(chunk_hessians, V, strict=True)])
    torch.testing.assert_close(H.hvp_chunks(V, batch_size=10), expected)
    fresh = Hessian(net, data, hvp_method="fresh")  # a double backward per chunk and product
    torch.testing.assert_close(fresh.hvp_chunks(V, batch_size=10), expected)
    torch.testing.assert_close(H.hvp_chunks(V[:1])[0], sum(chunk_hessians) @ V[0])  # one chunk
    assert H.chunk_count(10) == 4 and H.chunk_count(15) == 3
    with pytest.raises(ValueError, match="one per chunk"):
        H.hvp_chunks(V, batch_size=20)


def test_bad_arguments(model_case):
    H, _, _, _ = model_case
    for probes in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="probes"):
            trace(H, probes=probes)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="xtrace needs probes ≥ 4"):
        trace(H, probes=3, method="xtrace")
    for stratum in (0, 2.0, True):
        with pytest.raises(ValueError, match="stratum"):
            trace(H, stratum=stratum)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=str(TRACE_METHODS).replace("(", r"\(")[:20]):
        trace(H, method="hutch")
    with pytest.raises(TypeError, match="cannot use a str as a linear map"):
        trace("H")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kw",
    [{}, {"select": "0.weight"}, {"batch_size": 15}, {"mask": {"5.weight": "half"}}],
    ids=["all", "select", "chunks", "mask"],
)
def test_hvp_many_equals_one_product_per_row(digits_train, kw):
    net = cnn(norm="gn", seed=1)
    if "mask" in kw:  # keep every other weight of the last layer
        w = dict(net.named_parameters())["5.weight"]
        kw = {"mask": {"5.weight": torch.arange(w.numel()).reshape(w.shape) % 2 == 0}}
    H = Hessian(net, tiny_data(digits_train, 40), **kw)
    V = torch.randn(5, H.dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    before = H.products
    many = H.hvp_many(V, block=2)
    assert H.products - before == 5
    torch.testing.assert_close(many, torch.stack([H.hvp(v) for v in V]), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="block of vectors"):
        H.hvp_many(V[0])
    with pytest.raises(ValueError, match="block"):
        H.hvp_many(V, block=0)


def test_hvp_many_under_batch_statistics_loops(digits_train):
    H = Hessian(cnn(norm="bn"), tiny_data(digits_train, 24), bn="batch", batch_size=24)
    V = torch.randn(3, H.dim, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    torch.testing.assert_close(H.hvp_many(V), torch.stack([H.hvp(v) for v in V]))


@pytest.mark.parametrize("method", ["xtrace", "hutch++", "hutchinson"])
def test_batched_products_give_the_same_estimate(model_case, method):
    """Batching (the default on CUDA) multiplies the same probes, so the estimate is the same."""
    H, _, _, _ = model_case
    a = trace(H, probes=40, method=method, seed=3, progress=False, batch=False)
    b = trace(H, probes=40, method=method, seed=3, progress=False, batch=True)
    assert a.products == b.products == 40
    assert math.isclose(a.mean, b.mean, rel_tol=1e-9) and math.isclose(
        a.stderr, b.stderr, rel_tol=1e-7
    )
