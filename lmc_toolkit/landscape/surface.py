"""`Surface`: loss and accuracy over a 2-D grid of weight space, with the models marked on it.

A surface is data, separate from drawing it (`Surface.plot`). NaN marks a point not yet
computed, so a grid saved mid-way is resumed where it stopped (`landscape.plane(path=...)`).
Files are tensors and JSON metadata, loaded without unpickling code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmc_toolkit.store.files import atomic_torch_save, safe_torch_load

_FORMAT = "lmc_toolkit.surface/1"


@dataclass(frozen=True)
class Marker:
    """A model's place on the plane; `off_plane` is its distance from the plane (0 if on it)."""

    label: str
    x: float
    y: float
    off_plane: float = 0.0


@dataclass(frozen=True, eq=False)
class Surface:
    """Loss and accuracy at every (x, y) of a grid: arrays of shape (len(y), len(x)).

    `meta` records what the plane is (kind, direction seeds and normalization, BN policy,
    dataset, a fingerprint of centre and directions used to refuse resuming another plane).
    """

    x: np.ndarray
    y: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray
    markers: tuple[Marker, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def error(self) -> np.ndarray:
        return 1.0 - self.accuracy

    @property
    def missing(self) -> int:
        """How many grid points are not computed yet."""
        return int(np.isnan(self.loss).sum())

    @property
    def complete(self) -> bool:
        return self.missing == 0

    @property
    def bn(self) -> str:
        return str(self.meta.get("bn", ""))

    @property
    def precision(self) -> str:
        """The arithmetic of the forward passes: "float32" or "bfloat16"."""
        return str(self.meta.get("precision", "float32"))

    def values(self, metric: str) -> np.ndarray:
        """`"loss"`, `"error"` or `"accuracy"` over the grid."""
        table = {"loss": self.loss, "error": self.error, "accuracy": self.accuracy}
        if metric not in table:
            raise ValueError(f"metric must be one of {tuple(table)}, got {metric!r}")
        return table[metric]

    def at(self, x: float, y: float) -> tuple[float, float]:
        """(loss, accuracy) at the grid point nearest to (x, y)."""
        i, j = int(np.abs(self.y - y).argmin()), int(np.abs(self.x - x).argmin())
        return float(self.loss[i, j]), float(self.accuracy[i, j])

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "x": self.x.tolist(),
            "y": self.y.tolist(),
            "loss": self.loss.tolist(),
            "accuracy": self.accuracy.tolist(),
            "markers": [vars(m).copy() for m in self.markers],
            "meta": dict(self.meta),
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> Surface:
        return Surface(
            x=np.asarray(d["x"], float),
            y=np.asarray(d["y"], float),
            loss=np.asarray(d["loss"], float),
            accuracy=np.asarray(d["accuracy"], float),
            markers=tuple(Marker(**m) for m in d["markers"]),
            meta=dict(d["meta"]),
        )

    def save(self, path: str | Path) -> Path:
        """Write the surface to one file, atomically (NaN = not computed yet)."""
        payload = {
            "format": _FORMAT,
            "x": torch.from_numpy(np.ascontiguousarray(self.x, dtype=np.float64)),
            "y": torch.from_numpy(np.ascontiguousarray(self.y, dtype=np.float64)),
            "loss": torch.from_numpy(np.ascontiguousarray(self.loss, dtype=np.float64)),
            "accuracy": torch.from_numpy(np.ascontiguousarray(self.accuracy, dtype=np.float64)),
            "markers": json.dumps([vars(m) for m in self.markers]),
            "meta": json.dumps(dict(self.meta), sort_keys=True),
        }
        return atomic_torch_save(payload, path)

    @staticmethod
    def load(path: str | Path) -> Surface:
        """Read a surface written by `Surface.save`."""
        d = safe_torch_load(path)
        if not isinstance(d, dict) or d.get("format") != _FORMAT:
            raise ValueError(f"{path} is not an lmc_toolkit surface file (format {_FORMAT!r})")
        return Surface(
            x=d["x"].numpy(),
            y=d["y"].numpy(),
            loss=d["loss"].numpy().copy(),
            accuracy=d["accuracy"].numpy().copy(),
            markers=tuple(Marker(**m) for m in json.loads(d["markers"])),
            meta=json.loads(d["meta"]),
        )

    def plot(self, metric: str = "loss", log: bool = False, **kwargs: Any) -> Any:
        """A contour and a 3-D surface with the models marked (see `plots.plot_surface`)."""
        from lmc_toolkit.plots.connectivity import plot_surface

        return plot_surface(self, metric=metric, log=log, **kwargs)


def empty_surface(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    markers: Sequence[Marker],
    meta: Mapping[str, Any],
) -> Surface:
    """A surface of the grid with every point still to compute (NaN)."""
    shape = (len(y), len(x))
    return Surface(
        np.asarray(x, float),
        np.asarray(y, float),
        np.full(shape, np.nan),
        np.full(shape, np.nan),
        tuple(markers),
        dict(meta),
    )
