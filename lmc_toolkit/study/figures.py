"""Presets and the papermill runner that turns the figure notebooks into `reports/<preset>/`.

Each figure of the study (F1-F8, see PAPER.md, and F9, permutation alignment) is one
parameterized notebook in `notebooks/`. `run_figures` checks every parameter before anything
is computed, executes the notebooks with papermill (a failing notebook is recorded with its
error and the others still run), keeps each executed notebook beside its figures and writes
`index.html` (see `lmc_toolkit.study.reports`).
"""

from __future__ import annotations

import ast
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from lmc_toolkit.study.reports import FigureStatus, write_index

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
PRESETS = ("smoke", "cpu", "paper")
#: The notebooks that ship with the source tree.
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _one_of(allowed: Callable[[], Iterable[str]]) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        options = sorted(allowed())
        values = value if isinstance(value, list | tuple) else [value]
        bad = [v for v in values if v not in options]
        if bad:
            raise ValueError(f"parameter {name}={value!r}: {bad[0]!r} is not one of {options}")

    return check


def _datasets() -> list[str]:
    from lmc_toolkit.data.sources import known_datasets

    return known_datasets()


def _models() -> list[str]:
    from lmc_toolkit.models import available

    return available()


#: Value checks for parameters that several notebooks share (others are checked by type).
VALIDATORS: dict[str, Callable[[str, Any], None]] = {
    "preset": _one_of(lambda: PRESETS),
    "dataset": _one_of(_datasets),
    "model": _one_of(_models),
    "bn": _one_of(lambda: ("eval", "recalibrate", "interpolate", "batch")),
    "align": _one_of(lambda: ("weights", "activations")),
    "scheduler": lambda name, value: _check_scheduler(value),
}


def _check_scheduler(value: Any) -> None:
    """A notebook's scheduler must be None or a string the sweep accepts (a `Client` object
    cannot travel through papermill: pass its address)."""
    from lmc_toolkit.sweep.schedulers import SCHEDULERS, scheduler_kind

    if value is not None and not isinstance(value, str):
        raise ValueError(f"parameter scheduler={value!r} must be a string; allowed: {SCHEDULERS}")
    scheduler_kind(value)


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


def check_parameters(notebook: Path, parameters: Mapping[str, Any]) -> None:
    """Refuse parameters the notebook does not declare, or values outside the allowed set,
    before any computation; the message lists what is allowed."""
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    for name, value in parameters.items():
        if name not in declared:
            raise ValueError(
                f"{notebook.name} has no parameter {name!r}; its parameters: {sorted(declared)}"
            )
        if name in VALIDATORS:
            VALIDATORS[name](name, value)
        else:
            _check_type(notebook, name, value, _declared_type(declared[name]))


def _declared_type(info: Mapping[str, Any]) -> str | None:
    """The parameter's annotated type, else the type of its literal default."""
    annotated = info.get("inferred_type_name")
    if annotated and annotated != "None":
        return str(annotated)
    try:
        default = ast.literal_eval(str(info.get("default")))
    except (ValueError, SyntaxError):
        return None
    return None if default is None else type(default).__name__


def _check_type(notebook: Path, name: str, value: Any, declared: str | None) -> None:
    kinds = {
        "int": (int,),
        "float": (int, float),
        "str": (str,),
        "bool": (bool,),
        "list": (list, tuple),
        "tuple": (list, tuple),
        "dict": (dict,),
    }
    allowed = kinds.get(str(declared))
    if allowed is None or value is None:
        return
    if isinstance(value, bool) and declared != "bool":
        allowed = ()
    if not isinstance(value, allowed):
        raise ValueError(
            f"{notebook.name}: parameter {name}={value!r} must be {declared}, "
            f"got {type(value).__name__}"
        )


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

    `parameters` maps a figure id to overrides of its notebook's parameters, `common` holds
    overrides for every notebook; each notebook also receives `preset` and `out` (its preset
    folder). Everything is checked first; a notebook
    that raises is recorded with its error while the others still run.
    """
    VALIDATORS["preset"]("preset", preset)
    ids = parse_only(only)
    folder = Path(notebooks) if notebooks is not None else NOTEBOOKS
    root = Path(out) / preset
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

    import papermill

    statuses = []
    bar = tqdm(plan, desc=f"reproduce {preset}", unit="figure", disable=not progress)
    for fid, path, params in bar:
        bar.set_postfix_str(fid)
        executed = root / fid / path.name
        executed.parent.mkdir(parents=True, exist_ok=True)
        start, error = time.perf_counter(), None
        try:
            papermill.execute_notebook(
                str(path),
                str(executed),
                parameters=params,
                progress_bar=False,
                cwd=str(path.parent),
                kernel_name="python3",
            )
        except Exception as exc:  # recorded; the other figures still run
            error = _describe(exc)
        statuses.append(
            FigureStatus(
                figure=fid,
                title=FIGURES[fid][1],
                notebook=f"{fid}/{path.name}" if executed.exists() else None,
                seconds=time.perf_counter() - start,
                error=error,
            )
        )
    index = write_index(root, statuses, preset)
    return RunReport(preset, root, index, tuple(statuses))


def _describe(exc: Exception) -> str:
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename:
        return f"{ename}: {evalue}"
    return f"{type(exc).__name__}: {exc}"
