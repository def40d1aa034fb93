"""lmc_toolkit: linear mode connectivity, loss landscapes, Hessians and lottery tickets with
synthetic data. See the README for a tour; `lmc-toolkit --help` for the command line.

The public names below are importable from the package itself (`lmc_toolkit.interpolate`);
most load their module on first use. Figures live in
`lmc_toolkit.plots` and the widget explorer in `lmc_toolkit.widgets` (they need plotly and
ipywidgets).
"""

from __future__ import annotations

# A function named like its module must be bound here eagerly: importing the submodule would
# otherwise leave the module object under that name.
# (ruff cannot read the computed __all__, hence the noqa)
from lmc_toolkit.data import Dataset, load  # noqa: F401
from lmc_toolkit.imp import imp  # noqa: F401
from lmc_toolkit.instability import instability  # noqa: F401
from lmc_toolkit.lazy import lazy_exports
from lmc_toolkit.models import build  # noqa: F401
from lmc_toolkit.store import Store  # noqa: F401
from lmc_toolkit.train import Metrics, TrainConfig, TrainResult, evaluate, train  # noqa: F401

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    # data, models, training, store
    "Dataset": "data",
    "load": "data",
    "build": "models",
    "Store": "store",
    "Metrics": "train",
    "TrainConfig": "train",
    "TrainResult": "train",
    "evaluate": "train",
    "train": "train",
    # pruning, IMP, tickets
    "Mask": "pruning",
    "magnitude": "pruning",
    "random_pruning": "pruning",
    "iou": "pruning",
    "hamming": "pruning",
    "ImpConfig": "imp",
    "ImpResult": "imp",
    "imp": "imp",
    "distilled_pruning": "imp",
    "combined": "imp",
    "TicketTable": "tickets",
    "evaluate_tickets": "tickets",
    "train_ticket": "tickets",
    # synthetic data
    "random_subset": "synth",
    "herding": "synth",
    "distribution_matching": "synth",
    "gradient_matching": "synth",
    "load_distilled": "synth",
    "SiameseAugment": "augment",
    # connectivity and landscapes
    "Curve": "connectivity",
    "Barrier": "connectivity",
    "PairwiseResult": "connectivity",
    "interpolate": "connectivity",
    "pairwise": "connectivity",
    "Instability": "instability",
    "InstabilityCurve": "instability",
    "instability": "instability",
    "instability_vs_k": "instability",
    "random_direction": "landscape",
    "orthogonalize": "landscape",
    "towards": "landscape",
    "line": "landscape",
    "plane": "landscape",
    "random_plane": "landscape",
    "plane_through": "landscape",
    "paper_plane": "landscape",
    "Surface": "surface",
    "Marker": "surface",
    "Evaluator": "evaluator",
    "evaluate_points": "evaluator",
    "BNPolicy": "batchnorm",
    # curvature
    "Hessian": "hessian",
    "top_eigenvalues": "spectrum",
    "density": "spectrum",
    "Eigen": "spectrum",
    "Spectrum": "spectrum",
    "trace": "hessian_trace",
    "Estimate": "hessian_trace",
    "diagonal": "hessian_diag",
    "Diagonal": "hessian_diag",
    # the study behind the figures
    "Study": "study",
    "StudyConfig": "study",
    "study_config": "study",
    "run_figures": "figures",
    "StoredNetwork": "stored_networks",
    "stored_networks": "stored_networks",
    # sweeps: independent trainings on a process pool or a Dask cluster
    "Unit": "sweep",
    "SweepReport": "sweep",
    "SweepError": "sweep",
    "run_units": "sweep",
    "study_sweep": "sweep_units",
    "ticket_units": "sweep_units",
    "imp_units": "sweep_units",
    "instability_units": "sweep_units",
    "instability_sweep": "sweep_units",
    "plane_tile_units": "sweep_tiles",
    "assemble_tiles": "sweep_tiles",
}
_RENAMED = {"random_pruning": "random"}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS, _RENAMED, cache=globals())
del lazy_exports


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
