"""The batched evaluator: loss and accuracy at many points of a weight-space grid at once
(chunked vmap or loop, a compiled fused first block on the CPU, BatchNorm policies)."""

from lmc_toolkit.landscape.evaluator.core import Evaluator, evaluate_points
from lmc_toolkit.landscape.evaluator.points import PointMetrics

__all__ = ["Evaluator", "PointMetrics", "evaluate_points"]
