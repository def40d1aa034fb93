"""The figure notebooks' analyses of a `Study`, each computed once and kept in its store.

Every function here reads the study's trained tickets (`Study.trained`), runs one of the
library's analyses (interpolation, Hessian, landscape, masks) and caches the plain-number
result under an `AnalysisRun` key, so a second notebook or a second run only redraws. Notebook
F6 reuses F1's accuracies and F2's barriers this way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch

from lmc_toolkit.connectivity import Curve, PairwiseResult, interpolate, pairwise
from lmc_toolkit.study import Study, StudyConfig, describe, subsample

T = TypeVar("T")
__all__ = [
    "AnalysisRun",
    "barrier_table",
    "cached",
    "curvature",
    "curve",
    "describe",
    "mask_convergence",
    "mask_costs",
    "pairwise_seeds",
    "paper_surface",
    "random_surface",
]


@dataclass(frozen=True)
class AnalysisRun:
    """The store key of one analysis: its kind, the study and the analysis' own arguments."""

    kind: str = ""
    study: StudyConfig = field(default_factory=StudyConfig)
    args: tuple[tuple[str, Any], ...] = ()

    def run_prefix(self) -> str:
        return f"{self.kind}-{self.study.dataset}-{self.study.model}"


def cached(
    study: Study,
    kind: str,
    args: Mapping[str, Any],
    compute: Callable[[], T],
    encode: Callable[[T], Any],
    decode: Callable[[Any], T],
) -> T:
    """`compute()` once per (kind, study, args); later calls load it from the study's store."""
    key = AnalysisRun(kind, study.config, tuple(sorted(args.items())))
    return study.store.cached(key, compute, encode=encode, decode=decode)


def _data(study: Study, which: str):
    if which not in ("train", "test"):
        raise ValueError(f"data must be 'train' or 'test', got {which!r}")
    return study.train_data if which == "train" else study.test_data


# -- F2 and F6: interpolation between the two SGD-noise copies ---------------------------------


def curve(
    study: Study,
    method: str,
    round: int,
    seeds: tuple[int, int] | None = None,
    alphas: int = 11,
    data: str = "test",
) -> Curve:
    """Interpolation between the tickets of `method` at `round` trained with two data seeds."""
    seeds = tuple(seeds or study.config.data_seeds[:2])
    if len(seeds) != 2:
        raise ValueError(f"a curve joins two data seeds, got {seeds!r}")

    def compute() -> Curve:
        a, b = (study.network(method, round, s) for s in seeds)
        return interpolate(
            a,
            b,
            _data(study, data),
            alphas,
            mask=study.mask(method, round),
            bn_data=study.train_data,
            label=f"{method} {study.config.sparsity(round) if method != 'dense' else 0:.0%}",
            progress=study.progress,
        )

    args = {"method": method, "round": round, "seeds": seeds, "alphas": alphas, "data": data}
    return cached(study, "curve", args, compute, Curve.to_dict, Curve.from_dict)


@dataclass(frozen=True)
class BarrierRow:
    """One method at one sparsity: barriers between its two copies and its test accuracy."""

    method: str
    round: int
    sparsity: float
    error_barrier: float
    loss_barrier: float
    accuracy: float
    accuracy_std: float
    performance_ratio: float


def barrier_table(study: Study, alphas: int = 11, data: str = "test") -> list[BarrierRow]:
    """Barrier and accuracy for every method at every ticket round (F2's right panel, F6)."""
    table = study.tickets()
    summary = {(s.method, round(s.sparsity, 3)): s for s in table.summary()}
    dense = next(s for s in table.summary() if s.method == "dense")
    rows = []
    for method in study.config.methods:
        rounds = (0,) if method == "dense" else study.config.ticket_rounds
        for r in rounds:
            mask = study.mask(method, r)
            sparsity = 0.0 if mask is None else mask.sparsity
            acc = summary[(method, round(sparsity, 3))]
            c = curve(study, method, r, alphas=alphas, data=data)
            rows.append(
                BarrierRow(
                    method=method,
                    round=r,
                    sparsity=sparsity,
                    error_barrier=c.barrier("error").value,
                    loss_barrier=c.barrier("loss").value,
                    accuracy=acc.mean,
                    accuracy_std=acc.std,
                    performance_ratio=acc.mean / dense.mean,
                )
            )
    return rows


