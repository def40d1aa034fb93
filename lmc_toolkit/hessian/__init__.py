"""Curvature: the `Hessian` operator (masks, layer selection, BatchNorm policy) and its
stand-ins `GGN` and `EmpiricalFisher`, top eigenvalues, spectral density (SLQ), trace
estimators, and the diagonal (exact and estimated)."""

from lmc_toolkit.hessian.curvature_operators import GGN, EmpiricalFisher
from lmc_toolkit.hessian.diagonal_estimators import Diagonal, diagonal
from lmc_toolkit.hessian.operator import Hessian
from lmc_toolkit.hessian.spectrum import Eigen, Spectrum, density, top_eigenvalues
from lmc_toolkit.hessian.trace_estimators import Estimate, estimate_trace, trace

__all__ = [
    "GGN",
    "Diagonal",
    "Eigen",
    "EmpiricalFisher",
    "Estimate",
    "Hessian",
    "Spectrum",
    "density",
    "diagonal",
    "estimate_trace",
    "top_eigenvalues",
    "trace",
]
