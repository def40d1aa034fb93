"""The study behind the figures, in three concerns: running it (presets, `Study` and its
cached networks, `Sweeps` and the sweep units, the analyses each figure needs in `analyses`),
the figure pipeline (`figures`: the papermill runner, the report index, the headline table)
and the verdicts on its claims (`verdicts`)."""

from lmc_toolkit.study.figures.parameters import PRESETS
from lmc_toolkit.study.figures.pipeline import FIGURES, RunReport, run_figures
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