# -- F5: curvature ------------------------------------------------------------------------------


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
    images: int = 256,
    k: int = 3,
    probes: int = 30,
    density_runs: int = 2,
    density_steps: int = 30,
    diagonal_method: str = "auto",
    trace_method: str = "auto",
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

    from lmc_toolkit.hessian import Hessian, density, diagonal, top_eigenvalues, trace
    from lmc_toolkit.hessian_diag import is_piecewise_linear
    from lmc_toolkit.hessian_diag_chain import applies as structured_applies

    def compute() -> CurvatureSummary:
        start = time.perf_counter()
        net = study.network(method, round, data_seed)
        mask = study.mask(method, round)
        data = subsample(study.train_data, images)
        H = Hessian(net, data, mask=mask, bn="eval")
        eig = top_eigenvalues(H, k=min(k, H.shape[0]), which="LA", progress=study.progress)
        tr = trace(H, probes=probes, method=trace_method, progress=study.progress)
        route = diagonal_method
        if route == "auto":
            fast_exact = is_piecewise_linear(H) or structured_applies(H)
            route = "exact" if fast_exact else "ggn"
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

    args = {
        "method": method,
        "round": round,
        "data_seed": data_seed,
        "images": images,
        "k": k,
        "probes": probes,
        "density": (density_runs, density_steps),
        # "auto" took the Gauss–Newton diagonal on instance-norm nets before the structured route
        "diagonal": "auto: exact where fast" if diagonal_method == "auto" else diagonal_method,
        "trace": trace_method,
    }
    return cached(
        study,
        "curvature",
        args,
        compute,
        CurvatureSummary.to_dict,
        lambda d: CurvatureSummary(**d),
    )


# -- F4: landscapes ------------------------------------------------------------------------------


def paper_surface(
    study: Study,
    method: str,
    round: int,
    seeds: Sequence[int] = (0, 1, 2, 3),
    data: str = "train",
    resolution: int = 21,
    images: int | None = 1000,
):
    """The study's plane through four copies of one ticket trained with four data seeds,
    evaluated on real (`data="train"`/"test") or synthetic (`data="synthetic-<source>"`) data."""
    from lmc_toolkit.landscape import paper_plane
    from lmc_toolkit.surface import Surface

    if data.startswith("synthetic-"):
        points = study.synthetic(data.removeprefix("synthetic-"))
    else:
        points = _data(study, data)
    points = subsample(points, images)

    def compute() -> Surface:
        nets = [study.network(method, round, s) for s in seeds]
        return paper_plane(
            nets,
            points,
            x=(-2.0, 2.0, resolution),
            y=(-2.0, 2.0, resolution),
            mask=study.mask(method, round),
            bn_data=study.train_data,
            progress=study.progress,
        )

    args = {
        "method": method,
        "round": round,
        "seeds": tuple(seeds),
        "data": data,
        "n": resolution,
        "images": images,
    }
    return cached(study, "paper-plane", args, compute, Surface.to_dict, Surface.from_dict)


def random_surface(
    study: Study,
    method: str,
    round: int,
    data_seed: int = 0,
    span: float = 1.0,
    resolution: int = 21,
    images: int | None = 1000,
):
    """A filter-normalized random plane around one trained ticket (Li et al.)."""
    from lmc_toolkit.landscape import random_plane
    from lmc_toolkit.surface import Surface

    points = subsample(study.test_data, images)

    def compute() -> Surface:
        net = study.network(method, round, data_seed)
        grid = (-span, span, resolution)
        return random_plane(
            net,
            points,
            seeds=(0, 1),
            norm="filter",
            x=grid,
            y=grid,
            mask=study.mask(method, round),
            bn_data=study.train_data,
            progress=study.progress,
        )

    args = {
        "method": method,
        "round": round,
        "data_seed": data_seed,
        "span": span,
        "n": resolution,
        "images": images,
    }
    return cached(study, "random-plane", args, compute, Surface.to_dict, Surface.from_dict)


