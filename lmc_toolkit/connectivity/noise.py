"""Is a barrier, an accuracy, or the difference of two, larger than its noise?

A measured barrier carries two kinds of noise: SGD noise (another pair of copies gives another
barrier: the spread over pairs) and the test set's finite size (an error rate measured on n
images has the binomial standard error √(e(1 − e)/n); one image is 1/n of error). `Measurement`
holds a mean with both combined in quadrature; `compare` calls a difference real only beyond
`z` standard errors, and says "not separable at this scale" otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lmc_toolkit.connectivity.instability_analysis import Instability
from lmc_toolkit.landscape.curve import Curve

#: how many standard errors make a difference real (two-sided, about 95%)
Z = 2.0


@dataclass(frozen=True)
class Measurement:
    """A mean over `samples` runs, with its standard error: the spread over runs (when there
    are several) and the test set's binomial error on `test_images`, in quadrature."""

    value: float
    stderr: float
    samples: int
    test_images: int

    def format(self, scale: float = 100.0, unit: str = "points") -> str:
        return f"{scale * self.value:.1f} ± {scale * self.stderr:.1f} {unit}"


def estimate(values: Sequence[float], rate: float | None, test_images: int) -> Measurement:
    """The mean of `values` (one per run) with its standard error; `rate` is the error (or
    accuracy) rate whose binomial error on `test_images` images the mean carries (at least one
    image's worth, 1/n), None for a quantity without one (a loss)."""
    v = np.asarray(values, float)
    if v.size == 0:
        raise ValueError("an estimate needs at least one value")
    if not isinstance(test_images, int) or test_images < 1:
        raise ValueError(f"test_images must be a positive int, got {test_images!r}")
    spread = float(v.std(ddof=1)) / math.sqrt(v.size) if v.size > 1 else 0.0
    binomial = 0.0
    if rate is not None:
        p = min(max(float(rate), 0.0), 1.0)
        binomial = math.sqrt(max(p * (1 - p), 1.0 / test_images) / test_images)
    return Measurement(float(v.mean()), math.hypot(spread, binomial), int(v.size), test_images)


def barrier_estimate(result: Instability, metric: str = "error") -> Measurement:
    """The mean barrier over `result`'s pairs with its standard error (the error rate at each
    pair's peak sets the binomial part)."""
    if metric not in ("error", "loss"):
        raise ValueError(f"metric must be 'error' or 'loss', got {metric!r}")
    values = result.error_barriers if metric == "error" else result.loss_barriers
    peaks = [_peak_error(c) for c in result.curves]
    rate = float(np.mean(peaks)) if metric == "error" else None
    return estimate(values, rate, _test_images(result))


def accuracy_estimate(result: Instability) -> Measurement:
    """The copies' mean test accuracy (the ends of their curves) with its standard error."""
    accs = list(result.meta["child_accuracy"].values())
    return estimate(accs, float(np.mean(accs)), _test_images(result))


def compare(a: Measurement, b: Measurement, names: tuple[str, str], z: float = Z) -> str:
    """A sentence that orders `a` and `b` when they differ by more than `z` standard errors of
    their difference, and says "not separable at this scale" when they do not."""
    diff = a.value - b.value
    se = math.hypot(a.stderr, b.stderr)
    detail = f"difference {100 * diff:+.1f} ± {100 * se:.1f} points"
    if abs(diff) <= z * se:
        return f"{names[0]} and {names[1]}: not separable at this scale ({detail})"
    low, high = names if diff < 0 else names[::-1]
    return f"{low} is lower than {high} ({detail}, {abs(diff) / se:.1f} standard errors)"


def untrained(result: Instability, floor: float) -> list[int]:
    """The data seeds of copies whose test accuracy is below `floor` (they did not train)."""
    return [int(s) for s, a in result.meta["child_accuracy"].items() if a < floor]


def peaks_inside(result: Instability) -> int:
    """How many pairs have their highest error strictly inside the path (a bump), not at an
    endpoint (where the mean-of-endpoints barrier only measures the ends' difference)."""
    return sum(0.0 < c.barrier("error").alpha < 1.0 for c in result.curves)


def _peak_error(curve: Curve) -> float:
    """The highest error on the path: the barrier plus the mean of the two ends."""
    ends = (
        curve.error[np.argmin(np.abs(curve.alphas))],
        curve.error[np.argmin(np.abs(curve.alphas - 1))],
    )
    return curve.barrier("error").value + float(np.mean(ends))


def _test_images(result: Instability) -> int:
    return int(result.curves[0].meta["n"])
