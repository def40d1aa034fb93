"""Curvature: the `Hessian` operator (masks, layer selection, BatchNorm policy) and its
stand-ins `GGN` and `EmpiricalFisher` (all three `NetworkOperator`s), top eigenvalues, spectral density (SLQ), trace
estimators, and the diagonal (exact and estimated); every estimator also takes any symmetric
`LinearMap` (a scipy or curvlinops operator, a matrix, a function)."""

from lmc_toolkit.hessian.curvature_operators import GGN, EmpiricalFisher
from lmc_toolkit.hessian.diagonal_estimators import Diagonal, diagonal
from lmc_toolkit.hessian.linear_map import CurvatureOperator, LinearMap, as_operator
from lmc_toolkit.hessian.network_operator import NetworkOperator
from lmc_toolkit.hessian.operator import Hessian
from lmc_toolkit.hessian.spectrum import Eigen, Spectrum, density, top_eigenvalues
from lmc_toolkit.hessian.trace_estimators import Estimate, estimate_trace, trace

__all__ = [
    "GGN",
    "CurvatureOperator",
    "Diagonal",
    "Eigen",
    "EmpiricalFisher",
    "Estimate",
    "Hessian",
    "LinearMap",
    "NetworkOperator",
    "Spectrum",
    "as_operator",
    "density",
    "diagonal",
    "estimate_trace",
    "top_eigenvalues",
    "trace",
]
