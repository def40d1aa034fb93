"""lmc_toolkit: linear mode connectivity, loss landscapes, Hessians and lottery tickets with
synthetic data. See the README for a tour; `lmc-toolkit --help` for the command line.

One subpackage per stage of the study (`data`, `training`, `store`, `pruning`, `synth`,
`alignment`, `landscape`, `connectivity`, `hessian`, `sweep`, `study`, then `plots`, `widgets`, `cli` on
top); `import lmc_toolkit as L` gives the public API of all of them (`L.interpolate`, ...),
each name loading its subpackage on first use. Figures live in `lmc_toolkit.plots` and the
widget explorer in `lmc_toolkit.widgets` (they need plotly and ipywidgets).
"""

from __future__ import annotations

from lmc_toolkit.lazy import lazy_exports

__version__ = "0.1.0"

#: public name -> the subpackage (stage) that exports it
_EXPORTS: dict[str, str] = {
    # data, models, training, store
    "Dataset": "data",
    "as_dataset": "data",
    "Stream": "data",
    "stream": "data",
    "load": "data",
    "build": "models",
    "Store": "store",
    "StoreError": "store",
    "CorruptFile": "store",
    "Metrics": "training",
    "TrainConfig": "training",
    "TrainResult": "training",
    "evaluate": "training",
    "train": "training",
    # pruning, IMP, tickets
    "Mask": "pruning",
    "magnitude": "pruning",
    "random_pruning": "pruning",
    "iou": "pruning",
    "hamming": "pruning",
    "ImpConfig": "pruning",
    "ImpResult": "pruning",
    "imp": "pruning",
    "distilled_pruning": "pruning",
    "combined": "pruning",
    "TicketTable": "pruning",
    "evaluate_tickets": "pruning",
    "train_ticket": "pruning",
    # synthetic data
    "random_subset": "synth",
    "herding": "synth",
    "distribution_matching": "synth",
    "gradient_matching": "synth",
    "load_distilled": "synth",
    "SiameseAugment": "synth",
    # connectivity and landscapes
    "Curve": "connectivity",
    "AlignedCurve": "connectivity",
    "Barrier": "connectivity",
    "PairwiseResult": "connectivity",
    "interpolate": "connectivity",
    "pairwise": "connectivity",
    "Instability": "connectivity",
    "InstabilityCurve": "connectivity",
    "instability": "connectivity",
    "instability_vs_k": "connectivity",
    "Measurement": "connectivity",
    "barrier_estimate": "connectivity",
    "accuracy_estimate": "connectivity",
    "Interval": "connectivity",
    "barrier_interval": "connectivity",
    "barrier_difference": "connectivity",
    "accuracy_difference": "connectivity",
    "random_direction": "landscape",
    "orthogonalize": "landscape",
    "towards": "landscape",
    "line": "landscape",
    "plane": "landscape",
    "random_plane": "landscape",
    "plane_through": "landscape",
    "paper_plane": "landscape",
    "Surface": "landscape",
    "Marker": "landscape",
    "Evaluator": "landscape",
    "evaluate_points": "landscape",
    "PRECISIONS": "landscape",
    "PrecisionUnsupported": "landscape",
    "bf16_supported": "landscape",
    "BNPolicy": "training",
    # permutation alignment
    "Permutation": "alignment",
    "permutation_spec": "alignment",
    "permute": "alignment",
    "random_permutation": "alignment",
    "repair": "alignment",
    "weight_matching": "alignment",
    "activation_matching": "alignment",
    "Alignment": "alignment",
    # curvature
    "Hessian": "hessian",
    "GGN": "hessian",
    "EmpiricalFisher": "hessian",
    "LinearMap": "hessian",
    "top_eigenvalues": "hessian",
    "density": "hessian",
    "Eigen": "hessian",
    "Spectrum": "hessian",
    "trace": "hessian",
    "Estimate": "hessian",
    "diagonal": "hessian",
    "Diagonal": "hessian",
    # the study behind the figures
    "Study": "study",
    "StudyConfig": "study",
    "study_config": "study",
    "run_figures": "study",
    "StoredNetwork": "pruning",
    "stored_networks": "pruning",
    # sweeps: independent trainings on a process pool or a Dask cluster
    "Unit": "sweep",
    "SweepReport": "sweep",
    "SweepError": "sweep",
    "run_units": "sweep",
    "study_sweep": "study",
    "ticket_units": "study",
    "imp_units": "study",
    "instability_units": "study",
    "instability_sweep": "study",
    "plane_tile_units": "sweep",
    "assemble_tiles": "sweep",
}
_RENAMED = {"random_pruning": "random"}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS, _RENAMED, cache=globals())
del lazy_exports


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
