"""The analyses behind the figures, cached in the store: barrier tables, planes, curvature
summaries, mask statistics, replicated mask-finding runs and barriers after permutation
alignment of a `Study`; and the re-timing of the mask costs (never cached)."""

from lmc_toolkit.study.analyses.alignment import AlignedRow, aligned_barrier_table, aligned_curve
from lmc_toolkit.study.analyses.barriers import (
    BarrierRow,
    barrier_evidence,
    barrier_table,
    curve,
    pairwise_seeds,
)
from lmc_toolkit.study.analyses.hessians import (
    CurvatureSummary,
    DiagonalReplicates,
    curvature,
    diagonal_replicates,
)
from lmc_toolkit.study.analyses.masks import MaskConvergence, MaskCost, mask_convergence, mask_costs
from lmc_toolkit.study.analyses.replicates import MaskReplicate, mask_replicates
from lmc_toolkit.study.analyses.surfaces import paper_surface, random_surface
from lmc_toolkit.study.analyses.timing import RoundTiming, round_timings

__all__ = [
    "AlignedRow",
    "BarrierRow",
    "CurvatureSummary",
    "DiagonalReplicates",
    "MaskConvergence",
    "MaskCost",
    "MaskReplicate",
    "RoundTiming",
    "aligned_barrier_table",
    "aligned_curve",
    "barrier_evidence",
    "barrier_table",
    "curvature",
    "curve",
    "diagonal_replicates",
    "mask_convergence",
    "mask_costs",
    "mask_replicates",
    "pairwise_seeds",
    "paper_surface",
    "random_surface",
    "round_timings",
]
