"""BatchNorm policies for moved weights: which running statistics a parameter point is scored with.

When weights move (interpolation, planes) the stored running statistics of BatchNorm no longer
describe the activations. Three policies, recorded in every result:

- `"eval"`: the running statistics as stored (those of the base model of the path or plane);
- `"recalibrate"`: reset and re-estimate them at every point from a fixed set of training
  batches (the default wherever weights move);
- `"interpolate"`: interpolate them linearly between the two ends (the authors' choice; for
  interpolation only).

Models without running statistics (`convnet3`'s instance norm) are unaffected by the policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from lmc_toolkit.data.dataset import Dataset
from lmc_toolkit.data.entrance import as_dataset

BNMode = Literal["eval", "recalibrate", "interpolate"]
BN_POLICIES: tuple[BNMode, ...] = get_args(BNMode)


@dataclass(frozen=True)
class BNPolicy:
    """A BatchNorm policy and, for `"recalibrate"`, how its fixed training batches are drawn."""

    mode: str = "recalibrate"
    batches: int = 10
    batch_size: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in BN_POLICIES:
            raise ValueError(f"bn must be one of {BN_POLICIES}, got {self.mode!r}")
        for name in ("batches", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"BNPolicy.{name} must be a positive int, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> BNPolicy:
        return BNPolicy(**d)


def as_policy(bn: str | BNPolicy) -> BNPolicy:
    """A `BNPolicy` from a policy name or a policy."""
    if isinstance(bn, BNPolicy):
        return bn
    if not isinstance(bn, str):
        raise TypeError(f"bn must be one of {BN_POLICIES} or a BNPolicy, got {type(bn).__name__}")
    return BNPolicy(mode=bn)


def norm_layers(model: nn.Module) -> list[nn.modules.batchnorm._NormBase]:
    """The layers of `model` that keep running statistics (BatchNorm and friends)."""
    return [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._NormBase) and m.track_running_stats
    ]


def has_running_stats(model: nn.Module) -> bool:
    """Whether any layer of `model` keeps running statistics, i.e. whether the policy matters."""
    return bool(norm_layers(model))


def calibration_batches(data: Dataset, policy: BNPolicy) -> list[Tensor]:
    """The fixed training batches of a `"recalibrate"` policy, drawn from `policy.seed` alone."""
    data = as_dataset(data, "the BatchNorm calibration data")
    generator = torch.Generator().manual_seed(int(policy.seed))
    batches = []
    for x, _ in data.batches(policy.batch_size, generator, shuffle=True):
        batches.append(x)
        if len(batches) == policy.batches:
            break
    return batches


@torch.no_grad()
def recalibrate_(model: nn.Module, batches: Sequence[Tensor]) -> None:
    """Reset the running statistics of `model` (one the toolkit owns) and re-estimate them as
    the plain average over `batches`; the model is left in eval mode."""
    layers = norm_layers(model)
    if not layers:
        return
    if not batches:
        raise ValueError("recalibrating BatchNorm needs at least one batch")
    momenta = [m.momentum for m in layers]
    model.eval()
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: every batch counts equally
        m.train()
    try:
        for x in batches:
            model(x)
    finally:
        for m, momentum in zip(layers, momenta, strict=True):
            m.momentum = momentum
        model.eval()
