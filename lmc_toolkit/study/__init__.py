"""The study behind the figures: presets, `Study` (its cached networks), the analyses each
figure needs, the figure runner (papermill), reports and the headline table."""

from lmc_toolkit.study.figures import FIGURES, RunReport, run_figures
from lmc_toolkit.study.parameters import PRESETS
from lmc_toolkit.study.presets import StudyConfig, describe, study_config
from lmc_toolkit.study.runs import Study
from lmc_toolkit.study.sweeps import Sweeps
from lmc_toolkit.study.units import (
    imp_units,
    instability_sweep,
    instability_units,
    study_sweep,
    ticket_units,
)

__all__ = [
    "FIGURES",
    "PRESETS",
    "RunReport",
    "Study",
    "StudyConfig",
    "Sweeps",
    "describe",
    "imp_units",
    "instability_sweep",
    "instability_units",
    "run_figures",
    "study_config",
    "study_sweep",
    "ticket_units",
]
