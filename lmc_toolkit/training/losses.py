"""The loss a function scores: cross-entropy (the default), mean squared error, or the user's own.

One meaning everywhere a loss is used (training, evaluation, the landscape, the curvature
operators): `loss(out, y)` is the *mean* loss of a batch, so the loss of the data is the
batch-size-weighted mean of its batches' losses. Accuracy is counted only for class labels;
for float (regression) targets it is NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

#: the losses named by a string; any callable `loss(out, y) -> mean loss` works as well
LossName = Literal["cross_entropy", "mse"]
LOSSES: tuple[LossName, ...] = get_args(LossName)

LossFn = Callable[[Tensor, Tensor], Tensor]


def mse(out: Tensor, y: Tensor) -> Tensor:
    """Mean squared error against float regression targets, or against the one-hot code of
    class labels."""
    if y.is_floating_point():
        return F.mse_loss(out, y.reshape(out.shape).to(out.dtype))
    return F.mse_loss(out, F.one_hot(y, out.shape[-1]).to(out.dtype))


def loss_function(loss: str | LossFn) -> LossFn:
    """The mean-loss function `loss` names (one of `LOSSES`), or `loss` itself if callable."""
    if callable(loss):
        return loss
    if loss == "cross_entropy":
        return F.cross_entropy
    if loss == "mse":
        return mse
    raise ValueError(f"loss must be one of {LOSSES} or a callable loss(out, y), got {loss!r}")


def loss_name(loss: str | LossFn) -> str:
    """How a loss is reported in results: its name, or a callable's `__name__`."""
    return loss if isinstance(loss, str) else getattr(loss, "__name__", "custom")


def batch_scores(loss: str | LossFn, out: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """The summed loss of one batch (float64) and which of its examples are right (all False
    for regression targets, whose accuracy is reported as NaN)."""
    if loss == "cross_entropy":
        total = F.cross_entropy(out, y, reduction="sum").double()
    else:
        total = loss_function(loss)(out, y).double() * len(y)
    if y.is_floating_point():
        return total, torch.zeros(len(y), dtype=torch.bool, device=out.device)
    return total, out.argmax(-1) == y


def check_loss(loss: str | LossFn, regression: bool, what: str, who: str) -> None:
    """Refuse a loss that names no loss, or one that cannot score `what`'s targets
    (cross-entropy on float targets)."""
    loss_function(loss)  # an unknown name is refused there
    if regression and loss == "cross_entropy":
        raise ValueError(
            f"{what} has float (regression) targets, which cross-entropy cannot score; pass "
            f"loss='mse' or a callable loss(out, y) to {who}"
        )
