"""Linear mode connectivity: `interpolate -> Curve` (with its barriers; with `align=`, an
`AlignedCurve` before and after permutation alignment), `pairwise` among many solutions, and
instability analysis (`instability`, `instability_vs_k`), and judging barriers against their
noise (`barrier_estimate`, `accuracy_estimate`, `compare`, `untrained`, `peaks_inside`), and
the intervals the study's verdicts read, from each curve's per-image evidence (`Interval`,
`barrier_interval`, `barrier_difference`, `accuracy_difference`, `disjoint_pairs`)."""

from lmc_toolkit.connectivity.aligned import ALIGN_METHODS, AlignedCurve
from lmc_toolkit.connectivity.instability_analysis import instability, instability_vs_k
from lmc_toolkit.connectivity.instability_result import Instability, InstabilityCurve
from lmc_toolkit.connectivity.interpolation import alpha_grid, interpolate
from lmc_toolkit.connectivity.intervals import (
    Interval,
    accuracy_difference,
    barrier_difference,
    barrier_interval,
    disjoint_pairs,
)
from lmc_toolkit.connectivity.noise import (
    Measurement,
    accuracy_estimate,
    barrier_estimate,
    binomial_stderr,
    compare,
    estimate,
    failed_pairs,
    paired_stderr,
    peaks_inside,
    untrained,
)
from lmc_toolkit.connectivity.pairwise import PairwiseResult, pairwise
from lmc_toolkit.landscape.curve import Barrier, Curve

__all__ = [
    "ALIGN_METHODS",
    "AlignedCurve",
    "Barrier",
    "Curve",
    "Instability",
    "InstabilityCurve",
    "Interval",
    "Measurement",
    "PairwiseResult",
    "accuracy_difference",
    "accuracy_estimate",
    "alpha_grid",
    "barrier_difference",
    "barrier_estimate",
    "barrier_interval",
    "binomial_stderr",
    "compare",
    "disjoint_pairs",
    "estimate",
    "failed_pairs",
    "instability",
    "instability_vs_k",
    "interpolate",
    "paired_stderr",
    "pairwise",
    "peaks_inside",
    "untrained",
]
