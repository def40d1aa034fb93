"""Presets and the papermill runner that turns the figure notebooks into `reports/<preset>/`.

Each figure of the study (F1-F8, and F9, permutation alignment) is one
parameterized notebook in `notebooks/`. `run_figures` checks every parameter before anything
is computed, executes the notebooks with papermill (a failing notebook is recorded with its
error and the others still run), keeps each executed notebook beside its figures, records each
figure's run in its folder and writes `index.html` over every figure recorded there (see
`lmc_toolkit.study.figures.reports`): a run of some figures (`only`) keeps the others in the index.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from lmc_toolkit.store.files import TMP_MARK
from lmc_toolkit.study.figures.parameters import VALIDATORS, check_parameters
from lmc_toolkit.study.figures.reports import (
    FigureStatus,
    record_status,
    recorded_statuses,
    write_index,
)

#: The study's figures: id -> (notebook file in `notebooks/`, title).
FIGURES: dict[str, tuple[str, str]] = {
    "F1": ("F1_accuracy.ipynb", "test accuracy vs sparsity"),
    "F2": ("F2_interpolation.ipynb", "linear interpolation and barrier vs sparsity"),
    "F3": ("F3_instability.ipynb", "instability vs spawn step"),
    "F4": ("F4_landscape.ipynb", "2-D loss landscapes"),
    "F5": ("F5_hessian.ipynb", "Hessian diagonal, top eigenvalues, trace and spectrum"),
    "F6": ("F6_tradeoff.ipynb", "stability-accuracy trade-off"),
    "F7": ("F7_masks.ipynb", "mask overlap and per-layer sparsity"),
    "F8": ("F8_pairwise.ipynb", "pairwise barriers and weight distances"),
    "F9": ("F9_alignment.ipynb", "barriers between two initializations, modulo permutation"),
}
#: How the executed notebooks keep their figures: plotly's JSON only (JupyterLab draws it), not
#: a 3.6 MB copy of plotly.js in each, so that the executed notebooks can be committed.
NOTEBOOK_RENDERER = "plotly_mimetype"
#: The notebooks that ship with the source tree.
NOTEBOOKS = Path(__file__).resolve().parents[3] / "notebooks"


def report_name(preset: str, scale: str | None = None) -> str:
    """The report folder of `preset` run at `scale`: `paper-smoke` apart from `paper`."""
    return preset if scale is None else f"{preset}-{scale}"


def parse_only(only: str | Sequence[str] | None) -> list[str]:
    """Figure ids from "F2,F4" or a list (None = all), refusing unknown ids."""
    if only is None:
        return list(FIGURES)
    ids = [s.strip().upper() for s in (only.split(",") if isinstance(only, str) else only)]
    ids = [i for i in ids if i]
    bad = [i for i in ids if i not in FIGURES]
    if bad or not ids:
        raise ValueError(f"unknown figure {bad[0] if bad else only!r}; figures: {list(FIGURES)}")
    return ids


@dataclass(frozen=True)
class RunReport:
    """What `run_figures` did: one status per figure and the index it wrote."""

    preset: str
    root: Path
    index: Path
    statuses: tuple[FigureStatus, ...]

    @property
    def failed(self) -> list[FigureStatus]:
        return [s for s in self.statuses if not s.ok]


def run_figures(
    preset: str = "cpu",
    only: str | Sequence[str] | None = None,
    out: str | Path = "reports",
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
    notebooks: str | Path | None = None,
    progress: bool = True,
    common: Mapping[str, Any] | None = None,
) -> RunReport:
    """Execute the figure notebooks for `preset` into `out/<preset>/` and write its index.

    Everything is checked first; a notebook that raises is recorded with its error while the
    others still run. Each notebook also receives `preset` and `out` (its report folder).

    Args:
        preset: One of `PRESETS` ("smoke", "cpu", "fashion", "paper").
        only: Figure ids to run (a list or "F1,F3"; default: all of `FIGURES`).
        out: The reports folder; the figures go to `out/<preset>/`.
        parameters: Figure id → overrides of that notebook's parameters.
        notebooks: The folder of the figure notebooks (default: the repository's `notebooks/`).
        progress: Show which figure runs and the notebooks' own progress bars.
        common: Overrides for every notebook (`common["scale"] = "smoke"` runs the preset on the
            smoke schedule into `out/<preset>-smoke/`).

    Returns:
        A `RunReport`: the report folder and each figure's status (ok or its error, seconds).
    """
    from lmc_toolkit.data.sources import check_root
    from lmc_toolkit.study.presets import study_config

    VALIDATORS["preset"]("preset", preset)
    ids = parse_only(only)
    folder = Path(notebooks) if notebooks is not None else NOTEBOOKS
    scale = (common or {}).get("scale")
    VALIDATORS["scale"]("scale", scale)
    root = Path(out) / report_name(preset, scale)
    overrides = {k.upper(): dict(v) for k, v in (parameters or {}).items()}
    unknown = [k for k in overrides if k not in FIGURES]
    if unknown:
        raise ValueError(f"parameters for unknown figure {unknown[0]!r}; figures: {list(FIGURES)}")
    plan = []
    for fid in ids:
        path = folder / FIGURES[fid][0]
        if not path.exists():
            raise FileNotFoundError(f"the notebook of {fid} is missing: {path}")
        params = {
            "preset": preset,
            "out": str(root.resolve()),
            **(common or {}),
            **overrides.get(fid, {}),
        }
        check_parameters(path, params)
        plan.append((fid, path, params))
    # the data the preset reads, before the first notebook starts
    check_root(study_config(preset, scale).dataset, (common or {}).get("data_root"))

    _remove_partial_files(root)
    bar = tqdm(plan, desc=f"reproduce {preset}", unit="figure", disable=not progress)
    statuses = []
    with _kernel_environment(PLOTLY_RENDERER=NOTEBOOK_RENDERER):
        for fid, path, params in bar:
            bar.set_postfix_str(fid)
            statuses.append(_execute(root, fid, path, params))
            record_status(root, statuses[-1])
    # figures not run this time keep their entries in the index (their last recorded run)
    shown = {**recorded_statuses(root, list(FIGURES)), **{s.figure: s for s in statuses}}
    index = write_index(root, [shown[f] for f in FIGURES if f in shown], preset)
    return RunReport(preset, root, index, tuple(statuses))


def _execute(root: Path, fid: str, path: Path, params: dict[str, Any]) -> FigureStatus:
    """Run one figure notebook into `root/<fid>/`; a failure is recorded, not raised."""
    import papermill

    executed = root / fid / path.name
    executed.parent.mkdir(parents=True, exist_ok=True)
    # papermill saves the notebook after every cell: into a temporary file, renamed at the end
    partial = executed.with_name(f"{executed.stem}{TMP_MARK}{os.getpid()}.ipynb")
    start, error = time.perf_counter(), None
    try:
        papermill.execute_notebook(
            str(path),
            str(partial),
            parameters=params,
            progress_bar=False,
            cwd=str(path.parent),
            kernel_name="python3",
        )
    except Exception as exc:  # recorded; the other figures still run
        error = _describe(exc)
    finally:
        if partial.exists():
            os.replace(partial, executed)
    return FigureStatus(
        figure=fid,
        title=FIGURES[fid][1],
        notebook=f"{fid}/{path.name}" if executed.exists() else None,
        seconds=time.perf_counter() - start,
        error=error,
    )


@contextmanager
def _kernel_environment(**variables: str) -> Iterator[None]:
    """Environment variables the notebook kernels start with (they inherit this process's)."""
    saved = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _remove_partial_files(root: Path) -> None:
    """Remove the temporary files a killed run left in the report (one run per report folder
    at a time): what is visible there is then only ever complete."""
    if root.is_dir():
        for leftover in root.rglob(f"*{TMP_MARK}*"):
            if leftover.is_file():
                leftover.unlink(missing_ok=True)


def _describe(exc: Exception) -> str:
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename:
        return f"{ename}: {evalue}"
    return f"{type(exc).__name__}: {exc}"
