"""What the claims read from a report: the figures' JSON, each ticket's accuracy per data seed,
the interpolation curves with their per-image evidence, and a barrier read off a landscape
plane. Numbers missing from older reports come back as NaN."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmc_toolkit.landscape.curve import Curve
from lmc_toolkit.store.files import read_json


def figure_json(root: Path, name: str) -> Any:
    """The JSON a figure wrote under `root` (None when it is missing or unreadable)."""
    return read_json(root / name, None)


def number(value: Any) -> float:
    """A JSON number as a float (None, missing or not a number: NaN)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else math.nan


def is_synthetic(method: str) -> bool:
    return method.startswith("distilled")


def distilled_first(methods: Sequence[str]) -> list[str]:
    """Synthetic methods, genuinely distilled ones first (`distilled-random` is the random-subset
    stand-in for a distilled set)."""
    synth = [m for m in methods if is_synthetic(m)]
    return sorted(synth, key=lambda m: (m.endswith("-random"), m))


@dataclass(frozen=True)
class Evidence:
    """What the claims read from a report, keyed by (method, sparsity rounded to 0.1%):
    each ticket's test accuracy per data seed (F1) and the disjoint pairs' interpolation
    curves with their per-image evidence (F2's `barrier_evidence.json`), and the accuracy of
    each replicated mask-finding run's ticket (F1's `mask_replicates.json`)."""

    accuracies: Mapping[tuple[str, float], list[float]]
    barriers: Mapping[tuple[str, float], list[Curve]]
    #: (method, sparsity) -> {mask seed: accuracy} of tickets from replicated mask-finding runs
    replicates: Mapping[tuple[str, float], Mapping[int, float]] = field(default_factory=dict)

    def accuracy(self, method: str, sparsity: float) -> list[float] | None:
        return self.accuracies.get((method, key(sparsity)))

    def replicate_accuracy(self, method: str, sparsity: float) -> list[float]:
        """The accuracy of the ticket of each mask-finding run of `method` at `sparsity`."""
        return list(self.replicates.get((method, key(sparsity)), {}).values())

    def mask_runs(self, method: str) -> set[int]:
        """The mask seeds `method` was replicated with (at every sparsity)."""
        runs = [set(v) for (m, _), v in self.replicates.items() if m == method]
        return set.intersection(*runs) if runs else set()

    def curves(self, method: str, sparsity: float) -> list[Curve]:
        return self.barriers.get((method, key(sparsity)), [])

    def sparsities(self, method: str) -> list[float]:
        """The sparsities at which `method` has barrier evidence."""
        return sorted(s for m, s in self.barriers if m == method)

    def peaks(self, method: str, sparsity: float) -> str:
        """The pairs' barriers above the mean of the ends and how many peak inside the path,
        as a note beside the deciding number."""
        curves = self.curves(method, sparsity)
        if not curves:
            return ""
        mean = sum(c.barrier("error", "mean").value for c in curves) / len(curves)
        inside = sum(0 < c.barrier("error", "linear").alpha < 1 for c in curves)
        return f" (mean-of-ends {percent(mean)}; {inside}/{len(curves)} peak inside)"


def key(sparsity: float) -> float:
    return round(float(sparsity), 3)


def load_evidence(root: Path) -> Evidence:
    """The `Evidence` under `root` (empty where the figures are missing)."""
    table = (figure_json(root, "F1/accuracy_vs_sparsity.json") or {}).get("table", {})
    accuracies: dict[tuple[str, float], list[float]] = {}
    for e in table.get("entries", []):
        accuracies.setdefault((e["method"], key(e["sparsity"])), []).append(number(e["accuracy"]))
    barriers: dict[tuple[str, float], list[Curve]] = {}
    for row in (figure_json(root, "F2/barrier_evidence.json") or {}).get("rows", []):
        curves = [Curve.from_dict(c) for c in row["curves"]]
        if curves and all(c.correct is not None for c in curves):
            barriers[(row["method"], key(row["sparsity"]))] = curves
    replicates: dict[tuple[str, float], dict[int, float]] = {}
    for r in (figure_json(root, "F1/mask_replicates.json") or {}).get("rows", []):
        replicates.setdefault((r["method"], key(r["sparsity"])), {})[r["mask_seed"]] = number(
            r["accuracy"]
        )
    return Evidence(accuracies, barriers, replicates)


def percent(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{100 * x:.2f}%"


def slice_barrier(
    plane: Mapping[str, Any], a: str = "θ0", b: str = "θ1", points: int = 81
) -> float:
    """The error barrier read off a plane along the segment between markers `a` and `b`
    (bilinear interpolation of its accuracy grid)."""
    marks = {m["label"]: (m["x"], m["y"]) for m in plane.get("markers", [])}
    xs, ys, acc = plane["x"], plane["y"], plane["accuracy"]

    def error_at(x: float, y: float) -> float:
        i = min(max(grid_index(xs, x), 0), len(xs) - 2)
        j = min(max(grid_index(ys, y), 0), len(ys) - 2)
        u = (x - xs[i]) / (xs[i + 1] - xs[i])
        v = (y - ys[j]) / (ys[j + 1] - ys[j])
        a00, a10, a01, a11 = acc[j][i], acc[j][i + 1], acc[j + 1][i], acc[j + 1][i + 1]
        value = (1 - u) * (1 - v) * a00 + u * (1 - v) * a10 + (1 - u) * v * a01 + u * v * a11
        return 1 - value

    (x0, y0), (x1, y1) = marks[a], marks[b]
    errors = [
        error_at(x0 + (x1 - x0) * s / (points - 1), y0 + (y1 - y0) * s / (points - 1))
        for s in range(points)
    ]
    return max(errors) - (errors[0] + errors[-1]) / 2


def grid_index(grid: Sequence[float], value: float) -> int:
    return max(i for i in range(len(grid)) if grid[i] <= value) if value >= grid[0] else 0
