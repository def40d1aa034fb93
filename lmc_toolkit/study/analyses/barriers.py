"""F2, F6 and F8: interpolation between copies of one ticket trained with different data seeds,
the barrier table of every method and sparsity, and pairwise barriers among several seeds.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from lmc_toolkit.connectivity.interpolation import interpolate
from lmc_toolkit.connectivity.intervals import barrier_interval, disjoint_pairs
from lmc_toolkit.connectivity.pairwise import PairwiseResult, pairwise
from lmc_toolkit.landscape.curve import Curve
from lmc_toolkit.study.analyses.cache import cached, study_data
from lmc_toolkit.study.runs import Study


def curve(
    study: Study,
    method: str,
    level: int,
    seeds: tuple[int, int] | None = None,
    alphas: int = 11,
    data: str = "test",
) -> Curve:
    """Interpolation between the tickets of `method` at round `level` trained with two data seeds."""
    pair = tuple(seeds or study.config.data_seeds[:2])
    if len(pair) != 2:
        raise ValueError(f"a curve joins two data seeds, got {pair!r}")

    def compute() -> Curve:
        a, b = (study.network(method, level, s) for s in pair)
        return interpolate(
            a,
            b,
            study_data(study, data),
            alphas,
            mask=study.mask(method, level),
            bn_data=study.train_data,
            label=f"{method} {study.config.sparsity(level) if method != 'dense' else 0:.0%}",
            progress=study.progress,
        )

    args = {"method": method, "round": level, "seeds": pair, "alphas": alphas, "data": data}
    args["evidence"] = "per-image"  # curves stored before it kept no per-image evidence
    return cached(study, "curve", args, compute, Curve.to_dict, Curve.from_dict)


@dataclass(frozen=True)
class BarrierRow:
    """One method at one sparsity: barriers between copies trained with different data seeds
    (the mean over every pair of the study's data seeds, their standard deviation, NaN for one
    pair; above the mean of the ends and above the straight line between them), how many pairs
    peak strictly inside the path, its test accuracy, the test images behind both, and the
    deciding interval: the `baseline` barrier over the disjoint pairs
    (`connectivity.intervals.barrier_interval`)."""

    method: str
    round: int
    sparsity: float
    error_barrier: float
    loss_barrier: float
    accuracy: float
    accuracy_std: float
    performance_ratio: float
    error_barrier_std: float = math.nan
    pairs: int = 1
    test_images: int = 0
    error_barrier_linear: float = math.nan
    peaks_inside: int = 0
    interval: dict | None = None


def barrier_table(
    study: Study, alphas: int = 11, data: str = "test", baseline: str = "linear"
) -> list[BarrierRow]:
    """Barrier and accuracy for every method at every ticket round (F2's right panel, F6),
    over every pair of data seeds, with the interval of the `baseline` barrier over the
    disjoint pairs."""
    table = study.tickets()
    summary = {(s.method, round(s.sparsity, 3)): s for s in table.summary()}
    dense = next(s for s in table.summary() if s.method == "dense")
    pairs = list(combinations(study.config.data_seeds, 2))
    images = len(study_data(study, data))
    rows = []
    for method in study.config.methods:
        rounds = (0,) if method == "dense" else study.config.ticket_rounds
        for r in rounds:
            mask = study.mask(method, r)
            sparsity = 0.0 if mask is None else mask.sparsity
            acc = summary[(method, round(sparsity, 3))]
            curves = [curve(study, method, r, seeds, alphas=alphas, data=data) for seeds in pairs]
            errors = [c.barrier("error").value for c in curves]
            apart = [curves[pairs.index(p)] for p in disjoint_pairs(study.config.data_seeds)]
            rows.append(
                BarrierRow(
                    method=method,
                    round=r,
                    sparsity=sparsity,
                    error_barrier=statistics.fmean(errors),
                    loss_barrier=statistics.fmean(c.barrier("loss").value for c in curves),
                    accuracy=acc.mean,
                    accuracy_std=acc.std,
                    performance_ratio=acc.mean / dense.mean,
                    error_barrier_std=statistics.stdev(errors) if len(errors) > 1 else math.nan,
                    pairs=len(curves),
                    test_images=images,
                    error_barrier_linear=statistics.fmean(
                        c.barrier("error", "linear").value for c in curves
                    ),
                    peaks_inside=sum(0 < c.barrier("error", baseline).alpha < 1 for c in curves),
                    interval={
                        "baseline": baseline,
                        "pairs": [list(p) for p in disjoint_pairs(study.config.data_seeds)],
                        **barrier_interval(apart, baseline=baseline).to_dict(),
                    },
                )
            )
    return rows


def barrier_evidence(study: Study, alphas: int = 11, data: str = "test") -> list[dict]:
    """The per-image evidence behind every verdict on barriers: for every method and ticket
    round, the curves of the disjoint pairs of data seeds (`Curve.to_dict`, with the bit-packed
    right/wrong images of every α) that `study.claims` computes its intervals from."""
    pairs = disjoint_pairs(study.config.data_seeds)
    out = []
    for method in study.config.methods:
        for r in (0,) if method == "dense" else study.config.ticket_rounds:
            mask = study.mask(method, r)
            curves = [curve(study, method, r, p, alphas=alphas, data=data) for p in pairs]
            out.append(
                {
                    "method": method,
                    "round": r,
                    "sparsity": 0.0 if mask is None else mask.sparsity,
                    "pairs": [list(p) for p in pairs],
                    "curves": [c.to_dict() for c in curves],
                }
            )
    return out


def pairwise_seeds(
    study: Study, method: str, level: int, seeds: Sequence[int], alphas: int = 11
) -> PairwiseResult:
    """Barriers and weight distances among copies of one ticket trained with `seeds`."""

    def compute() -> PairwiseResult:
        nets = [study.network(method, level, s) for s in seeds]
        return pairwise(
            nets,
            study.test_data,
            alphas,
            mask=study.mask(method, level),
            labels=[f"seed {s}" for s in seeds],
            bn_data=study.train_data,
            progress=study.progress,
        )

    args = {"method": method, "round": level, "seeds": tuple(seeds), "alphas": alphas}
    return cached(
        study, "pairwise", args, compute, PairwiseResult.to_dict, PairwiseResult.from_dict
    )
