"""A model's inputs: one tensor (N×… features, images or token ids) or a dict of such tensors.

Models whose `forward` takes a dict (several inputs, text with its attention mask) get the
dict back batch by batch, every tensor indexed along its first (example) dimension. These
helpers do for both kinds what a tensor's own methods do for one: count, index, move, join,
describe; everything that batches data goes through them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import torch
from torch import Tensor
from typing_extensions import TypeIs

#: a batch of inputs: one tensor, or name → tensor with the examples along dimension 0
Inputs: TypeAlias = Tensor | Mapping[str, Tensor]


def is_dict(x: Any) -> TypeIs[Mapping[str, Tensor]]:
    """Whether `x` is a dict of input tensors (rather than one tensor)."""
    return isinstance(x, Mapping)


def check_inputs(x: Any, what: str = "Dataset.x") -> Inputs:
    """`x` validated: a tensor N×… (float or integer), or a non-empty dict of such tensors
    with string keys and the same N (returned as a plain dict)."""
    if isinstance(x, Mapping):
        if not x or not all(isinstance(k, str) for k in x):
            raise ValueError(f"{what} as a dict needs at least one entry, with string keys")
        for k, t in x.items():
            _check_tensor(t, f"{what}[{k!r}]")
        lengths = {k: len(t) for k, t in x.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"{what}'s tensors hold different numbers of examples: {lengths}")
        return dict(x)
    _check_tensor(x, what)
    return x


def _check_tensor(t: Any, what: str) -> None:
    if not isinstance(t, Tensor) or t.dim() < 1 or t.dtype == torch.bool or t.is_complex():
        got = (tuple(t.shape), t.dtype) if isinstance(t, Tensor) else type(t).__name__
        raise ValueError(
            f"{what} must be a float or integer tensor N×… (N×D features, N×C×H×W images, "
            f"N×T token ids) or a dict of them, got {got}"
        )


def count(x: Inputs) -> int:
    """How many examples `x` holds."""
    return len(next(iter(x.values()))) if isinstance(x, Mapping) else len(x)


def take(x: Inputs, index: Any) -> Inputs:
    """The examples of `x` at `index` (an int range, indices or a bool mask)."""
    return {k: t[index] for k, t in x.items()} if isinstance(x, Mapping) else x[index]


def move(x: Inputs, device: torch.device | str) -> Inputs:
    """`x` on `device` (no copy where it is already there)."""
    return {k: t.to(device) for k, t in x.items()} if isinstance(x, Mapping) else x.to(device)


def device_of(x: Inputs) -> torch.device:
    return next(iter(x.values())).device if isinstance(x, Mapping) else x.device


def cat(parts: Sequence[Inputs]) -> Inputs:
    """Batches of inputs joined along the example dimension (dict batches key by key)."""
    dicts = [p for p in parts if is_dict(p)]
    tensors = [p for p in parts if isinstance(p, Tensor)]
    if dicts:
        keys: list[str] = list(dicts[0])
        if tensors or any(list(p) != keys for p in dicts):
            raise ValueError(f"the batches' input dicts differ in their keys (first: {keys})")
        return {k: torch.cat([p[k] for p in dicts]) for k in keys}
    return torch.cat(tensors)


def shape_of(x: Inputs) -> tuple[int, ...] | dict[str, tuple[int, ...]]:
    """The shape of one example: a tuple, or name → tuple for dict inputs."""
    if isinstance(x, Mapping):
        return {k: tuple(t.shape[1:]) for k, t in x.items()}
    return tuple(x.shape[1:])


def image_shape(shape: tuple[int, ...] | Mapping[str, tuple[int, ...]]) -> tuple[int, int, int]:
    """`shape` (one example's, as `shape_of` gives it) as the C×H×W a registry model is built
    for; a `ValueError` for dict inputs and for shapes that are not three positive ints."""
    if isinstance(shape, Mapping) or len(shape) != 3 or not all(d > 0 for d in shape):
        raise ValueError(
            f"in_shape must be three positive ints (C, H, W) for a registry model, got {shape!r}"
        )
    return (shape[0], shape[1], shape[2])


def chunks(x: Inputs, size: int) -> list[Inputs]:
    """`x` in consecutive pieces of `size` examples (views, the last one shorter)."""
    return [take(x, slice(i, i + size)) for i in range(0, count(x), size)]


def describe(x: Inputs) -> str:
    """Shapes and dtypes for error messages: "(2, 20) float32" or "{'ids': (2, 8) int64}"."""
    if isinstance(x, Mapping):
        inner = ", ".join(f"{k!r}: {describe(t)}" for k, t in x.items())
        return "{" + inner + "}"
    return f"{tuple(x.shape)} {str(x.dtype).removeprefix('torch.')}"


def leaves(x: Inputs, name: str = "x") -> dict[str, Tensor]:
    """The tensors of `x` by name ("x", or "x.<key>" for dict inputs): for fingerprints and
    files."""
    if isinstance(x, Mapping):
        return {f"{name}.{k}": t for k, t in x.items()}
    return {name: x}
