"""Confidence intervals for barriers and accuracies that hold at a handful of seed pairs.

A barrier measured between SGD-noise copies carries two kinds of noise:

- **SGD noise**: another pair of copies gives another barrier. It is estimated only from the
  spread over *disjoint* pairs (no data seed in two of them: pairs that share a seed are
  correlated, and their spread understates the noise), as the t interval of a mean on
  m − 1 degrees of freedom. One pair gives no estimate of it: such an interval is marked
  `judged = False`, and a verdict read from it says so instead of judging.
- **The test set's finite size**: every network is scored on the same n images. From the
  per-image evidence every interpolation curve keeps (`Curve.correct`: which images each
  network along the path gets right), the test images are resampled with replacement, the
  same resample for every curve compared, and the whole statistic is recomputed in each
  resample, the argmax over α included (so the maximum's selection over the α grid is part of
  the spread). The standard deviation over resamples is the test set's part.

The two parts add in quadrature, each times its own quantile (t on m − 1 degrees of freedom for
the spread, normal for the resamples). The spread over pairs already holds the part of the
test-set noise that differs between pairs, so that part is counted twice and the interval errs
on the wide side where the test set's noise is comparable to SGD noise; the coverage test in
`tests/test_intervals.py` measures it on made-up pairs with a known barrier (about 95% where SGD
noise dominates or with one pair and no SGD noise, up to 99% in between).
Differences between two methods (IMP − distilled, say) use the same resample of images for
both sides and Welch's degrees of freedom for the two spreads.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy import stats

from lmc_toolkit.landscape.curve import Curve, bumps

#: the default confidence level of every interval
LEVEL = 0.95
#: test-image resamples per interval (the test part's standard error is good to ~2%)
RESAMPLES = 1000
SIDES = ("below", "above", "straddles")


@dataclass(frozen=True)
class Interval:
    """An estimate with its `level` confidence interval [low, high].

    `replicates` is the number of disjoint replicates behind the SGD-noise part (the smaller
    side's, for a difference), `df` the t quantile's degrees of freedom (None when there is no
    SGD-noise estimate: one replicate); `sgd_stderr` and `test_stderr` are the two parts of
    the standard error, `stderr` their sum in quadrature.
    """

    value: float
    low: float
    high: float
    level: float
    replicates: int
    df: float | None
    sgd_stderr: float
    test_stderr: float

    @property
    def stderr(self) -> float:
        sgd = 0.0 if math.isnan(self.sgd_stderr) else self.sgd_stderr
        return math.hypot(sgd, self.test_stderr)

    @property
    def judged(self) -> bool:
        """Whether the interval has an SGD-noise part (at least two disjoint replicates)."""
        return self.df is not None

    def side(self, threshold: float) -> str:
        """ "below" when the whole interval is at or below `threshold`, "above" when it is
        wholly above it, "straddles" otherwise."""
        if self.high <= threshold:
            return "below"
        if self.low > threshold:
            return "above"
        return "straddles"

    def format(
        self, scale: float = 100.0, unit: str = "%", digits: int = 2, of: str = "disjoint pairs"
    ) -> str:
        """ "value [low, high] (how many `of`, df)" in `unit` after multiplying by `scale`."""
        f = f"{{:.{digits}f}}"
        lo, hi = f.format(scale * self.low), f.format(scale * self.high)
        core = f"{f.format(scale * self.value)}{unit} [{lo}, {hi}]"
        if self.judged:
            return f"{core} ({self.replicates} {of}, df {self.df:.1f})"
        return f"{core} (test set only)"

    def scaled(self, factor: float) -> Interval:
        """The same interval for `factor` × the quantity (factor > 0)."""
        f = float(factor)
        return replace(
            self,
            value=f * self.value, low=f * self.low, high=f * self.high,
            sgd_stderr=f * self.sgd_stderr, test_stderr=f * self.test_stderr,
        )  # fmt: skip

    def to_dict(self) -> dict[str, float | int | None]:
        out = dict(vars(self))
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in out.items()
        }


def disjoint_pairs(seeds: Sequence[int]) -> list[tuple[int, int]]:
    """Consecutive seeds paired, each seed in one pair: (0, 1), (2, 3), ... (an odd one out is
    left out)."""
    seeds = list(seeds)
    return [(seeds[i], seeds[i + 1]) for i in range(0, len(seeds) - 1, 2)]


@functools.lru_cache(maxsize=4)
def image_weights(n: int, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """(resamples, n) counts: how often each of n test images is drawn in each resample with
    replacement (a torch.Generator seeded by `seed`). Kept for the last few (n, resamples,
    seed): every interval of one report draws the same resamples. Read-only."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not isinstance(resamples, int) or resamples < 2:
        raise ValueError(f"resamples must be an int ≥ 2, got {resamples!r}")
    g = torch.Generator().manual_seed(int(seed))
    picks = torch.randint(n, (resamples, n), generator=g)
    counts = torch.zeros(resamples, n, dtype=torch.float64)
    counts.scatter_add_(1, picks, torch.ones_like(picks, dtype=torch.float64))
    out = counts.numpy()
    out.flags.writeable = False
    return out


def evidence(curve: Curve) -> np.ndarray:
    """The curve's per-image evidence (len(alphas) x n bool), or a clear error without it."""
    if curve.correct is None:
        raise ValueError(
            f"curve {curve.label!r} keeps no per-image evidence (computed before it was "
            "recorded): interpolate again to get intervals from it"
        )
    return np.asarray(curve.correct, bool)


def resampled_errors(curve: Curve, weights: np.ndarray) -> np.ndarray:
    """(resamples, len(alphas)): the curve's error at each α in each resample of its images."""
    right = evidence(curve)
    if right.shape[1] != weights.shape[1]:
        raise ValueError(
            f"curve {curve.label!r} was scored on {right.shape[1]} images, the resamples "
            f"draw from {weights.shape[1]}: every curve compared must share its test images"
        )
    return 1.0 - weights @ right.T.astype(np.float64) / right.shape[1]


def resampled_barriers(
    curves: Sequence[Curve], weights: np.ndarray, baseline: str = "linear"
) -> np.ndarray:
    """(resamples, len(curves)): each curve's error barrier in each resample of the test
    images (the same resample for every curve; the argmax over α redone in each)."""
    return np.stack(
        [bumps(resampled_errors(c, weights), c.alphas, baseline)[0] for c in curves], axis=1
    )


def resampled_accuracy(curves: Sequence[Curve], weights: np.ndarray) -> np.ndarray:
    """(resamples, len(curves)): each curve's mean accuracy of its two end networks in each
    resample of the test images."""
    columns = []
    for c in curves:
        ends = [int(np.argmin(np.abs(c.alphas - e))) for e in (0.0, 1.0)]
        right = evidence(c)[ends]  # only the two end networks are scored
        columns.append((weights @ right.T.astype(np.float64)).mean(axis=1) / right.shape[1])
    return np.stack(columns, axis=1)


def interval(
    value: float,
    groups: Sequence[Sequence[float]],
    resampled: np.ndarray | None,
    level: float = LEVEL,
) -> Interval:
    """The interval of `value`, a signed sum of the groups' means (one group: a mean; two: a
    difference). Its variance is the groups' variances over their replicate counts
    (their spread, ddof 1) plus the variance of `resampled`, the statistic over resamples of
    the test images. The half-width adds the two parts in quadrature, each times its own quantile:
    the SGD part's t on its degrees of freedom (m − 1 for one group, Welch's for two), the
    test set's part's normal (it comes from a thousand resamples). With one replicate in a group there is no SGD-noise estimate: the
    interval is the test set's alone (normal quantile) and `judged` is False."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    sizes = [len(g) for g in groups]
    if not sizes or min(sizes) < 1:
        raise ValueError("an interval needs at least one replicate in every group")
    test_var = float(np.var(resampled, ddof=1)) if resampled is not None else 0.0
    z = float(stats.norm.ppf((1 + level) / 2))
    sgd, df, q = math.nan, None, z
    if min(sizes) >= 2:
        parts = [float(np.var(g, ddof=1)) / len(g) for g in groups]
        spread_df = sum(p**2 / (len(g) - 1) for p, g in zip(parts, groups, strict=True))
        df = sum(parts) ** 2 / spread_df if spread_df > 0 else float(min(sizes) - 1)
        q = float(stats.t.ppf((1 + level) / 2, df))
        sgd = math.sqrt(sum(parts))
    # each part scaled by its own quantile: the SGD part's t on few replicates, the test
    # set's normal (a thousand resamples of a thousand images)
    half = math.hypot(q * (0.0 if math.isnan(sgd) else sgd), z * math.sqrt(test_var))
    test = math.sqrt(test_var)
    return Interval(float(value), value - half, value + half, level, min(sizes), df, sgd, test)


def barrier_interval(
    curves: Sequence[Curve],
    *,
    baseline: str = "linear",
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Interval:
    """The mean error barrier of `curves` (one per disjoint pair of copies) with its interval.

    Args:
        curves: One curve per disjoint pair, each keeping its per-image evidence.
        baseline: `"linear"` or `"mean"` (see `barrier_difference`).
        level: The interval's confidence level.
        resamples: Resamples of the test images for the test set's part.
        seed: Seeds the resampling.

    Returns:
        An `Interval`: the mean, its bounds, and the spread over pairs and the test set's part.
    """
    curves = list(curves)
    if not curves:
        raise ValueError("barrier_interval needs at least one curve")
    values = [c.barrier("error", baseline).value for c in curves]
    weights = image_weights(evidence(curves[0]).shape[1], resamples, seed)
    boot = resampled_barriers(curves, weights, baseline)
    return interval(float(np.mean(values)), [values], boot.mean(axis=1), level)


def barrier_difference(
    curves_a: Sequence[Curve],
    curves_b: Sequence[Curve],
    *,
    baseline: str = "linear",
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Mean barrier of `curves_a` minus that of `curves_b` (networks scored on the same test
    images), with its interval.

    Args:
        curves_a: One curve per disjoint pair of copies of the first method.
        curves_b: The same for the second.
        baseline: `"linear"` (above the straight line between the ends) or `"mean"` (above the
            mean of the ends).
        level: The interval's confidence level.
        resamples: Resamples of the test images for the test set's part.
        seed: Seeds the resampling.

    Returns:
        An `Interval` of the difference.
    """
    a = [c.barrier("error", baseline).value for c in curves_a]
    b = [c.barrier("error", baseline).value for c in curves_b]
    if not a or not b:
        raise ValueError("barrier_difference needs at least one curve on each side")
    weights = image_weights(evidence(curves_a[0]).shape[1], resamples, seed)
    boot_a = resampled_barriers(curves_a, weights, baseline)
    boot_b = resampled_barriers(curves_b, weights, baseline)
    diff = boot_a.mean(axis=1) - boot_b.mean(axis=1)
    return interval(float(np.mean(a) - np.mean(b)), [a, b], diff, level)


def accuracy_difference(
    accuracies_a: Sequence[float],
    accuracies_b: Sequence[float],
    curves_a: Sequence[Curve] = (),
    curves_b: Sequence[Curve] = (),
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Mean accuracy over the replicates `accuracies_a` minus that over `accuracies_b`, with its
    interval.

    Args:
        accuracies_a: One test accuracy per replicate of the first method.
        accuracies_b: The same for the second.
        curves_a: Curves whose end networks are those replicates, scored image by image: the
            test set's part of the interval comes from them (left out without curves on both
            sides).
        curves_b: The same for the second method.
        level: The interval's confidence level.
        resamples: Resamples of the test images for the test set's part.
        seed: Seeds the resampling.

    Returns:
        An `Interval`: the difference, its bounds and the parts they combine.
    """
    a, b = list(accuracies_a), list(accuracies_b)
    if not a or not b:
        raise ValueError("accuracy_difference needs at least one accuracy on each side")
    if not (curves_a and curves_b):
        return interval(float(np.mean(a) - np.mean(b)), [a, b], None, level)
    weights = image_weights(evidence(curves_a[0]).shape[1], resamples, seed)
    boot = resampled_accuracy(curves_a, weights).mean(axis=1) - resampled_accuracy(
        curves_b, weights
    ).mean(axis=1)
    return interval(float(np.mean(a) - np.mean(b)), [a, b], boot, level)
