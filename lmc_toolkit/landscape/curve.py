"""Loss and accuracy along a line in weight space (`Curve`), and the height of its bump (`Barrier`).

An interpolation between two solutions and a line through a point along a direction are both
curves; `Curve.barrier` gives Frankle et al.'s barrier (the metric's maximum minus the mean of
the two ends, or minus the straight line between them). An interpolation curve also keeps which
test images each network along it gets right (`correct`, bit-packed when saved): the per-image
evidence from which `connectivity.intervals` computes a barrier's test-set error.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

Metric = Literal["error", "loss"]
METRICS: tuple[Metric, ...] = get_args(Metric)


Baseline = Literal["mean", "linear"]
BASELINES: tuple[Baseline, ...] = get_args(Baseline)


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
    and `meta` says what was evaluated (dataset, mask sparsity, labels, timings). `correct`
    (len(alphas) x n bool, or None) says which of the n images each point gets right.
    """

    alphas: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray
    bn: str = "recalibrate"
    kind: str = "interpolation"
    label: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)
    correct: np.ndarray | None = None

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
        heights, where = bumps(self.values(metric), self.alphas, baseline)
        return Barrier(float(heights), float(where), metric, baseline)

    def to_dict(self) -> dict[str, Any]:
        return {
            "alphas": self.alphas.tolist(),
            "loss": self.loss.tolist(),
            "accuracy": self.accuracy.tolist(),
            "bn": self.bn,
            "kind": self.kind,
            "label": self.label,
            "meta": dict(self.meta),
            **({} if self.correct is None else {"correct": pack_bits(self.correct)}),
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
            correct=unpack_bits(d["correct"]) if d.get("correct") else None,
        )

    def plot(self, **kwargs: Any) -> Any:
        """A plotly figure: loss and error along the curve (see `plots.plot_curve`)."""
        from lmc_toolkit.plots.connectivity import plot_curve

        return plot_curve([self], **kwargs)


def bumps(values: np.ndarray, alphas: np.ndarray, baseline: str = "mean") -> tuple[Any, Any]:
    """The barrier of each row of `values` (..., len(alphas)): the highest value at α in [0, 1]
    above the baseline (the mean of the two ends, or the straight line between them), and the
    α where it is reached. Rows are curves: one per pair, or per bootstrap resample."""
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}")
    alphas = np.asarray(alphas, float)
    ends = [np.flatnonzero(np.isclose(alphas, e, rtol=0, atol=1e-9)) for e in (0, 1)]
    if any(len(i) == 0 for i in ends):
        raise ValueError("a barrier needs the curve's values at α = 0 and α = 1")
    values = np.asarray(values, float)
    v0, v1 = values[..., ends[0][:1]], values[..., ends[1][:1]]
    inside = (alphas >= -1e-9) & (alphas <= 1 + 1e-9)
    a, v = alphas[inside], values[..., inside]
    ref = (v0 + v1) / 2 if baseline == "mean" else (1 - a) * v0 + a * v1
    bump = v - ref
    i = np.argmax(bump, axis=-1)
    return np.take_along_axis(bump, i[..., None], -1)[..., 0], a[i]


def pack_bits(bits: np.ndarray) -> dict[str, Any]:
    """A 2-D bool array as JSON: its shape and its bits packed row-major, base64-encoded
    (11 x 10,000 images: 14 KB of bits, 18 KB of text)."""
    bits = np.asarray(bits, bool)
    if bits.ndim != 2:
        raise ValueError(f"pack_bits takes a 2-D bool array, got shape {bits.shape}")
    packed = np.packbits(bits, axis=None)
    return {"shape": list(bits.shape), "bits": base64.b64encode(packed.tobytes()).decode()}


def unpack_bits(d: Mapping[str, Any]) -> np.ndarray:
    """The bool array `pack_bits` wrote."""
    rows, cols = (int(v) for v in d["shape"])
    raw = np.frombuffer(base64.b64decode(d["bits"]), np.uint8)
    return np.unpackbits(raw, count=rows * cols).astype(bool).reshape(rows, cols)
