"""The trace of a `Hessian` operator: XTrace, Hutch++ and Hutchinson's estimator, with errors.

- `"hutchinson"`: the mean of zᵀHz over Rademacher probes z; its standard error is the
  samples' standard deviation over √probes.
- `"hutch++"` (Meyer, Musco, Musco and Woodruff, 2021): a third of the products sketch the
  range of H, a third take the trace on that sketch exactly and Hutchinson's estimator runs on
  the complement with the rest, which removes the variance of the large eigenvalues.
- `"xtrace"` (Epperly, Tropp and Webber, 2024): every one of k = probes // 2 probes ω_i is
  both a sketch vector and a test vector. Estimate i takes the trace exactly on the span of
  the other sketches Hω_j (j ≠ i) and Hutchinson's estimator with ω_i on its complement; the
  k estimates are exchangeable and each is unbiased (ω_i is independent of the subspace it is
  tested against). All k leave-one-out subspaces come from one QR factorization of
  Y = HΩ and one block of products HQ, so the cost is 2k products, and the deflated subspace
  is half the products instead of Hutch++'s third. Its standard error is the estimator's own
  (the standard deviation of the k estimates over √k, as the paper proposes); the tests check
  that it matches the spread over seeds on matrices with known spectra. It runs low when k is
  below the number of dominant eigenvalues (by ~30 % at k = 6 for 9 outliers).
- `"stratified"`: Hutchinson's estimator with an independent probe per data chunk
  (`stratum` images each). H = Σ_c w_c·H_c over chunks, so Σ_c z_cᵀ(w_c·H_c)z_c is unbiased
  for tr(H) and, with the chunk products from one double backward per chunk as in `hvp`, costs
  one product. Its variance is 2·Σ_c w_c²·‖H_c‖²_off instead of 2·‖H‖²_off: where chunks
  share their curvature (H_c ≈ H, as for a network's Hessian over batches of the same data)
  that is about 1/chunks of Hutchinson's. Samples are independent, so the standard error is
  the usual one. On `convnet3` over MNIST it cut the standard error several-fold at equal
  products, while deflating the top of the spectrum (Hutch++, XTrace) gained nothing: the
  Frobenius mass is spread over far more directions than a sketch of 10-15 holds (the
  figures: `benchmarks/README.md`, "Design measurements").
- `"auto"` (the default): on the CPU `"stratified"` where the data makes at least two strata
  (not under `bn="batch"` with BatchNorm, whose statistics need one batch); otherwise
  `"xtrace"` where probes ≥ 4, else `"hutchinson"`. On a GPU small chunks are bound by kernel
  launches, which eats the gain: there batched XTrace measured best in seconds × SE².

Probes are Rademacher vectors drawn on the CPU from a `torch.Generator` seeded by `seed`.
Batched products (`Hessian.hvp_many`: `vmap` over forward-over-reverse) are used on CUDA only,
where they are cheaper than a reused-graph product; on the CPU they cost more (and a batched
double backward, `is_grads_batched`, cost more on the CPU and failed on CUDA).
`trace` also takes any symmetric linear map (a scipy or curvlinops operator, a matrix:
`lmc_toolkit.hessian.linear_map`), and `estimate_trace` runs the same estimators on a bare
function v ↦ Av.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import torch
from torch import Tensor
from tqdm.auto import tqdm

from lmc_toolkit.hessian.linear_map import LinearMap, OperatorLike, as_operator
from lmc_toolkit.hessian.network_operator import NetworkOperator
from lmc_toolkit.hessian.operator import Hessian
from lmc_toolkit.hessian.options import has_batch_norm, random_vectors

TraceMethod = Literal["auto", "stratified", "xtrace", "hutch++", "hutchinson"]
TRACE_METHODS: tuple[TraceMethod, ...] = get_args(TraceMethod)
MatVec = Callable[[Tensor], Tensor]
#: Images per stratum for `"stratified"` (measured on convnet3, 250 images): on the CPU,
#: products over 10-image chunks cost about what 100-image chunks do and more strata mean less
#: variance (chunks of 2 cost 1.7× and gained nothing); on an H200 chunks of 50 did best.
DEFAULT_STRATUM = {"cpu": 10, "cuda": 50}


def default_stratum(H: NetworkOperator) -> int:
    """Images per stratum for the stratified estimator on H's device."""
    return min(H.n, DEFAULT_STRATUM.get(H.device.type, 10))


