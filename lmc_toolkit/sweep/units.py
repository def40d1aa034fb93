"""Units of work and what a sweep reports about them: `Unit`, `UnitFailure`, `SweepReport`, `SweepError`.

A `Unit` is one independent computation: a module-level function and picklable arguments, with
a label and the configuration shown when it fails.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Unit:
    """One independent piece of work: `fn(*args)`. `fn` must be a module-level function and
    `args` picklable (they travel to other processes); `config` holds plain values that
    describe the unit in failure reports."""

    label: str
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label:
            raise ValueError(f"a unit's label must be a non-empty string, got {self.label!r}")
        if not callable(self.fn):
            raise TypeError(f"unit {self.label!r}: fn must be callable, got {self.fn!r}")
        if not isinstance(self.args, tuple):
            raise TypeError(f"unit {self.label!r}: args must be a tuple, got {self.args!r}")

    def __call__(self) -> Any:
        return self.fn(*self.args)

    @property
    def key(self) -> str:
        """The Dask task key: the label and a hash of the function and its arguments."""
        name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", self.label).strip("_") or "unit"
        return f"{name}-{_token(self.fn, self.args)}"


def _token(fn: Callable[..., Any], args: tuple[Any, ...]) -> str:
    from lmc_toolkit.store.naming import canonical

    what = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"
    try:
        payload = json.dumps([what, canonical(list(args))], sort_keys=True).encode()
    except TypeError:  # tensors, datasets: hash their pickle
        payload = what.encode() + pickle.dumps(args, protocol=4)
    return hashlib.sha256(payload).hexdigest()[:16]


@dataclass(frozen=True)
class UnitFailure:
    """A unit that raised (after its retries): what it was and why it failed."""

    label: str
    config: Mapping[str, Any]
    error_type: str
    message: str
    traceback: str

    def format(self) -> str:
        config = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{self.label} ({config}): {self.error_type}: {self.message}"


def failure(unit: Unit, exc: BaseException, tb: Any = None) -> UnitFailure:
    if tb is not None:
        text = "".join(traceback.format_tb(tb)) + f"{type(exc).__name__}: {exc}\n"
    else:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return UnitFailure(unit.label, dict(unit.config), type(exc).__name__, str(exc), text)


class SweepError(RuntimeError):
    """Some units of a sweep failed; `failures` lists them (label, config, traceback)."""

    def __init__(self, failures: Sequence[UnitFailure], total: int):
        self.failures = tuple(failures)
        lines = [f"{len(self.failures)} of {total} units failed:"]
        lines += [f"  - {f.format()}" for f in self.failures]
        if self.failures:
            lines += ["traceback of the first failure:", self.failures[0].traceback.rstrip()]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class SweepReport:
    """The outcome of a sweep: `results[i]` is what unit i returned (None if it failed)."""

    labels: tuple[str, ...]
    results: tuple[Any, ...]
    failures: tuple[UnitFailure, ...]
    seconds: float
    scheduler: str = "local"

    @property
    def ok(self) -> bool:
        return not self.failures

    def __len__(self) -> int:
        return len(self.labels)

    def result(self, label: str) -> Any:
        """The result of the unit called `label`."""
        if label not in self.labels:
            raise KeyError(f"no unit {label!r} in this sweep")
        return self.results[self.labels.index(label)]

    def raise_for_failures(self) -> SweepReport:
        """Raise `SweepError` listing every failed unit; return the report when none failed."""
        if self.failures:
            raise SweepError(self.failures, len(self.labels))
        return self

    def format(self) -> str:
        done = len(self.labels) - len(self.failures)
        lines = [
            f"{done} of {len(self.labels)} units done, {len(self.failures)} failed, "
            f"{self.seconds:.1f} s ({self.scheduler})"
        ]
        lines += [f"  failed: {f.format()}" for f in self.failures]
        return "\n".join(lines)

    @staticmethod
    def combine(*reports: SweepReport) -> SweepReport:
        """Several phases of one sweep as one report."""
        return SweepReport(
            labels=tuple(label for r in reports for label in r.labels),
            results=tuple(x for r in reports for x in r.results),
            failures=tuple(f for r in reports for f in r.failures),
            seconds=sum(r.seconds for r in reports),
            scheduler=reports[0].scheduler if reports else "local",
        )
