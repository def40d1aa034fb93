"""Loss and accuracy along a line in weight space (`Curve`), and the height of its bump (`Barrier`).

An interpolation between two solutions and a line through a point along a direction are both
curves; `Curve.barrier` gives Frankle et al.'s barrier (the metric's maximum minus the mean of
the two ends, or minus the straight line between them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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

    @property
    def precision(self) -> str:
        """The arithmetic of the forward passes: "float32" or "bfloat16"."""
        return str(self.meta.get("precision", "float32"))

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