@dataclass(frozen=True)
class Estimate:
    """A stochastic estimate: its mean, standard error and the per-probe samples it came from
    (for Hutch++, `exact_part` is the sketched trace added to the samples' mean; for XTrace the
    samples are the k exchangeable leave-one-out estimates, whose mean is `mean`)."""

    mean: float
    stderr: float
    samples: Tensor
    probes: int
    products: int
    method: str
    seed: int
    seconds: float
    exact_part: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # the estimate, not its samples
        return (
            f"Estimate(mean={self.mean:.6g}, stderr={self.stderr:.3g}, method={self.method!r}, "
            f"probes={self.probes}, products={self.products})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "stderr": self.stderr,
            "samples": self.samples.tolist(),
            "probes": self.probes,
            "products": self.products,
            "method": self.method,
            "seed": self.seed,
            "seconds": self.seconds,
            "exact_part": self.exact_part,
            "meta": dict(self.meta),
        }


def trace(
    H: OperatorLike,
    probes: int = 100,
    method: TraceMethod = "auto",
    seed: int = 0,
    progress: bool = True,
    stratum: int | None = None,
    batch: bool | None = None,
) -> Estimate:
    """tr(H) from at most `probes` products, with its standard error (see the module docstring).

    Args:
        H: A curvature operator or any symmetric map `as_operator` takes.
        probes: The product budget.
        method: `"auto"` (on the CPU stratified where the data makes ≥ 2 strata; else XTrace
            where probes ≥ 4), `"stratified"`, `"xtrace"` (2·(probes // 2) products),
            `"hutch++"` (probes ≥ 3) or `"hutchinson"`.
        seed: Seeds the Rademacher probes.
        progress: Show a progress bar.
        stratum: Images per stratum for `"stratified"` (default: `default_stratum(H)`).
        batch: Multiply probes in blocks with `H.hvp_many` (None: on CUDA only, where it is
            faster; not for `"stratified"`).

    Returns:
        An `Estimate`: the trace, its standard error, the samples and the products used.
    """
    H = as_operator(H)
    if method not in TRACE_METHODS:
        raise ValueError(f"method must be one of {TRACE_METHODS}, got {method!r}")
    if isinstance(H, LinearMap):
        method, split, strata, many, meta = _plan_for_map(H, method, stratum, batch)
    else:
        method, split, strata, many, meta = _plan_for_data(H, method, stratum, batch)
    try:
        return estimate_trace(
            H.hvp,
            H.dim,
            probes=probes,
            method=method,
            seed=seed,
            progress=progress,
            dtype=H.dtype,
            device=H.device,
            meta=meta,
            split=split,
            strata=strata,
            many=many,
        )
    finally:
        if isinstance(H, Hessian):
            H.release_other_chunks()  # the strata's graphs would double the operator's memory


def _plan_for_data(H: NetworkOperator, method: str, stratum: int | None, batch: bool | None):
    """(method, split, strata, many, meta) for an operator over data: strata of `stratum`
    images (the CPU default), blocks through `hvp_many` where `batch` (CUDA by default)."""
    if stratum is not None and (
        not isinstance(stratum, int) or isinstance(stratum, bool) or stratum <= 0
    ):
        raise ValueError(f"stratum must be a positive int (images per stratum), got {stratum!r}")
    size = min(H.n, stratum or default_stratum(H))
    one_batch = H.bn == "batch" and has_batch_norm(H.network())
    if method == "stratified" and one_batch and size < H.n:
        raise ValueError(
            f"bn='batch' with BatchNorm needs all {H.n} images in one batch, so there is one "
            f"stratum: use method='xtrace' (stratum={size} would change the function)"
        )
    strata = H.chunk_count(size)
    if method == "auto" and strata >= 2 and not one_batch and H.device.type == "cpu":
        method = "stratified"
    if batch is None:
        batch = H.device.type == "cuda"
    meta = H.meta()
    if method == "stratified":
        meta = {**meta, "stratum": size, "strata": strata}
    split = lambda V: H.hvp_chunks(V, size)  # noqa: E731
    return method, split, strata, H.hvp_many if batch else None, meta


def _plan_for_map(H: LinearMap, method: str, stratum: int | None, batch: bool | None):
    """(method, split, strata, many, meta) for a plain linear map: no data, so no strata;
    blocks of probes go through the map's own block product unless `batch=False`."""
    if method == "stratified" or stratum is not None:
        raise ValueError(
            f"method='stratified' (and stratum) split a Hessian's data into strata; a "
            f"{H.name} has none: use method='auto', 'xtrace', 'hutch++' or 'hutchinson'"
        )
    return method, None, 1, H.hvp if batch is not False else None, H.meta()


