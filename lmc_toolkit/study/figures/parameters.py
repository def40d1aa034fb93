"""The figure notebooks' parameters, checked before anything runs: declared names, types, values.

`check_parameters` refuses a parameter the notebook does not declare, a value of the wrong type,
and, for the parameters the notebooks share (`VALIDATORS`), a value outside what is allowed, with
a message naming the parameter, the value and what is allowed.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

#: The scales of the figure pipeline (`study.presets`).
PRESETS = ("smoke", "cpu", "fashion", "paper")


def _one_of(allowed: Callable[[], Iterable[str]]) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        options = sorted(allowed())
        values = value if isinstance(value, list | tuple) else [value]
        bad = [v for v in values if v not in options]
        if bad:
            raise ValueError(f"parameter {name}={value!r}: {bad[0]!r} is not one of {options}")

    return check


def _scales() -> tuple[str, ...]:
    from lmc_toolkit.study.presets import SCALES

    return SCALES


def _datasets() -> list[str]:
    from lmc_toolkit.data.sources import known_datasets

    return known_datasets()


def _models() -> list[str]:
    from lmc_toolkit.models import available

    return available()


def _int_at_least(minimum: int, *, optional: bool = True) -> Callable[[str, Any], None]:
    """An int ≥ `minimum` (or None where the notebook then picks the preset's value)."""

    def check(name: str, value: Any) -> None:
        if value is None and optional:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            none = " or None" if optional else ""
            raise ValueError(f"parameter {name}={value!r} must be an int ≥ {minimum}{none}")

    return check


def _ints_at_least(minimum: int, *, least: int = 1) -> Callable[[str, Any], None]:
    """A list of at least `least` distinct ints ≥ `minimum`, or None (the preset's)."""

    def check(name: str, value: Any) -> None:
        if value is None:
            return
        ok = isinstance(value, list | tuple) and len(value) >= least
        ok = ok and all(not isinstance(v, bool) and isinstance(v, int) for v in value)
        if not ok or any(v < minimum for v in value) or len(set(value)) != len(value):
            raise ValueError(
                f"parameter {name}={value!r} must be a list of at least {least} distinct ints "
                f"≥ {minimum}, or None"
            )

    return check


def _optional(check: Callable[[str, Any], None]) -> Callable[[str, Any], None]:
    """`check`, or None."""

    def optional(name: str, value: Any) -> None:
        if value is not None:
            check(name, value)

    return optional


def _folder(name: str, value: Any) -> None:
    """None, or a folder that exists."""
    if value is not None and not (isinstance(value, str | Path) and Path(value).is_dir()):
        raise ValueError(f"parameter {name}={value!r} must be an existing folder or None")


#: Value checks for parameters that several notebooks share (others are checked by type).
VALIDATORS: dict[str, Callable[[str, Any], None]] = {
    "preset": _one_of(lambda: PRESETS),
    "scale": _optional(_one_of(_scales)),
    "dataset": _one_of(_datasets),
    "model": _one_of(_models),
    "bn": _one_of(lambda: ("eval", "recalibrate", "interpolate", "batch")),
    "align": _one_of(lambda: ("weights", "activations")),
    "data": _one_of(lambda: ("test", "train")),
    "scheduler": lambda name, value: _check_scheduler(value),
    "data_root": _folder,
    "alphas": _int_at_least(2),
    "resolution": _int_at_least(2),
    "images": _int_at_least(1),
    "probes": _int_at_least(1),
    "k": _int_at_least(1, optional=False),
    "density_steps": _int_at_least(1),
    "round": _int_at_least(0),
    "width": _int_at_least(1),
    "other_init": _int_at_least(0, optional=False),
    "rounds": _ints_at_least(0),
    "ks": _ints_at_least(0),
    "data_seeds": _ints_at_least(0),
    "seeds": _ints_at_least(0, least=2),
}


def _check_scheduler(value: Any) -> None:
    """A notebook's scheduler must be None or a string the sweep accepts (a `Client` object
    cannot travel through papermill: pass its address)."""
    from lmc_toolkit.sweep.schedulers import SCHEDULERS, scheduler_kind

    if value is not None and not isinstance(value, str):
        raise ValueError(f"parameter scheduler={value!r} must be a string; allowed: {SCHEDULERS}")
    scheduler_kind(value)


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
