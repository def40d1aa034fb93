"""Plotly figures for every result type: library functions return data, these draw it.

The only part of the toolkit that imports plotly; `export` writes a figure notebook's files. One submodule per area; everything public is
re-exported here, so `from lmc_toolkit import plots; plots.plot_curve(...)` works.
"""

from lmc_toolkit.plots.alignment import plot_aligned_barriers, plot_aligned_mask_iou
from lmc_toolkit.plots.connectivity import plot_barriers, plot_curve, plot_pairwise, plot_surface
from lmc_toolkit.plots.explore import plot_interpolation, plot_slice
from lmc_toolkit.plots.export import Artifact, FigureOutput, figure_output
from lmc_toolkit.plots.hessian import (
    plot_curvature_vs_sparsity,
    plot_densities,
    plot_diagonal_hist,
    plot_diagonal_replicates,
    plot_diagonal_sorted,
    plot_diagonals,
    plot_spectrum,
    plot_vs_sparsity,
)
from lmc_toolkit.plots.pruning import (
    plot_accuracy_vs_sparsity,
    plot_imp,
    plot_layer_sparsity,
    plot_mask_iou,
)
from lmc_toolkit.plots.study import (
    plot_mask_convergence,
    plot_mask_costs,
    plot_replicates,
    plot_tradeoff,
)
from lmc_toolkit.plots.synth import image_grid, plot_synthetic

__all__ = [
    "Artifact",
    "FigureOutput",
    "figure_output",
    "image_grid",
    "plot_accuracy_vs_sparsity",
    "plot_aligned_barriers",
    "plot_aligned_mask_iou",
    "plot_barriers",
    "plot_curvature_vs_sparsity",
    "plot_curve",
    "plot_densities",
    "plot_diagonal_hist",
    "plot_diagonal_replicates",
    "plot_diagonal_sorted",
    "plot_diagonals",
    "plot_imp",
    "plot_interpolation",
    "plot_layer_sparsity",
    "plot_mask_convergence",
    "plot_mask_costs",
    "plot_mask_iou",
    "plot_pairwise",
    "plot_replicates",
    "plot_slice",
    "plot_spectrum",
    "plot_surface",
    "plot_synthetic",
    "plot_tradeoff",
    "plot_vs_sparsity",
]
