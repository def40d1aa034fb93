"""Linear mode connectivity: interpolation curves and their barriers, among two or more solutions.

`interpolate(a, b, data)` scores (1-α)·a + α·b for a grid of α on the one evaluator; the
`Curve` it returns gives Frankle et al.'s barrier. `pairwise` does it for every pair of several
solutions and adds their weight distances. Instability analysis (training copies from a
spawn point) lives in `lmc_toolkit.instability`.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import Tensor, nn

from lmc_toolkit.batchnorm import BNPolicy, as_policy
from lmc_toolkit.data import Dataset
from lmc_toolkit.endpoints import Solution, apply_mask, sparsity, split_solution, template_of
from lmc_toolkit.evaluator import Evaluator
from lmc_toolkit.lazy import lazy_exports
from lmc_toolkit.params import norm, sub

METRICS = ("error", "loss")
BASELINES = ("mean", "linear")


@dataclass(frozen=True)
class Barrier:
    """The height of a curve's bump above a baseline, and the α where it peaks."""

    value: float
    alpha: float
    metric: str
    baseline: str


@dataclass(frozen=True, eq=False)
class Curve:
    """Loss and accuracy along a line in weight space.

    For an interpolation, `alphas` are the α of (1-α)·a + α·b (0 and 1 included); for a line
    through a point along a direction, the coordinates along it. `bn` is the BatchNorm policy
    and `meta` says what was evaluated (dataset, mask sparsity, labels, timings).
    """

    alphas: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray
    bn: str = "recalibrate"
    kind: str = "interpolation"
    label: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def error(self) -> np.ndarray:
        return 1.0 - self.accuracy

    def values(self, metric: str) -> np.ndarray:
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        return self.error if metric == "error" else self.loss

    def barrier(self, metric: str = "error", baseline: str = "mean") -> Barrier:
        """Frankle et al.'s barrier: max over α in [0, 1] of the metric minus the mean of the
        two ends (`baseline="mean"`), or minus the straight line between them (`"linear"`)."""
        values = self.values(metric)
        if baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}")
        ends = [np.flatnonzero(np.isclose(self.alphas, e, rtol=0, atol=1e-9)) for e in (0, 1)]
        if any(len(i) == 0 for i in ends):
            raise ValueError("a barrier needs the curve's values at α = 0 and α = 1")
        v0, v1 = values[ends[0][0]], values[ends[1][0]]
        inside = (self.alphas >= -1e-9) & (self.alphas <= 1 + 1e-9)
        a, v = self.alphas[inside], values[inside]
        ref = (v0 + v1) / 2 if baseline == "mean" else (1 - a) * v0 + a * v1
        bump = v - ref
        i = int(np.argmax(bump))
        return Barrier(float(bump[i]), float(a[i]), metric, baseline)

    def to_dict(self) -> dict[str, Any]:
        return {
            "alphas": self.alphas.tolist(),
            "loss": self.loss.tolist(),
            "accuracy": self.accuracy.tolist(),
            "bn": self.bn,
            "kind": self.kind,
            "label": self.label,
            "meta": dict(self.meta),
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> Curve:
        return Curve(
            alphas=np.asarray(d["alphas"], float),
            loss=np.asarray(d["loss"], float),
            accuracy=np.asarray(d["accuracy"], float),
            bn=d["bn"],
            kind=d["kind"],
            label=d["label"],
            meta=dict(d["meta"]),
        )

    def plot(self, **kwargs: Any) -> Any:
        """A plotly figure: loss and error along the curve (see `plots.plot_curve`)."""
        from lmc_toolkit.plots.connectivity import plot_curve

        return plot_curve([self], **kwargs)


def alpha_grid(alphas: int | Sequence[float] | np.ndarray) -> np.ndarray:
    """Evenly spaced α in [0, 1] for an int, else the given α with 0 and 1 added, sorted."""
    if isinstance(alphas, bool):
        raise TypeError("alphas must be an int or a sequence of numbers, got a bool")
    if isinstance(alphas, int):
        if alphas < 2:
            raise ValueError(f"alphas needs at least 2 points (0 and 1), got {alphas}")
        return np.linspace(0.0, 1.0, alphas)
    grid = np.asarray(alphas, dtype=float).ravel()
    if not np.isfinite(grid).all():
        raise ValueError(f"alphas must be finite numbers, got {grid}")
    return np.unique(np.concatenate([grid, [0.0, 1.0]]))


def _bn_policy(bn: str | BNPolicy) -> BNPolicy:
    return as_policy(bn)


def interpolate(
    a: Solution,
    b: Solution,
    data: Dataset,
    alphas: int | Sequence[float] | np.ndarray = 31,
    bn: str | BNPolicy = "recalibrate",
    mask: Mapping[str, Tensor] | None = None,
    *,
    model: nn.Module | None = None,
    bn_data: Dataset | None = None,
    label: str = "",
    progress: bool = True,
    **evaluator_options: Any,
) -> Curve:
    """Loss and accuracy of (1-α)·a + α·b on `data` for every α.

    `a` and `b` are models, state dicts or parameter dicts (`model=` gives the architecture
    when neither is a model). With `mask`, pruned coordinates are zero all along the path.
    `bn` is the BatchNorm policy: `"recalibrate"` re-estimates the statistics at every α on
    fixed batches of `bn_data` (default: `data`), `"interpolate"` interpolates them, `"eval"`
    uses a's. Extra keywords go to the `Evaluator` (method, batch_size, compile...).
    """
    policy = _bn_policy(bn)
    grid = alpha_grid(alphas)
    template = template_of([a, b], model)
    pa, buf_a = split_solution(a, template, "a")
    pb, buf_b = split_solution(b, template, "b")
    pa, pb = apply_mask(pa, mask), apply_mask(pb, mask)
    start = time.perf_counter()
    evaluator = Evaluator(
        template, data, bn=policy, bn_data=bn_data, progress=progress, **evaluator_options
    )
    buffer_dirs = [sub(buf_b, buf_a)] if policy.mode == "interpolate" else None
    result = evaluator(
        pa, [sub(pb, pa)], grid[:, None], buffers=buf_a, buffer_directions=buffer_dirs
    )
    meta = {
        "dataset": data.name,
        "n": len(data),
        "sparsity": sparsity(pa, mask),
        "distance": float(norm(sub(pb, pa))),
        "bn_policy": policy.to_dict(),
        "seconds": time.perf_counter() - start,
        "evaluator": dict(result.details),
    }
    return Curve(grid, result.loss, result.accuracy, policy.mode, "interpolation", label, meta)


@dataclass(frozen=True, eq=False)
class PairwiseResult:
    """Barriers and weight distances among several solutions (figure F8).

    `error_barriers[i, j]` and `loss_barriers[i, j]` are the barriers of the curve from
    solution i to j (symmetric, zero diagonal); `distances[i, j]` is ‖θ_i − θ_j‖₂ over the
    (masked) parameters.
    """

    labels: tuple[str, ...]
    error_barriers: np.ndarray
    loss_barriers: np.ndarray
    distances: np.ndarray
    curves: Mapping[tuple[int, int], Curve]
    bn: str
    meta: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "error_barriers": self.error_barriers.tolist(),
            "loss_barriers": self.loss_barriers.tolist(),
            "distances": self.distances.tolist(),
            "curves": {f"{i}-{j}": c.to_dict() for (i, j), c in self.curves.items()},
            "bn": self.bn,
            "meta": dict(self.meta),
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> PairwiseResult:
        curves = {}
        for key, c in d["curves"].items():
            i, j = (int(v) for v in key.split("-"))
            curves[(i, j)] = Curve.from_dict(c)
        return PairwiseResult(
            labels=tuple(d["labels"]),
            error_barriers=np.asarray(d["error_barriers"], float),
            loss_barriers=np.asarray(d["loss_barriers"], float),
            distances=np.asarray(d["distances"], float),
            curves=curves,
            bn=d["bn"],
            meta=dict(d["meta"]),
        )

    def plot(self, **kwargs: Any) -> Any:
        """Heat maps of the barrier and distance matrices (see `plots.plot_pairwise`)."""
        from lmc_toolkit.plots.connectivity import plot_pairwise

        return plot_pairwise(self, **kwargs)


def pairwise(
    models: Sequence[Solution],
    data: Dataset,
    alphas: int | Sequence[float] | np.ndarray = 11,
    bn: str | BNPolicy = "recalibrate",
    mask: Mapping[str, Tensor] | None = None,
    *,
    labels: Sequence[str] | None = None,
    model: nn.Module | None = None,
    bn_data: Dataset | None = None,
    progress: bool = True,
    **evaluator_options: Any,
) -> PairwiseResult:
    """Interpolate every pair of `models` and measure their distances (figure F8)."""
    models = list(models)
    if len(models) < 2:
        raise ValueError(f"pairwise needs at least 2 solutions, got {len(models)}")
    labels = tuple(labels) if labels is not None else tuple(f"#{i}" for i in range(len(models)))
    if len(labels) != len(models):
        raise ValueError(f"got {len(labels)} labels for {len(models)} solutions")
    template = template_of(models, model)
    params = [
        apply_mask(split_solution(m, template, f"solution {labels[i]}")[0], mask)
        for i, m in enumerate(models)
    ]
    _bn_policy(bn)
    alpha_grid(alphas)
    n = len(models)
    errors, losses, distances = np.zeros((n, n)), np.zeros((n, n)), np.zeros((n, n))
    curves = {}
    for i, j in itertools.combinations(range(n), 2):
        curve = interpolate(
            models[i],
            models[j],
            data,
            alphas,
            bn,
            mask,
            model=template,
            bn_data=bn_data,
            label=f"{labels[i]}–{labels[j]}",
            progress=progress,
            **evaluator_options,
        )
        curves[(i, j)] = curve
        errors[i, j] = errors[j, i] = curve.barrier("error").value
        losses[i, j] = losses[j, i] = curve.barrier("loss").value
        distances[i, j] = distances[j, i] = float(norm(sub(params[i], params[j])))
    meta = {"dataset": data.name, "n": len(data), "sparsity": sparsity(params[0], mask)}
    return PairwiseResult(labels, errors, losses, distances, curves, as_policy(bn).mode, meta)


_INSTABILITY = ("Instability", "InstabilityCurve", "instability", "instability_vs_k")
#: Instability analysis builds on `interpolate` and lives in `lmc_toolkit.instability`; its
#: names resolve here too, lazily, so either module can be imported first.
__getattr__ = lazy_exports(__name__, dict.fromkeys(_INSTABILITY, "instability"))


__all__ = [
    "Barrier",
    "Curve",
    "PairwiseResult",
    "alpha_grid",
    "interpolate",
    "pairwise",
]
