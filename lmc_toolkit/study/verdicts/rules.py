"""The claims' pre-registered thresholds and decision rules, versioned in one place.

Every verdict of `lmc_toolkit.study.verdicts.claims` reads a confidence interval
(`lmc_toolkit.connectivity.intervals`) against a threshold, one rule for every claim:

- **holds** when the whole interval lies on the claim's side of its threshold;
- **does not hold** when the whole interval lies on the other side;
- **not separable at this scale** when the interval straddles the threshold;
- **not judged** when the interval has no SGD-noise part (one replicate: one seed pair, one
  network per method), and the verdict says so instead of judging;
- **not tested at this preset** when the figures it needs were not made.

`claims.md` prints `rules_hash()`, a hash of the thresholds and the rule texts below: a changed
rule changes the hash, so a report says which rules judged it. Bump `RULES_VERSION` with any
change here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Literal

from lmc_toolkit.connectivity.intervals import Interval

RULES_VERSION = "2"

HOLDS, FAILS, UNSEPARABLE, UNJUDGED, UNTESTED = (
    "holds",
    "does not hold",
    "not separable at this scale",
    "not judged: no SGD-noise estimate",
    "not tested at this preset",
)

Side = Literal["below", "above"]


@dataclass(frozen=True)
class Thresholds:
    """The numbers the verdicts use, and why."""

    #: Frankle et al. (2020) call a network stable to SGD noise when the error barrier between
    #: two copies is within 2% (their "matching"/"stable" convention).
    stable_barrier: float = 0.02
    #: "Competes with IMP" (non-inferiority): the accuracy gap's lower bound at most 1 point
    #: below IMP's at the same sparsity.
    matching_gap: float = 0.01
    #: "Comparable performance ratio" (claim 6): the ratio gap's lower bound at most 0.01 below.
    ratio_gap: float = 0.01
    #: "Far fewer training points": the study counts distinct dataset points per pruning round
    #: (~150x at CIFAR-10 scale); at least an order of magnitude.
    fewer_points: float = 10.0
    #: Confidence level of every interval.
    level: float = 0.95
    #: Test-image resamples behind each interval's test-set part.
    resamples: int = 1000
    #: The barrier that decides: above the straight line between the two ends' errors. The
    #: mean-of-ends barrier (Frankle et al.'s) also carries half the ends' error gap, which
    #: is on the scale of the 2% threshold when the two copies differ in accuracy.
    barrier_baseline: Literal["linear", "mean"] = "linear"
    #: The sparsities at which the study draws its trade-off (claim 6).
    tradeoff_sparsities: tuple[float, ...] = (0.60, 0.87)


THRESHOLDS = Thresholds()

RULES = {
    "C1": "per sparsity, the accuracy gap (distilled − IMP, mean over data seeds) competes when "
    "its interval's lower bound ≥ −matching_gap, fails when its upper bound < −matching_gap; "
    "and IMP's distinct dataset points per round / distilled's ≥ fewer_points",
    "C2": "per sparsity, holds when the synthetic barrier's interval ≤ stable_barrier and IMP's "
    "> stable_barrier, fails when the synthetic one is wholly above or IMP's wholly at or below; "
    "needs the dense barrier wholly above stable_barrier",
    "C3": "per sparsity, the mean exact Hessian diagonal per kept weight (distilled − IMP, over "
    "networks trained with different data seeds, each on its own batch) holds when its "
    "interval is below 0, fails when above 0",
    "C4": "the plane's slice barriers along both segments of its four copies (two disjoint "
    "pairs): dense and IMP separate (interval > stable_barrier), synthetic one basin "
    "(interval ≤ stable_barrier)",
    "C5": "compare C2 across reports of different datasets",
    "C6": "per target sparsity, holds when the barrier difference (synthetic − IMP) is wholly "
    "below 0 and the performance-ratio gap's lower bound ≥ −ratio_gap; fails when the "
    "barrier difference is wholly above 0 or the ratio gap's upper bound < −ratio_gap",
    "combine": "several comparisons: any failure fails; all holding holds; any not judged "
    "(and none failed) is not judged; else not separable",
}


def rules_hash(t: Thresholds = THRESHOLDS) -> str:
    """A short hash of the thresholds and rules (printed in claims.md)."""
    text = json.dumps(
        {"version": RULES_VERSION, "thresholds": asdict(t), "rules": RULES}, sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def read(iv: Interval, threshold: float, holds: Side) -> str:
    """The verdict of one interval against `threshold` when the claim holds on side `holds`."""
    if not iv.judged:
        return UNJUDGED
    side = iv.side(threshold)
    if side == "straddles":
        return UNSEPARABLE
    return HOLDS if side == holds else FAILS


def what_would_change(iv: Interval, threshold: float, holds: Side, scale: float = 100.0) -> str:
    """What result would have changed this reading (the interval end that decides it)."""
    f = lambda v: f"{scale * v:.2f}"  # noqa: E731
    verdict = read(iv, threshold, holds)
    if verdict == UNJUDGED:
        return "a second disjoint replicate (an SGD-noise estimate)"
    other: Side = "above" if holds == "below" else "below"
    if verdict == UNSEPARABLE:
        near, far = (iv.high, iv.low) if holds == "below" else (iv.low, iv.high)
        return (
            f"holds if the {_end(holds)} bound passed {f(threshold)} (now {f(near)}); "
            f"fails if the {_end(other)} bound passed it (now {f(far)})"
        )
    edge = iv.high if (verdict == HOLDS) == (holds == "below") else iv.low
    return f"not separable if the {'upper' if edge == iv.high else 'lower'} bound crossed {f(threshold)} (now {f(edge)})"


def _end(side: Side) -> str:
    """The bound that must cross the threshold for the interval to lie on `side`."""
    return "upper" if side == "below" else "lower"


def combine(outcomes: list[str]) -> str:
    """One verdict from several comparisons (`RULES["combine"]`)."""
    if not outcomes:
        return UNTESTED
    if FAILS in outcomes:
        return FAILS
    if all(o == HOLDS for o in outcomes):
        return HOLDS
    return UNJUDGED if UNJUDGED in outcomes else UNSEPARABLE
