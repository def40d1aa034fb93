"""What an instability analysis returns: `Instability` (the curves between children spawned at
one step k, and their barriers over pairs) and `InstabilityCurve` (one per spawn step)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lmc_toolkit.landscape.curve import Curve
from lmc_toolkit.training.config import TrainConfig
from lmc_toolkit.training.results import TrainResult


@dataclass(frozen=True, eq=False)
class Instability:
    """The curves between children spawned at step k, and their barriers over pairs."""

    k: int
    pairs: tuple[tuple[int, int], ...]
    curves: tuple[Curve, ...]
    error_barriers: np.ndarray
    loss_barriers: np.ndarray
    children: Mapping[int, TrainResult]
    config: TrainConfig
    bn: str
    meta: Mapping[str, Any] = field(default_factory=dict)
    align: str = "none"
    unaligned: Mapping[str, np.ndarray] | None = None

    @property
    def error_barrier(self) -> float:
        """Mean error barrier over pairs."""
        return float(self.error_barriers.mean())

    @property
    def error_barrier_std(self) -> float:
        """The sample standard deviation over pairs (ddof 1; NaN for one pair)."""
        return sample_std(self.error_barriers)

    @property
    def loss_barrier(self) -> float:
        return float(self.loss_barriers.mean())

    @property
    def loss_barrier_std(self) -> float:
        return sample_std(self.loss_barriers)

    def to_dict(self) -> dict[str, Any]:
        """Curves, barriers and metadata; the children's weights stay in the store."""
        return {
            "k": self.k,
            "pairs": [list(p) for p in self.pairs],
            "curves": [c.to_dict() for c in self.curves],
            "error_barriers": self.error_barriers.tolist(),
            "loss_barriers": self.loss_barriers.tolist(),
            "config": asdict(self.config),
            "bn": self.bn,
            "meta": dict(self.meta),
            **(
                {
                    "align": self.align,
                    "unaligned": {k: v.tolist() for k, v in self.unaligned.items()},
                }
                if self.align != "none" and self.unaligned is not None
                else {}
            ),
        }

    def plot(self, **kwargs: Any) -> Any:
        """The children's interpolation curves (see `plots.plot_curve`)."""
        from lmc_toolkit.plots.connectivity import plot_curve

        return plot_curve(list(self.curves), **kwargs)


@dataclass(frozen=True, eq=False)
class InstabilityCurve:
    """Instability against the spawn step k (figure F3)."""

    ks: tuple[int, ...]
    results: tuple[Instability, ...]
    label: str = ""

    @property
    def error_barriers(self) -> np.ndarray:
        return np.array([r.error_barrier for r in self.results])

    @property
    def error_barrier_stds(self) -> np.ndarray:
        return np.array([r.error_barrier_std for r in self.results])

    @property
    def loss_barriers(self) -> np.ndarray:
        return np.array([r.loss_barrier for r in self.results])

    def to_dict(self) -> dict[str, Any]:
        return {
            "ks": list(self.ks),
            "label": self.label,
            "error_barriers": self.error_barriers.tolist(),
            "error_barrier_stds": self.error_barrier_stds.tolist(),
            "loss_barriers": self.loss_barriers.tolist(),
            "results": [r.to_dict() for r in self.results],
        }

    def plot(self, **kwargs: Any) -> Any:
        """Barrier against k (see `plots.plot_barriers`)."""
        from lmc_toolkit.plots.connectivity import plot_barriers

        series = {
            self.label or "error barrier": (self.ks, self.error_barriers, self.error_barrier_stds)
        }
        kwargs.setdefault("x_title", "spawn step k")
        return plot_barriers(series, **kwargs)


def sample_std(values: Any) -> float:
    """The sample standard deviation (ddof 1) of `values`; NaN for fewer than two."""
    v = np.asarray(values, float)
    return float(v.std(ddof=1)) if v.size > 1 else math.nan
