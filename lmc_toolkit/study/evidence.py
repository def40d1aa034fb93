"""What the claims read from a report: the figures' JSON rows, the noise of an error barrier,
and a barrier read off a landscape plane. Numbers missing from older reports come back as NaN."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lmc_toolkit.connectivity import paired_stderr


def read_json(path: Path, default: Any) -> Any:
    """The JSON at `path`, or `default` when it is missing or not JSON (yet)."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return default


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


def barrier_rows(root: Path) -> list[dict[str, Any]]:
    return list((figure_json(root, "F2/barrier_vs_sparsity.json") or {}).get("rows", []))


def barrier_rows_with_sizes(root: Path) -> list[dict[str, Any]]:
    """F2's barrier rows, with `test_images` filled in from the study's configuration where an
    older report did not record it (the test split the study used, cut to its `test_limit`)."""
    rows = barrier_rows(root)
    if rows and not all(r.get("test_images") for r in rows):
        n = configured_test_images(root)
        rows = [{**r, "test_images": r.get("test_images") or n} for r in rows]
    return rows


def configured_test_images(root: Path) -> int:
    """How many test images the study of this report used (0 when it cannot be told)."""
    config = (figure_json(root, "F1/accuracy_vs_sparsity.json") or {}).get("config") or {}
    if "dataset" not in config:
        return 0
    try:
        from lmc_toolkit.data import load

        n = len(load(config["dataset"], "test", root=config.get("data_root")))
    except (OSError, ValueError, RuntimeError):  # files not on this machine
        return 0
    limit = config.get("test_limit")
    return min(n, int(limit)) if limit else n


def barrier_noise(row: Mapping[str, Any]) -> tuple[float, str]:
    """The standard error of a row's error barrier, as `connectivity.barrier_estimate` gives it:
    the spread over its seed pairs (√(s²/m), when there are several) and the test set's part
    for a paired difference on the same images (`connectivity.paired_stderr`), in quadrature."""
    pairs = int(row.get("pairs") or 1)
    spread = number(row.get("error_barrier_std"))
    n = int(row.get("test_images") or 0)
    over_pairs = spread / math.sqrt(pairs) if pairs > 1 and math.isfinite(spread) else math.nan
    if n <= 0:
        if math.isnan(over_pairs):
            return math.nan, "one pair, test-set size not recorded"
        return over_pairs, f"spread over {pairs} pairs (test-set size not recorded)"
    test = paired_stderr(number(row.get("error_barrier")), n)
    if math.isnan(over_pairs):
        return test, f"one pair: paired error on {n} images"
    return math.hypot(over_pairs, test), f"spread over {pairs} pairs ⊕ paired error on {n} images"


def percent(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{100 * x:.2f}%"


def near(rows: Sequence[Mapping[str, Any]], method: str, sparsity: float, tol: float = 0.02):
    for r in rows:
        if r.get("method") == method and abs(number(r.get("sparsity")) - sparsity) <= tol:
            return r
    return None


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
