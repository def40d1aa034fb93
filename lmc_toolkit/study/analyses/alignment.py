"""F9: linear mode connectivity modulo permutation.

Each pair is one method at one sparsity trained from two *different* initializations θ0 (same
recipe, same data seed): the straight line between them, before and after permuting the second
network's hidden units onto the first's (`lmc_toolkit.connectivity.aligned`), and after REPAIR's
renormalization of the aligned path; with the IoU of their masks before and after alignment.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lmc_toolkit.alignment.spec import permutation_spec
from lmc_toolkit.connectivity.aligned import ALIGN_METHODS, AlignedCurve
from lmc_toolkit.connectivity.interpolation import interpolate
from lmc_toolkit.study.analyses.cache import cached
from lmc_toolkit.study.runs import Study, subsample

STAGES = ("before", "after", "repaired")


def aligned_curve(
    study: Study,
    method: str,
    round: int,
    data_seed: int,
    other_init: int | None = None,
    align: str = "weights",
    alphas: int = 11,
    images: int = 1000,
) -> AlignedCurve:
    """The ticket of `method` at `round` (data seed `data_seed`) from the study's θ0 and from
    init seed `other_init` (default: the study's + 1), interpolated on the test data before
    and after aligning the second onto the first by `align` ("weights" or "activations"),
    and after REPAIR. Activations and REPAIR's statistics come from `images` training images."""
    if align not in ALIGN_METHODS[1:]:
        raise ValueError(f"align must be one of {ALIGN_METHODS[1:]}, got {align!r}")
    other_init = study.config.init_seed + 1 if other_init is None else other_init
    if other_init == study.config.init_seed:
        raise ValueError(f"other_init={other_init} is the study's own init seed; pick another")
    other = study.with_init(other_init)

    def compute() -> AlignedCurve:
        a = study.network(method, round, data_seed)
        b = other.network(method, round, data_seed)
        sparsity = 0.0 if method == "dense" else study.config.sparsity(round)
        return interpolate(
            a,
            b,
            study.test_data,
            alphas,
            masks=(study.mask(method, round), other.mask(method, round)),
            align=align,
            align_data=subsample(study.train_data, images),
            bn_data=study.train_data,
            repair=True,
            label=f"{method} {sparsity:.0%}",
            progress=study.progress,
        )  # type: ignore[return-value]

    args = {
        "method": method, "round": round, "data_seed": data_seed, "other_init": other_init,
        "align": align, "alphas": alphas, "images": images,
    }  # fmt: skip
    return cached(
        study, "aligned", args, compute, AlignedCurve.to_dict,
        lambda d: AlignedCurve.from_dict(d, permutation_spec(study.model0)),
    )  # fmt: skip


@dataclass(frozen=True)
class AlignedRow:
    """One method at one sparsity, over its pairs from two initializations (one pair per data
    seed): the error and loss barriers before alignment, after it and after REPAIR (mean and
    sample standard deviation over pairs; 0 for a single pair), the test-set resolution of
    one barrier (`noise`: the binomial standard error of the error rate at the highest point
    before alignment, the largest over pairs), the masks' IoU before and after alignment
    (None for dense), the mean error of the pairs' ends, and how many layers REPAIR corrected
    (0 when every hidden unit meets a norm layer, which renormalizes it already: REPAIR then
    changes nothing)."""

    method: str
    round: int
    sparsity: float
    pairs: int
    error_barrier: dict[str, float]
    error_barrier_std: dict[str, float]
    loss_barrier: dict[str, float]
    noise: float
    iou_before: float | None
    iou_after: float | None
    end_error: float
    repaired_layers: int

    def reduction(self) -> float:
        """How much weight matching lowers the error barrier (before − after)."""
        return self.error_barrier["before"] - self.error_barrier["after"]

    def separable(self) -> bool:
        """Whether the reduction stands out of the noise: more than twice the larger of the
        spread over pairs and the test-set resolution."""
        spread = max(self.error_barrier_std["before"], self.error_barrier_std["after"])
        return abs(self.reduction()) > 2 * max(spread, self.noise)

    def verdict(self) -> str:
        """ "lower" or "higher" when alignment's change stands out of the noise (`separable`),
        else "not separable"."""
        if not self.separable():
            return "not separable"
        return "lower" if self.reduction() > 0 else "higher"

    def to_dict(self) -> dict[str, object]:
        return {**vars(self), "reduction": self.reduction(), "separable": self.separable()}


def aligned_barrier_table(
    study: Study,
    other_init: int | None = None,
    align: str = "weights",
    data_seeds: Sequence[int] | None = None,
    methods: Sequence[str] | None = None,
    alphas: int = 11,
    images: int = 1000,
) -> list[AlignedRow]:
    """`aligned_curve` for every method (default: all) at every ticket round and data seed
    (default: the study's), summarized per method and sparsity (figure F9)."""
    c = study.config
    seeds = tuple(c.data_seeds if data_seeds is None else data_seeds)
    methods = tuple(c.methods if methods is None else methods)
    unknown = [m for m in methods if m not in c.methods]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r}; methods: {c.methods}")
    if not seeds:
        raise ValueError("data_seeds is empty: a barrier needs at least one pair")
    rows = []
    for method in methods:
        for r in (0,) if method == "dense" else c.ticket_rounds:
            curves = [
                aligned_curve(study, method, r, s, other_init, align, alphas, images) for s in seeds
            ]
            rows.append(summarize(method, r, 0.0 if method == "dense" else c.sparsity(r), curves))
    return rows


def summarize(
    method: str, round: int, sparsity: float, curves: Sequence[AlignedCurve]
) -> AlignedRow:
    """One `AlignedRow` from the pairs' aligned curves."""
    error: dict[str, list[float]] = {k: [] for k in STAGES}
    loss: dict[str, list[float]] = {k: [] for k in STAGES}
    noise, ends = 0.0, []
    for curve in curves:
        for k, v in curve.barriers("error").items():
            error[k].append(v)
        for k, v in curve.barriers("loss").items():
            loss[k].append(v)
        peak = float(np.max(curve.before.error))
        noise = max(noise, math.sqrt(peak * (1 - peak) / curve.before.meta["n"]))
        ends += [float(curve.before.error[0]), float(curve.before.error[-1])]
    ious = [cv.mask_iou for cv in curves if cv.mask_iou is not None]
    return AlignedRow(
        method=method,
        round=round,
        sparsity=sparsity,
        pairs=len(curves),
        error_barrier={k: float(np.mean(v)) for k, v in error.items() if v},
        error_barrier_std={k: spread(v) for k, v in error.items() if v},
        loss_barrier={k: float(np.mean(v)) for k, v in loss.items() if v},
        noise=noise,
        iou_before=float(np.mean([i[0] for i in ious])) if ious else None,
        iou_after=float(np.mean([i[1] for i in ious])) if ious else None,
        end_error=float(np.mean(ends)),
        repaired_layers=max(
            (len(cv.repaired.meta.get("repaired_layers", ())) for cv in curves if cv.repaired),
            default=0,
        ),
    )


def spread(values: Sequence[float]) -> float:
    """The sample standard deviation (NaN for fewer than two values)."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
