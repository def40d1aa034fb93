"""Linear mode connectivity: `interpolate -> Curve` (with its barriers), `pairwise` among many
solutions, and instability analysis (`instability`, `instability_vs_k`)."""

from lmc_toolkit.connectivity.instability_analysis import (
    Instability,
    InstabilityCurve,
    instability,
    instability_vs_k,
)
from lmc_toolkit.connectivity.interpolation import PairwiseResult, alpha_grid, interpolate, pairwise
from lmc_toolkit.landscape.curve import Barrier, Curve

__all__ = [
    "Barrier",
    "Curve",
    "Instability",
    "InstabilityCurve",
    "PairwiseResult",
    "alpha_grid",
    "instability",
    "instability_vs_k",
    "interpolate",
    "pairwise",
]
