"""How to train: `TrainConfig` (optimizer, schedule, batch size, augmentation), checked on creation.

Its non-default fields name stored runs, so defaults never change (CONTRIBUTING.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from lmc_toolkit.data.dataset import (
    AUGMENTATIONS,
    Augmentation,
    check_batch_size,
)

OptimizerName = Literal["sgd", "adam"]
OPTIMIZERS: tuple[OptimizerName, ...] = get_args(OptimizerName)


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Milestones are in epochs (fractions allowed); `steps`, when set, replaces
    `epochs` as the length of training."""

    epochs: float = 10
    steps: int | None = None
    batch_size: int = 64
    optimizer: OptimizerName = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    milestones: tuple[float, ...] = ()
    gamma: float = 0.2
    warmup_steps: int = 0
    augment: Augmentation = "none"

    def __post_init__(self) -> None:
        check_batch_size(self.batch_size)
        if self.steps is None and not (
            isinstance(self.epochs, int | float) and 0 < self.epochs < math.inf
        ):
            raise ValueError(f"epochs must be a finite number > 0, got {self.epochs!r}")
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 0):
            raise ValueError(f"steps must be an int ≥ 0, got {self.steps!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not (0 <= self.weight_decay < math.inf) or not 0 <= self.momentum < 1:
            raise ValueError(
                f"need weight_decay ≥ 0 and 0 ≤ momentum < 1, got {self.weight_decay}, "
                f"{self.momentum}"
            )
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {self.augment!r}")
        if self.warmup_steps < 0 or not 0 < self.gamma < math.inf:
            raise ValueError(f"need warmup_steps ≥ 0 and gamma > 0, got {self}")
        bad = [m for m in self.milestones if not 0 <= m < math.inf]
        if bad:
            raise ValueError(f"milestones must be finite epochs ≥ 0, got {bad[0]!r}")
        object.__setattr__(self, "milestones", tuple(sorted(float(m) for m in self.milestones)))

    def total_steps(self, steps_per_epoch: int) -> int:
        """The length of training in optimizer steps."""
        if self.steps is not None:
            return self.steps
        return round(self.epochs * steps_per_epoch)

    def lr_at(self, step: int, steps_per_epoch: int) -> float:
        """The learning rate of optimizer step `step` (0-based): warm-up, then MultiStep."""
        lr = self.lr * self.gamma ** sum(
            step >= round(m * steps_per_epoch) for m in self.milestones
        )
        if step < self.warmup_steps:
            lr *= (step + 1) / self.warmup_steps
        return lr
