"""Sweeps: independent units of work (trainings, plane tiles) run locally, on a process pool,
or on a Dask cluster, each cached in the store so that an interrupted sweep resumes."""

from lmc_toolkit.sweep.runner import run_units
from lmc_toolkit.sweep.schedulers import SCHEDULERS, local_cluster, scheduler_kind
from lmc_toolkit.sweep.tiles import PlaneTile, assemble_tiles, plane_tile_units
from lmc_toolkit.sweep.units import SweepError, SweepReport, Unit, UnitFailure

__all__ = [
    "SCHEDULERS",
    "PlaneTile",
    "SweepError",
    "SweepReport",
    "Unit",
    "UnitFailure",
    "assemble_tiles",
    "local_cluster",
    "plane_tile_units",
    "run_units",
    "scheduler_kind",
]
