"""Is a barrier, an accuracy, or the difference of two, larger than its noise?

A measured mean carries two kinds of noise: SGD noise (another pair of copies gives another
barrier: the spread over runs, √(s²/m) for m runs) and the test set's finite size. For an
accuracy, the test set's part is the binomial standard error √(p(1 − p)/n) on n images. A
barrier compares networks on the *same* images, so most of that cancels: what remains is the
error of a paired difference, √(d/n) where d is the fraction of images on which the peak
network and the ends disagree; d is at least the barrier itself (and one image, 1/n), which
`barrier_estimate` uses, a lower bound that the spread over pairs usually exceeds.
`Measurement` holds a mean with both parts in quadrature; `compare` calls a difference real only
beyond `z` standard errors, and says "not separable at this scale" otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lmc_toolkit.connectivity.instability_result import Instability

#: how many standard errors make a difference real (two-sided, about 95%)
Z = 2.0


@dataclass(frozen=True)
class Measurement:
    """A mean over `samples` runs, with its standard error (the spread over runs and the test
    set's part on `test_images` images, in quadrature)."""

    value: float
    stderr: float
    samples: int
    test_images: int

    def format(self, scale: float = 100.0, unit: str = "points") -> str:
        return f"{scale * self.value:.1f} ± {scale * self.stderr:.1f} {unit}"


def estimate(values: Sequence[float], test_stderr: float, test_images: int) -> Measurement:
    """The mean of `values` (one per run) with its standard error: the spread over the runs
    (ddof = 1; none for one run) and `test_stderr`, the test set's part, in quadrature."""
    v = np.asarray(values, float)
    if v.size == 0:
        raise ValueError("an estimate needs at least one value")
    if not isinstance(test_images, int) or test_images < 1:
        raise ValueError(f"test_images must be a positive int, got {test_images!r}")
    spread = float(v.std(ddof=1)) / math.sqrt(v.size) if v.size > 1 else 0.0
    return Measurement(float(v.mean()), math.hypot(spread, test_stderr), int(v.size), test_images)


def binomial_stderr(rate: float, n: int) -> float:
    """The standard error of a rate measured on n images (at least one image's worth)."""
    p = min(max(float(rate), 0.0), 1.0)
    return math.sqrt(max(p * (1 - p), 1.0 / n) / n)


def paired_stderr(difference: float, n: int) -> float:
    """The standard error of a difference of two rates on the same n images when they disagree
    on |difference| of them (the fewest possible; at least one image)."""
    return math.sqrt(max(abs(float(difference)), 1.0 / n) / n)


def barrier_estimate(
    result: Instability, metric: str = "error", floor: float | None = None
) -> Measurement:
    """The mean barrier over `result`'s pairs with its standard error.

    Args:
        result: An instability analysis.
        metric: `"error"` (its test set part is `paired_stderr`) or `"loss"` (none).
        floor: Leave out the pairs with a copy below this test accuracy (`failed_pairs`): their
            barrier says nothing about SGD noise.

    Returns:
        A `Measurement` of the mean barrier over the pairs kept.
    """
    if metric not in ("error", "loss"):
        raise ValueError(f"metric must be 'error' or 'loss', got {metric!r}")
    values = list(result.error_barriers if metric == "error" else result.loss_barriers)
    if floor is not None:
        failed = set(failed_pairs(result, floor))
        values = [v for p, v in zip(result.pairs, values, strict=True) if p not in failed]
        if not values:
            raise ValueError(f"every pair has a copy below the accuracy floor {floor}")
    n = _test_images(result)
    test = paired_stderr(float(np.mean(values)), n) if metric == "error" else 0.0
    return estimate(values, test, n)


def accuracy_estimate(result: Instability) -> Measurement:
    """The copies' mean test accuracy (the ends of their curves) with its standard error.

    Args:
        result: An instability analysis.

    Returns:
        A `Measurement`: the mean and a standard error combining the spread over copies with the
        test set's binomial part.
    """
    accs = list(result.meta["child_accuracy"].values())
    n = _test_images(result)
    return estimate(accs, binomial_stderr(float(np.mean(accs)), n), n)


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


def failed_pairs(result: Instability, floor: float) -> list[tuple[int, int]]:
    """The pairs with a copy whose test accuracy is below `floor`."""
    low = set(untrained(result, floor))
    return [p for p in result.pairs if low & set(p)]


def peaks_inside(result: Instability) -> int:
    """How many pairs have their highest error strictly inside the path (a bump), not at an
    endpoint (where the mean-of-endpoints barrier only measures the ends' difference)."""
    return sum(0.0 < c.barrier("error").alpha < 1.0 for c in result.curves)


def _test_images(result: Instability) -> int:
    return int(result.curves[0].meta["n"])
