"""F5: the curvature of trained tickets (top eigenvalues, trace, diagonal, spectral density)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from lmc_toolkit.hessian.diagonal_estimators import DiagonalMethod
    from lmc_toolkit.hessian.trace_estimators import TraceMethod

import numpy as np
import torch

from lmc_toolkit.study.analyses.cache import cached
from lmc_toolkit.study.runs import Study, subsample


@dataclass(frozen=True)
class CurvatureSummary:
    """Curvature of one trained ticket: top eigenvalues, trace, the diagonal's summary, sorted
    diagonal values (a subsample for plotting) and the spectral density."""

    method: str
    round: int
    sparsity: float
    eigenvalues: list[float]
    trace: float
    trace_stderr: float
    diagonal: dict[str, float]
    diagonal_sorted: list[float]
    diagonal_route: str
    diagonal_exact: bool
    density_grid: list[float]
    density: list[float]
    seconds: float
    images: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def curvature(
    study: Study,
    method: str,
    round: int,
    data_seed: int = 0,
    *,
    images: int = 256,
    k: int = 3,
    probes: int = 30,
    density_runs: int = 2,
    density_steps: int = 30,
    diagonal_method: DiagonalMethod | Literal["auto"] = "auto",
    trace_method: TraceMethod = "auto",
) -> CurvatureSummary:
    """The Hessian of one trained ticket on `images` training images (eval-mode BN; pruned
    coordinates are outside the operator's space).

    `diagonal_method="auto"` takes the exact diagonal where a fast exact route exists
    (piecewise-linear networks: the Gauss–Newton route; instance-norm convnets such as
    `convnet3`: the structured route, about ten times the Gauss–Newton cost) and the
    Gauss–Newton diagonal elsewhere, where the exact route costs one product per weight; the
    summary records which (`diagonal_route`, `diagonal_exact`). Any method of
    `hessian.diagonal` can be named instead. `trace_method` is a
    method of `hessian.trace` (default: its `"auto"`, stratified Hutchinson on the CPU)."""
    import time

    from lmc_toolkit.hessian.diagonal_estimators import diagonal
    from lmc_toolkit.hessian.operator import Hessian
    from lmc_toolkit.hessian.spectrum import density, top_eigenvalues
    from lmc_toolkit.hessian.trace_estimators import trace

    def compute() -> CurvatureSummary:
        start = time.perf_counter()
        net = study.network(method, round, data_seed)
        mask = study.mask(method, round)
        data = subsample(study.train_data, images)
        H = Hessian(net, data, mask=mask, bn="eval")
        eig = top_eigenvalues(H, k=min(k, H.shape[0]), which="LA", progress=study.progress)
        tr = trace(H, probes=probes, method=trace_method, progress=study.progress)
        route = diagonal_route(H, diagonal_method)
        diag = diagonal(H, method=route, probes=probes, progress=study.progress)
        spec = density(H, runs=density_runs, steps=density_steps, progress=study.progress)
        flat = diag.flat().sort().values
        picks = torch.linspace(0, len(flat) - 1, min(len(flat), 2000)).round().long()
        return CurvatureSummary(
            method=method,
            round=round,
            sparsity=0.0 if mask is None else mask.sparsity,
            eigenvalues=[float(v) for v in eig.values],
            trace=float(tr.mean),
            trace_stderr=float(tr.stderr),
            diagonal=diag.summary(),
            diagonal_sorted=flat[picks].tolist(),
            diagonal_route=diag.route,
            diagonal_exact=bool(diag.exact),
            density_grid=np.asarray(spec.grid).tolist(),
            density=np.asarray(spec.density).tolist(),
            seconds=time.perf_counter() - start,
            images=len(data),
        )

    args = {"method": method, "round": round, "data_seed": data_seed, "images": images, "k": k}
    args |= {"probes": probes, "density": (density_runs, density_steps)}
    # "auto" took the Gauss–Newton diagonal on instance-norm nets before the structured route
    diagonal_key = "auto: exact where fast" if diagonal_method == "auto" else diagonal_method
    args |= {"diagonal": diagonal_key, "trace": trace_method}
    return cached(study, "curvature", args, compute, CurvatureSummary.to_dict, _summary)


def _summary(d: dict[str, Any]) -> CurvatureSummary:
    return CurvatureSummary(**d)


def diagonal_route(
    H: Any, diagonal_method: DiagonalMethod | Literal["auto"] = "auto"
) -> DiagonalMethod:
    """`diagonal_method`, or for "auto" the exact route where a fast one exists
    (piecewise-linear and instance-norm networks) and the Gauss–Newton diagonal elsewhere."""
    from lmc_toolkit.hessian.diagonal_estimators import is_piecewise_linear
    from lmc_toolkit.hessian.structured.chain import applies as structured_applies

    if diagonal_method != "auto":
        return diagonal_method
    return "exact" if is_piecewise_linear(H) or structured_applies(H) else "ggn"


@dataclass(frozen=True)
class DiagonalReplicates:
    """The mean exact Hessian diagonal per kept weight of one method's tickets at one round,
    one value per data seed: each seed's trained network on its own batch of `images`
    training images (drawn with that seed), so the spread holds both the SGD noise of
    training and the batch's noise. One estimator throughout (`route`: the exact diagonal
    where it is fast, as in `curvature`)."""

    method: str
    round: int
    sparsity: float
    seeds: list[int]
    means: list[float]
    route: str
    images: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def diagonal_replicates(
    study: Study, method: str, round: int, images: int = 256
) -> DiagonalReplicates:
    """`DiagonalReplicates` over every data seed of the study (claim 3's evidence): the
    diagonal by `diagonal_route` (exact on piecewise-linear and instance-norm networks),
    eval-mode BatchNorm, pruned coordinates outside the operator's space."""
    from lmc_toolkit.hessian.diagonal_estimators import diagonal
    from lmc_toolkit.hessian.operator import Hessian

    seeds = list(study.config.data_seeds)

    def compute() -> DiagonalReplicates:
        mask = study.mask(method, round)
        means, route = [], ""
        for seed in seeds:
            net = study.network(method, round, seed)
            H = Hessian(net, subsample(study.train_data, images, seed), mask=mask, bn="eval")
            diag = diagonal(H, method=diagonal_route(H), progress=study.progress)
            means.append(float(diag.summary()["mean"]))
            route = diag.route
        sparsity = 0.0 if mask is None else mask.sparsity
        return DiagonalReplicates(method, round, sparsity, seeds, means, route, images)

    args = {"method": method, "round": round, "seeds": tuple(seeds), "images": images}
    return cached(
        study,
        "diagonal-replicates",
        args,
        compute,
        DiagonalReplicates.to_dict,
        lambda d: DiagonalReplicates(**d),
    )
