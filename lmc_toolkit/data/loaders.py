"""What the toolkit reads from a user's loader, shared by `entrance` and `stream`: whether it
keeps its order, its class names, and each batch in the toolkit's form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils import data as tud

from lmc_toolkit.data.inputs import Inputs, check_inputs, count, is_dict

_RANDOM_SAMPLERS = (tud.RandomSampler, tud.SubsetRandomSampler, tud.WeightedRandomSampler)


def check_ordered(loader: tud.DataLoader, what: str) -> None:
    """Refuse a loader that shuffles: its order changes from pass to pass."""
    sampler = loader.sampler
    inner = getattr(loader.batch_sampler, "sampler", None)
    if isinstance(sampler, _RANDOM_SAMPLERS) or isinstance(inner, _RANDOM_SAMPLERS):
        raise ValueError(
            f"{what} is a DataLoader that shuffles ({type(inner or sampler).__name__}): its "
            f"order changes from pass to pass, so results would not be reproducible; pass "
            f"shuffle=False (the toolkit shuffles by data_seed with its own seeded generator)"
        )


def classes_of(source: Any) -> list[str] | None:
    """A torchvision-style dataset's class names, if it has them."""
    classes = getattr(source, "classes", None)
    if isinstance(classes, Sequence) and not isinstance(classes, str):
        return [str(c) for c in classes]
    return None


def as_targets(y: Any) -> Tensor:
    """Targets as the toolkit holds them: integer labels as a long N vector (an N×1 column
    flattened), float targets as they are."""
    y = torch.as_tensor(y)
    if y.dtype in (torch.int8, torch.int16, torch.int32, torch.uint8):
        y = y.long()
    if y.dtype == torch.long and y.dim() == 2 and y.shape[1] == 1:
        y = y.flatten()
    return y


def read_batch(batch: Any, i: int, what: str) -> tuple[Inputs, Tensor]:
    """Batch `i` of `what` as (inputs, targets), checked: an (x, y) pair, x a tensor or a dict
    of tensors, y targets (`as_targets`) with one per input."""
    if not isinstance(batch, tuple | list) or len(batch) != 2:
        if isinstance(batch, Tensor):
            got = f"a tensor of shape {tuple(batch.shape)}"
        else:
            got = type(batch).__name__
        size = f" of length {len(batch)}" if isinstance(batch, tuple | list) else ""
        raise TypeError(f"{what}: batch {i} must be an (x, y) pair, got {got}{size}")
    x, y = batch
    x = check_inputs(x if is_dict(x) else torch.as_tensor(x), f"{what}: batch {i}'s x")
    y = as_targets(y)
    if y.dim() == 0:
        raise ValueError(f"{what}: batch {i} holds 0-d targets; batches are N×… (x) and N (y)")
    if count(x) != len(y):
        raise ValueError(f"{what}: batch {i} has {count(x)} inputs but {len(y)} targets")
    return x, y