def estimate_trace(
    matvec: MatVec,
    dim: int,
    probes: int = 100,
    method: TraceMethod = "auto",
    seed: int = 0,
    *,
    progress: bool = True,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    meta: dict[str, Any] | None = None,
    split: MatVec | None = None,
    strata: int = 1,
    many: MatVec | None = None,
) -> Estimate:
    """The trace of the symmetric map `matvec` (a vector of length `dim` → its image), as
    `trace` computes it for a Hessian; probes are made in `dtype` on `device`. For
    `"stratified"`, `split` maps a `strata` × dim block V to the block whose row c is
    A_c·V[c], where Σ_c A_c is the map (`Hessian.hvp_chunks`). `many`, where given, maps a
    block of rows to their images at once (`Hessian.hvp_many`); the other methods then
    multiply their probes in blocks of 16."""
    if not isinstance(probes, int) or isinstance(probes, bool) or probes <= 0:
        raise ValueError(f"probes must be a positive int, got {probes!r}")
    if method not in TRACE_METHODS:
        raise ValueError(f"method must be one of {TRACE_METHODS}, got {method!r}")
    if method == "auto":
        method = "xtrace" if probes >= 4 else "hutchinson"
    if method == "stratified" and split is None:
        raise ValueError("method='stratified' needs `split`, the map's products per stratum")
    if method == "hutch++" and probes < 3:
        raise ValueError(f"hutch++ needs probes ≥ 3 (a sketch, its products, probes), got {probes}")
    if method == "xtrace" and probes < 4:
        raise ValueError(f"xtrace needs probes ≥ 4 (two probes, two products each), got {probes}")
    generator = torch.Generator().manual_seed(int(seed))
    planned = probes if method != "xtrace" else probes // 2 * 2
    counted = _Counted(matvec, dtype, device, planned, many)
    start = time.perf_counter()
    bar = tqdm(total=counted.planned, desc="trace", disable=not progress, leave=False)
    counted.bar = bar
    draw = lambda k=None: random_vectors(  # noqa: E731
        generator, "rademacher", (dim,) if k is None else (k, dim), dtype, torch.device(device)
    )
    if method == "xtrace":
        mean, stderr, samples, exact, extra = _xtrace(counted, draw, probes // 2)
    elif method == "stratified" and split is not None:  # (checked above)
        mean, stderr, samples, exact = _stratified(counted, split, strata, draw, probes)
        extra = {}
    else:
        mean, stderr, samples, exact = _hutch(counted, draw, probes, method == "hutch++", dim)
        extra = {}
    bar.close()
    return Estimate(
        mean=mean,
        stderr=stderr,
        samples=samples,
        probes=probes,
        products=counted.products,
        method=method,
        seed=int(seed),
        seconds=time.perf_counter() - start,
        exact_part=exact,
        meta={**(meta or {}), **extra},
    )


class _Counted:
    """The map on float64 rows (converted to and from the operator's dtype), counting products
    and advancing the progress bar; blocks of rows go through `many` where given."""

    def __init__(
        self, matvec: MatVec, dtype: torch.dtype, device: Any, planned: int, many: MatVec | None
    ) -> None:
        self.matvec, self.dtype, self.device, self.planned = matvec, dtype, device, planned
        self.many = many
        self.block = 16 if many is not None else 1
        self.products = 0
        self.bar: Any = None

    def __call__(self, v: Tensor) -> Tensor:
        out = self.matvec(v.to(device=self.device, dtype=self.dtype))
        self.count()
        return out.to(torch.float64)

    def count(self, n: int = 1) -> None:
        self.products += n
        if self.bar is not None:
            self.bar.update(n)

    def rows(self, V: Tensor) -> Tensor:
        if self.many is None or len(V) == 0:
            return torch.stack([self(v) for v in V]) if len(V) else V.double()
        out = self.many(V.to(device=self.device, dtype=self.dtype))
        self.count(len(V))
        return out.to(torch.float64)


def _hutch(A: _Counted, draw, probes: int, plus: bool, dim: int):
    """Hutchinson's estimator, or Hutch++ when `plus`: (mean, stderr, samples, exact part)."""
    exact = 0.0
    Q = None
    rest = probes
    if plus:
        s = min(probes // 3, dim)
        HS = A.rows(draw(s))
        Q = torch.linalg.qr(HS.T).Q.T.to(A.dtype)  # s × dim
        exact = float((Q.double() * A.rows(Q)).sum())
        rest = probes - 2 * s
    samples: list[float] = []
    while len(samples) < rest:
        Z = torch.stack([draw() for _ in range(min(A.block, rest - len(samples)))])
        if Q is not None:
            Z = Z - (Z @ Q.T) @ Q
        samples += (Z.double() * A.rows(Z)).sum(1).tolist()
    values = torch.tensor(samples, dtype=torch.float64)
    mean = exact + (float(values.mean()) if len(values) else 0.0)
    return mean, _stderr(values), values, exact


def _stderr(values: Tensor) -> float:
    """The standard error of the mean of independent samples (NaN for fewer than two)."""
    return float(values.std() / math.sqrt(len(values))) if len(values) > 1 else math.nan


def _stratified(A: _Counted, split: MatVec, strata: int, draw, probes: int):
    """Hutchinson's estimator with an independent probe per stratum: (mean, stderr, samples, 0)."""
    samples = []
    for _ in range(probes):
        V = draw(strata)
        HV = split(V)
        A.count()
        samples.append(float((V.double() * HV.double()).sum()))
    values = torch.tensor(samples, dtype=torch.float64)
    return float(values.mean()), _stderr(values), values, 0.0


def _xtrace(A: _Counted, draw, k: int):
    """XTrace with k probes and 2k products: (mean, stderr, the k estimates, 0, meta).

    With Y = HΩ = QR, the span of the sketches other than y_i is range(Q) minus the direction
    s_i = Q ŝ_i, ŝ_i ∝ R⁻ᵀe_i (the one direction of range(Q) orthogonal to every y_j, j ≠ i),
    so its projector is P_i = QQᵀ − s_i s_iᵀ and estimate i is
    tr(H P_i) + ω_iᵀ(I − P_i) H (I − P_i) ω_i, expanded below in k × k matrices of
    B = QᵀHQ, W = QᵀΩ, T = (HQ)ᵀΩ and R = QᵀHΩ.
    """
    Omega = draw(k).double()  # k × dim
    Y = A.rows(Omega)  # k × dim: H ω_i
    sigma = torch.linalg.svdvals(Y)
    rank = int((sigma > _rank_tol(A.dtype) * sigma[0]).sum()) if float(sigma[0]) > 0 else 0
    if rank < k:
        # k random sketches of an operator of rank r < k span its whole range: exact trace
        U = torch.linalg.svd(Y.T, full_matrices=False).U[:, :rank]  # dim × r
        exact = float((U * A.rows(U.T).T).sum()) if rank else 0.0
        samples = torch.full((k,), exact, dtype=torch.float64)
        return exact, 0.0, samples, exact, {"sketch_spans_range": True, "rank": rank}
    Q, R = torch.linalg.qr(Y.T)  # dim × k, k × k
    Z = A.rows(Q.T).T  # dim × k: H q_j
    B = Q.T @ Z
    W = Q.T @ Omega.T
    T = Z.T @ Omega.T  # column i: Qᵀ Hᵀ ω_i
    S = torch.linalg.solve_triangular(R, torch.eye(k, dtype=R.dtype, device=R.device), upper=True)
    S = S.T  # R⁻ᵀ
    S = S / S.norm(dim=0, keepdim=True)  # column i: ŝ_i
    wAw = (Omega * Y).sum(1)  # ω_iᵀ H ω_i
    c = (S * W).sum(0)  # ŝ_iᵀ w_i: the part of ω_i along s_i
    sBs = (S * (B @ S)).sum(0)
    wBw = (W * (B @ W)).sum(0)
    # u_i = (I − QQᵀ) ω_i: uᵀHu = ωᵀHω − (Zᵀω)·w − w·(Qᵀ H ω) + wᵀBw
    uAu = wAw - (T * W).sum(0) - (W * R).sum(0) + wBw
    sAu = (S * R).sum(0) - (S * (B @ W)).sum(0)  # ŝᵀQᵀH u
    uAs = (T * S).sum(0) - (W * (B @ S)).sum(0)  # uᵀ H Q ŝ
    # (I − P_i) ω_i = u_i + c_i s_i
    samples = torch.trace(B) - sBs + uAu + c * (sAu + uAs) + c**2 * sBs
    mean = float(samples.mean())
    stderr = float(samples.std() / math.sqrt(k))
    return mean, stderr, samples.cpu(), 0.0, {}


def _rank_tol(dtype: torch.dtype) -> float:
    """Relative singular value below which sketches count as linearly dependent."""
    return 1e3 * torch.finfo(dtype).eps
