"""Loss landscapes: directions (filter/layer normalized, mask-aware), `line -> Curve`,
`plane -> Surface`, the planes of the study, and the batched grid evaluator behind them."""

from lmc_toolkit.landscape.curve import Barrier, Curve
from lmc_toolkit.landscape.directions import NORMS, orthogonalize, random_direction, towards
from lmc_toolkit.landscape.evaluator import Evaluator, evaluate_points
from lmc_toolkit.landscape.evaluator.precision import (
    PRECISIONS,
    PrecisionUnsupported,
    bf16_supported,
)
from lmc_toolkit.landscape.planes import paper_plane, plane_through, random_plane
from lmc_toolkit.landscape.slices import line, plane
from lmc_toolkit.landscape.surface import Marker, Surface

__all__ = [
    "NORMS",
    "PRECISIONS",
    "Barrier",
    "Curve",
    "Evaluator",
    "Marker",
    "PrecisionUnsupported",
    "Surface",
    "bf16_supported",
    "evaluate_points",
    "line",
    "orthogonalize",
    "paper_plane",
    "plane",
    "plane_through",
    "random_direction",
    "random_plane",
    "towards",
]
