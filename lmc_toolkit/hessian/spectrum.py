"""Spectral estimators on a `Hessian` operator (or any symmetric `LinearMap`): top eigenvalues
and the spectral density.

- `top_eigenvalues`: Lanczos with full re-orthogonalization (default), or power iteration with
  deflation as PyHessian does it (for comparison). `which="LA"` asks for the largest
  *algebraic* eigenvalues (the sharpness), `"LM"` for the largest magnitude.
- `density`: stochastic Lanczos quadrature (SLQ), a Gaussian-smoothed density on a grid.

(The trace is in `lmc_toolkit.hessian.trace_estimators`.) Every random draw comes from a `torch.Generator` seeded by `seed`, on the CPU.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import torch
from torch import Tensor
from tqdm.auto import tqdm

from lmc_toolkit.checks import check_choice, check_int
from lmc_toolkit.hessian.linear_map import CurvatureOperator, OperatorLike, as_operator

Which = Literal["LA", "LM", "SA"]
WHICH: tuple[Which, ...] = get_args(Which)
EigenMethod = Literal["lanczos", "power"]
EIGEN_METHODS: tuple[EigenMethod, ...] = get_args(EigenMethod)


@dataclass(frozen=True)
class Eigen:
    """Eigenvalues (sorted by `which`), unit eigenvectors (k × dim), the residual norms
    ‖Hv − λv‖ and error bounds min(r, r²/gap) on each eigenvalue."""

    values: Tensor
    vectors: Tensor
    residuals: Tensor
    bounds: Tensor
    iterations: int
    products: int
    converged: bool
    method: str
    which: str
    tol: float
    seed: int
    seconds: float
    meta: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # the values, not the k × dim eigenvectors
        shown = ", ".join(f"{float(v):.4g}" for v in self.values[:6])
        more = ", ..." if len(self.values) > 6 else ""
        return (
            f"Eigen(values=[{shown}{more}], which={self.which!r}, method={self.method!r}, "
            f"converged={self.converged}, products={self.products})"
        )

    @property
    def top(self) -> float:
        return float(self.values[0])

    def to_dict(self, vectors: bool = False) -> dict[str, Any]:
        out = {
            "values": self.values.tolist(),
            "residuals": self.residuals.tolist(),
            "bounds": self.bounds.tolist(),
            "iterations": self.iterations,
            "products": self.products,
            "converged": self.converged,
            "method": self.method,
            "which": self.which,
            "tol": self.tol,
            "seed": self.seed,
            "seconds": self.seconds,
            "meta": dict(self.meta),
        }
        if vectors:
            out["vectors"] = self.vectors.cpu()
        return out


@dataclass(frozen=True)
class Spectrum:
    """An SLQ spectral density: `density` on `grid` (integrates to 1), and the Ritz `nodes` and
    `weights` of each run (runs × steps; each run's weights sum to 1)."""

    grid: Tensor
    density: Tensor
    nodes: Tensor
    weights: Tensor
    sigma: float
    runs: int
    steps: int
    dim: int
    seed: int
    seconds: float
    products: int
    meta: dict[str, Any] = field(default_factory=dict)

    def moment(self, k: int) -> float:
        """The quadrature estimate of tr(H^k)/dim."""
        return float((self.weights * self.nodes**k).sum(1).mean())

    def integral(self) -> float:
        return float(torch.trapezoid(self.density, self.grid))

    def to_dict(self) -> dict[str, Any]:
        return {
            "grid": self.grid.tolist(),
            "density": self.density.tolist(),
            "nodes": self.nodes.tolist(),
            "weights": self.weights.tolist(),
            "sigma": self.sigma,
            "runs": self.runs,
            "steps": self.steps,
            "dim": self.dim,
            "seed": self.seed,
            "seconds": self.seconds,
            "products": self.products,
            "meta": dict(self.meta),
        }

    def plot(self, log_y: bool = False, **kw: Any):
        from lmc_toolkit.plots.hessian import plot_spectrum

        return plot_spectrum(self, log_y=log_y, **kw)


def _unit(v: Tensor) -> Tensor:
    return v / v.norm()


class _Lanczos:
    """Lanczos with full re-orthogonalization, growing one step at a time.

    The basis is kept in float64 whatever the operator's dtype (products run in its dtype):
    with a float32 basis its rounding biased the top Ritz value of a narrow ResNet by 3.8e-6
    (relative, above λ_max, which exact Ritz values cannot exceed), against 1.5e-7 in float64.
    """

    def __init__(self, H: CurvatureOperator, v0: Tensor, generator: torch.Generator, restart: bool):
        self.H, self.generator, self.restart = H, generator, restart
        first = _unit(v0.double())
        # the basis vectors as rows of one buffer that doubles when full: stacking a list of
        # them every step copied the whole basis (a ResNet-18's 11M weights: most of a step)
        self._rows = torch.empty(8, len(first), dtype=torch.float64, device=first.device)
        self._rows[0] = first
        self.size = 1
        self.alpha: list[float] = []
        self.beta: list[float] = []
        self.exhausted = False

    @property
    def basis(self) -> Tensor:
        """The orthonormal basis so far, one vector per row (a view, not a copy)."""
        return self._rows[: self.size]

    def _append(self, v: Tensor) -> None:
        if self.size == len(self._rows):
            grown = torch.empty(2 * self.size, self._rows.shape[1], dtype=torch.float64,
                                device=self._rows.device)  # fmt: skip
            grown[: self.size] = self._rows
            self._rows = grown
        self._rows[self.size] = v
        self.size += 1

    def step(self) -> None:
        basis = self.basis
        q = basis[-1]
        w = self.H.hvp(q.to(self.H.dtype)).double()
        a = float(q @ w)
        w = w - a * q - (self.beta[-1] * basis[-2] if self.beta and self.size > 1 else 0)
        for _ in range(2):  # classical Gram-Schmidt twice
            w = w - basis.T @ (basis @ w)
        b = float(w.norm())
        self.alpha.append(a)
        scale = max(abs(x) for x in self.alpha) or 1.0
        if self.size >= self.H.dim:
            self.exhausted = True
            self.beta.append(0.0)
            return
        if b <= 1e-10 * scale:
            # an invariant subspace: exact Ritz values there; continue from a fresh direction
            self.beta.append(0.0)
            if not self.restart:
                self.exhausted = True
                return
            w = self.H.random(self.generator, "gaussian").double()
            for _ in range(2):
                w = w - basis.T @ (basis @ w)
            self._append(_unit(w))
            return
        self.beta.append(b)
        self._append(w / b)

    def ritz(self) -> tuple[Tensor, Tensor, float]:
        """Ritz values, the eigenvectors of T (columns) and the last β."""
        m = len(self.alpha)
        T = torch.diag(torch.tensor(self.alpha, dtype=torch.float64))
        off = torch.tensor(self.beta[: m - 1], dtype=torch.float64)
        T += torch.diag(off, 1) + torch.diag(off, -1)
        theta, S = torch.linalg.eigh(T)
        return theta, S, self.beta[m - 1]


def _order(values: Tensor, which: str) -> Tensor:
    key = {"LA": -values, "SA": values, "LM": -values.abs()}[which]
    return torch.argsort(key, stable=True)


def _bounds(theta: Tensor, residuals: Tensor, idx: Tensor) -> Tensor:
    """min(r, r²/gap) per chosen Ritz value, the gap taken to the nearest other Ritz value."""
    out = residuals.clone()
    for j, i in enumerate(idx.tolist()):
        others = torch.cat([theta[:i], theta[i + 1 :]])
        if len(others):
            gap = float((others - theta[i]).abs().min())
            if gap > 0:
                out[j] = min(float(residuals[j]), float(residuals[j]) ** 2 / gap)
    return out


def top_eigenvalues(
    H: OperatorLike,
    k: int = 1,
    method: EigenMethod = "lanczos",
    which: Which = "LA",
    tol: float = 1e-6,
    max_iter: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> Eigen:
    """The k extreme eigenvalues of `H` and their eigenvectors.

    Lanczos stops when every wanted Ritz value's error bound min(r, r²/gap) is ≤ tol·|λ|, r
    being the residual norm ‖Hv − λv‖ = β·|s_last|; power iteration stops as PyHessian's does
    (relative change of the Rayleigh quotient < tol).

    Args:
        H: A curvature operator or any symmetric map `as_operator` takes.
        k: How many eigenvalues.
        method: `"lanczos"` or `"power"` (power iteration finds largest-magnitude eigenvalues
            only, `which="LM"`).
        which: `"LA"` (largest algebraic), `"LM"` (largest magnitude) or `"SA"` (smallest).
        tol: The relative tolerance above.
        max_iter: At most this many products (default: enough for the operator's size).
        seed: Seeds the starting vector.
        progress: Show a progress bar.

    Returns:
        An `Eigen`: the eigenvalues (largest first for "LA"), the eigenvectors, the products
        used and whether every one converged.
    """
    H = as_operator(H)
    k = check_int("k", k, 1)
    if k > H.dim:
        raise ValueError(f"k={k} exceeds the dimension of the operator ({H.dim})")
    check_choice("method", method, EIGEN_METHODS)
    check_choice("which", which, WHICH)
    if not (isinstance(tol, float | int) and tol > 0):
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    if method == "power" and which != "LM":
        raise ValueError(
            "power iteration finds largest-magnitude eigenvalues: use which='LM' with it, or "
            "method='lanczos' for which='LA'/'SA' (the sharpness is which='LA')"
        )
    generator = torch.Generator().manual_seed(int(seed))
    start, before = time.perf_counter(), H.products
    if method == "lanczos":
        max_iter = check_int("max_iter", max_iter or min(H.dim, max(100, 20 * k)), k)
        out = _lanczos_top(H, k, which, tol, max_iter, generator, progress)
    else:
        max_iter = check_int("max_iter", max_iter or 100, 1)
        out = _power_top(H, k, tol, max_iter, generator, progress)
    values, vectors, residuals, bounds, iterations, converged = out
    return Eigen(
        values=values,
        vectors=vectors,
        residuals=residuals,
        bounds=bounds,
        iterations=iterations,
        products=H.products - before,
        converged=converged,
        method=method,
        which=which,
        tol=float(tol),
        seed=int(seed),
        seconds=time.perf_counter() - start,
        meta=H.meta(),
    )


def _lanczos_top(H, k, which, tol, max_iter, generator, progress):
    lz = _Lanczos(H, H.random(generator, "gaussian"), generator, restart=True)
    bar = tqdm(total=max_iter, desc="lanczos", disable=not progress, leave=False)
    converged = False
    while True:
        lz.step()
        bar.update(1)
        m = len(lz.alpha)
        if m < k and not lz.exhausted:
            continue
        theta, S, beta = lz.ritz()
        idx = _order(theta, which)[:k]
        residuals = (beta * S[-1, idx]).abs()
        bounds = _bounds(theta, residuals, idx)
        scale = theta[idx].abs().clamp_min(1e-30)
        converged = bool((bounds <= tol * scale).all()) or lz.exhausted
        if converged or m >= max_iter:
            break
    bar.close()
    basis = lz.basis[:m]
    vectors = (S[:, idx].T.to(basis.device) @ basis).to(H.dtype)
    return theta[idx], vectors, residuals, bounds, m, converged


def _power_top(H, k, tol, max_iter, generator, progress):
    values, vectors, residuals, total, converged = [], [], [], 0, True
    bar = tqdm(total=k, desc="power", disable=not progress, leave=False)
    for _ in range(k):
        v = _unit(H.random(generator, "gaussian"))
        lam, res, ok = None, math.inf, False
        for _ in range(max_iter):
            for u in vectors:  # deflation, as PyHessian orthogonalizes against found vectors
                v = _unit(v - (u @ v) * u)
            hv = H.hvp(v)
            total += 1
            new = float(v.double() @ hv.double())
            res = float((hv - new * v).norm())
            v = _unit(hv)
            if lam is not None and abs(new - lam) / (abs(lam) + 1e-6) < tol:
                lam, ok = new, True
                break
            lam = new
        converged &= ok
        values.append(lam)
        vectors.append(v)
        residuals.append(res)
        bar.update(1)
    bar.close()
    vals = torch.tensor(values, dtype=torch.float64)
    order = _order(vals, "LM")
    res = torch.tensor(residuals, dtype=torch.float64)[order]
    return vals[order], torch.stack(vectors)[order], res, res.clone(), total, converged


def density(
    H: OperatorLike,
    runs: int = 4,
    steps: int = 60,
    sigma: float | None = None,
    points: int = 1000,
    seed: int = 0,
    progress: bool = True,
) -> Spectrum:
    """The spectral density of `H` by stochastic Lanczos quadrature.

    Each run takes `steps` Lanczos steps from a Rademacher start; its Ritz values are nodes
    weighted by the squared first components of T's eigenvectors. The density averages Gaussians
    of width `sigma` over the nodes, normalized to integrate to 1.

    Args:
        H: A curvature operator or any symmetric map `as_operator` takes.
        runs: Independent Lanczos runs averaged.
        steps: Lanczos steps per run.
        sigma: The Gaussians' width (default: 1% of the nodes' range).
        points: Grid points, reaching 5σ past the extreme nodes.
        seed: Seeds the runs' starting vectors.
        progress: Show a progress bar.

    Returns:
        A `Spectrum`: the grid, the density on it, and every run's nodes and weights.
    """
    H = as_operator(H)
    runs = check_int("runs", runs, 1)
    steps = check_int("steps", steps, 1)
    points = check_int("points", points, 2)
    if sigma is not None and not sigma > 0:
        raise ValueError(f"sigma must be positive (or None for 1% of the range), got {sigma!r}")
    generator = torch.Generator().manual_seed(int(seed))
    start, before = time.perf_counter(), H.products
    steps = min(steps, H.dim)
    nodes = torch.zeros(runs, steps, dtype=torch.float64)
    weights = torch.zeros(runs, steps, dtype=torch.float64)
    bar = tqdm(total=runs * steps, desc="density", disable=not progress, leave=False)
    for r in range(runs):
        lz = _Lanczos(H, H.random(generator, "rademacher"), generator, restart=False)
        while len(lz.alpha) < steps and not lz.exhausted:
            lz.step()
            bar.update(1)
        theta, S, _ = lz.ritz()
        m = len(theta)
        nodes[r, :m] = theta
        weights[r, :m] = S[0] ** 2
        if m < steps:  # the Krylov space closed early: pad with zero-weight copies
            nodes[r, m:] = theta[-1]
    bar.close()
    lo, hi = float(nodes.min()), float(nodes.max())
    if sigma is None:
        sigma = 0.01 * (hi - lo) if hi > lo else 1e-3 * max(abs(hi), 1.0)
    grid = torch.linspace(lo - 5 * sigma, hi + 5 * sigma, points, dtype=torch.float64)
    kernel = torch.exp(-0.5 * ((grid[:, None] - nodes.reshape(1, -1)) / sigma) ** 2)
    dens = (kernel * weights.reshape(1, -1)).sum(1) / (runs * sigma * math.sqrt(2 * math.pi))
    dens = dens / torch.trapezoid(dens, grid)
    return Spectrum(
        grid=grid,
        density=dens,
        nodes=nodes,
        weights=weights,
        sigma=float(sigma),
        runs=runs,
        steps=steps,
        dim=H.dim,
        seed=int(seed),
        seconds=time.perf_counter() - start,
        products=H.products - before,
        meta=H.meta(),
    )
