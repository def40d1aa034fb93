"""F2, F6 and F8: interpolation between copies of one ticket trained with different data seeds,
the barrier table of every method and sparsity, and pairwise barriers among several seeds.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from lmc_toolkit.connectivity.interpolation import PairwiseResult, interpolate, pairwise
from lmc_toolkit.landscape.curve import Curve
from lmc_toolkit.study.analyses.cache import cached, study_data
from lmc_toolkit.study.runs import StudyRuns


def curve(
    study: StudyRuns,
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
            study_data(study, data),
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
    """One method at one sparsity: barriers between copies trained with different data seeds
    (the mean over every pair of the study's data seeds, their standard deviation, NaN for one
    pair), its test accuracy, and the test images behind both (the resolution: one image)."""

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


def barrier_table(study: StudyRuns, alphas: int = 11, data: str = "test") -> list[BarrierRow]:
    """Barrier and accuracy for every method at every ticket round (F2's right panel, F6),
    over every pair of data seeds."""
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
                )
            )
    return rows


def pairwise_seeds(
    study: StudyRuns, method: str, round: int, seeds: Sequence[int], alphas: int = 11
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
