"""The figure pipeline: the figure notebooks run through papermill (`run_figures`), their
parameters checked first, and the report they write (`index.html`, the headline table)."""

from lmc_toolkit.study.figures.headline import write_summary
from lmc_toolkit.study.figures.parameters import PRESETS, check_parameters
from lmc_toolkit.study.figures.pipeline import FIGURES, RunReport, run_figures
from lmc_toolkit.study.figures.reports import FigureStatus, write_index

__all__ = [
    "FIGURES",
    "PRESETS",
    "FigureStatus",
    "RunReport",
    "check_parameters",
    "run_figures",
    "write_index",
    "write_summary",
]
