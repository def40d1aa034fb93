"""The points an evaluator scores and what it returns for them: coordinates checked against
the base point and directions, grids of coordinates, and the per-point metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lmc_toolkit.training.params import check_compatible, is_finite


@dataclass(frozen=True, eq=False)
class PointMetrics:
    """Mean loss and accuracy at each of P points over `n` examples, and how they were computed."""

    loss: np.ndarray
    accuracy: np.ndarray
    n: int
    details: Mapping[str, Any] = field(default_factory=dict)
    #: (P, n) bool: which images each point gets right (only when asked: `per_image=True`)
    correct: np.ndarray | None = None

    @property
    def error(self) -> np.ndarray:
        return 1.0 - self.accuracy

    def __len__(self) -> int:
        return len(self.loss)


def check_points(
    net: nn.Module,
    base: Mapping[str, Tensor],
    directions: Sequence[Mapping[str, Tensor]],
    coords: Any,
) -> Tensor:
    """`coords` as a (points, directions) float64 tensor, after checking that the base point
    and every direction fit `net`'s parameters and are finite."""
    own = dict(net.named_parameters())
    check_compatible(own, dict(base), ("the model", "the base point"))
    if not is_finite(base):
        raise ValueError("the base point has NaN or inf weights; check the models given")
    for i, d in enumerate(directions):
        check_compatible(own, dict(d), ("the model", f"direction {i}"))
        if not is_finite(d):
            raise ValueError(f"direction {i} has NaN or inf entries")
    coords = torch.as_tensor(np.asarray(coords, dtype=np.float64))
    if coords.dim() == 1 and len(directions) == 1:
        coords = coords[:, None]
    if coords.dim() != 2 or coords.shape[1] != len(directions):
        raise ValueError(
            f"coords must have shape (points, {len(directions)}) for {len(directions)} "
            f"directions, got {tuple(coords.shape)}"
        )
    if coords.shape[0] == 0:
        raise ValueError("coords holds no points")
    if not torch.isfinite(coords).all():
        raise ValueError("coords has NaN or inf entries")
    return coords


def grid_coords(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> np.ndarray:
    """The (len(y)·len(x), 2) coordinates of a grid, row by row (y outer, x inner)."""
    xx: np.ndarray
    yy: np.ndarray
    xx, yy = np.meshgrid(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return np.stack([xx.ravel(), yy.ravel()], axis=1)