# -- F8: several seeds ---------------------------------------------------------------------------


def pairwise_seeds(
    study: Study, method: str, round: int, seeds: Sequence[int], alphas: int = 11
) -> PairwiseResult:
    """Barriers and weight distances among copies of one ticket trained with `seeds`."""

    def compute() -> PairwiseResult:
        nets = [study.network(method, round, s) for s in seeds]
        return pairwise(
            nets,
            study.test_data,
            alphas,
            mask=study.mask(method, round),
            labels=[f"seed {s}" for s in seeds],
            bn_data=study.train_data,
            progress=study.progress,
        )

    args = {"method": method, "round": round, "seeds": tuple(seeds), "alphas": alphas}
    return cached(
        study, "pairwise", args, compute, PairwiseResult.to_dict, PairwiseResult.from_dict
    )


# -- F7: masks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaskConvergence:
    """How the mask that distilled training would prune changes over its epochs: the Hamming
    distance (fraction of prunable weights that differ) of the magnitude mask taken at each
    epoch to the one taken at the end, at one sparsity."""

    source: str
    sparsity: float
    epochs: list[float]
    hamming_to_final: list[float]
    iou_to_final: list[float]


def mask_convergence(
    study: Study, source: str, sparsity: float = 0.8, checkpoints: int = 8
) -> MaskConvergence:
    """Train θ0 on the synthetic set `source` (the distilled inner loop), take a global
    magnitude mask of `sparsity` at `checkpoints` evenly spaced steps, and compare each to the
    final one."""
    from lmc_toolkit.data import num_batches
    from lmc_toolkit.pruning import Mask, hamming, iou, magnitude
    from lmc_toolkit.train import train

    if not 0 < sparsity < 1:
        raise ValueError(f"sparsity must lie in (0, 1), got {sparsity!r}")

    def compute() -> MaskConvergence:
        data = study.synthetic(source)
        config = study.config.synth_train
        spe = num_batches(len(data), config.batch_size)
        total = config.total_steps(spe)
        steps = sorted({round(total * i / checkpoints) for i in range(1, checkpoints + 1)})
        result = train(study.model0, data, config, 0, checkpoint_steps=steps, progress=False)
        prunable = Mask.ones(study.model0)
        masks = [magnitude(result.checkpoints[s].state, sparsity, prunable) for s in steps]
        final = masks[-1]
        return MaskConvergence(
            source=source,
            sparsity=sparsity,
            epochs=[s / spe for s in steps],
            hamming_to_final=[float(hamming(m, final)) for m in masks],
            iou_to_final=[float(iou(m, final)) for m in masks],
        )

    args = {"source": source, "sparsity": sparsity, "checkpoints": checkpoints}
    return cached(study, "mask-convergence", args, compute, asdict, lambda d: MaskConvergence(**d))


def finite(value: float) -> float | None:
    """JSON-friendly: NaN and inf become None."""
    return value if math.isfinite(value) else None


# -- F1: what finding each mask cost --------------------------------------------------------------


@dataclass(frozen=True)
class MaskCost:
    """The training it took to find one method's mask at one round: sample-gradient
    evaluations (images through forward and backward) and seconds, all earlier rounds included."""

    method: str
    round: int
    sparsity: float
    samples: int
    seconds: float
    prune_images: int


def mask_costs(study: Study) -> list[MaskCost]:
    """`MaskCost` of every pruned method at every ticket round (random pruning costs nothing)."""
    rows = []
    for method in study.config.methods[1:-1]:
        run = study.run_of(method)
        for r in study.config.ticket_rounds:
            rnd = run.rounds[r]
            rows.append(
                MaskCost(
                    method=method,
                    round=r,
                    sparsity=rnd.sparsity,
                    samples=int(rnd.mask_samples),
                    seconds=float(rnd.mask_seconds),
                    prune_images=int(run.prune_size),
                )
            )
    return rows
