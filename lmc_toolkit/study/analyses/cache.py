"""How an analysis of a `Study` is kept: under an `AnalysisRun` key (its kind, the study and its
own arguments) in the study's store, computed once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from lmc_toolkit.study.presets import StudyConfig
from lmc_toolkit.study.runs import Study

T = TypeVar("T")


@dataclass(frozen=True)
class AnalysisRun:
    """The store key of one analysis: its kind, the study and the analysis' own arguments."""

    kind: str = ""
    study: StudyConfig = field(default_factory=StudyConfig)
    args: tuple[tuple[str, Any], ...] = ()

    def run_prefix(self) -> str:
        return f"{self.kind}-{self.study.dataset}-{self.study.model}"


def cached(
    study: Study,
    kind: str,
    args: Mapping[str, Any],
    compute: Callable[[], T],
    encode: Callable[[T], Any],
    decode: Callable[[Any], T],
) -> T:
    """`compute()` once per (kind, study, args); later calls load it from the study's store."""
    key = AnalysisRun(kind, study.config, tuple(sorted(args.items())))
    return study.store.cached(key, compute, encode=encode, decode=decode)


def study_data(study: Study, which: str):
    if which not in ("train", "test"):
        raise ValueError(f"data must be 'train' or 'test', got {which!r}")
    return study.train_data if which == "train" else study.test_data


def finite(value: float) -> float | None:
    """JSON-friendly: NaN and inf become None."""
    return value if math.isfinite(value) else None
