"""One judged claim (`Verdict`) and how its parts are written."""

from __future__ import annotations

from dataclasses import dataclass

from lmc_toolkit.connectivity.intervals import Interval
from lmc_toolkit.study.verdicts.rules import UNTESTED


@dataclass(frozen=True)
class Verdict:
    """One claim judged: what tests it, what was measured, against what, the verdict, why, and
    what result would have changed it."""

    claim: str
    statement: str
    quantity: str
    values: str
    threshold: str
    verdict: str
    reason: str
    would_change: str = "–"

    def to_dict(self) -> dict[str, str]:
        return dict(vars(self))


def untested(claim: str, statement: str, quantity: str, threshold: str, why: str) -> Verdict:
    """The verdict of a claim whose figures were not made (`why` says which)."""
    return Verdict(claim, statement, quantity, "–", threshold, UNTESTED, why)


def show(iv: Interval, scale: float = 100.0, unit: str = " pts", of: str = "disjoint pairs") -> str:
    """An interval as a verdict's values print it (points by default)."""
    return iv.format(scale, unit, of=of)
