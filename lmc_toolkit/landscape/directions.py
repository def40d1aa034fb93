"""Directions in weight space: Li et al.'s filter-normalized random directions (or layer / no
normalization, pruned coordinates at zero), Gram-Schmidt, and the direction between two solutions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

import numpy as np
import torch
from torch import Tensor, nn

from lmc_toolkit.landscape.solutions import (
    Solution,
    split_solution,
    template_of,
)
from lmc_toolkit.training.params import Params, as_params, check_mask, dot, sub

DirectionNorm = Literal["filter", "layer", "none"]
NORMS: tuple[DirectionNorm, ...] = get_args(DirectionNorm)


def random_direction(
    params: nn.Module | Mapping[str, Tensor],
    seed: int,
    norm: DirectionNorm = "filter",
    ignore_1d: bool = True,
    mask: Mapping[str, Tensor] | None = None,
) -> Params:
    """A Gaussian direction drawn from `seed` alone, normalized to the weights `params`.

    Args:
        params: The weights the direction is scaled to (a model or a name → tensor dict).
        seed: Seeds the draw (the same seed gives the same direction on every device).
        norm: `"filter"` rescales each filter (slice along dim 0) to the norm of the matching
            weight filter (Li et al. 2018); `"layer"` each tensor to the weight tensor's norm;
            `"none"` keeps the raw draw.
        ignore_1d: Give the 1-D tensors (biases, norm parameters) zero; otherwise they are
            normalized as one filter.
        mask: Pruned coordinates are zero in the direction, and the weight filters are measured
            with them zeroed too.

    Returns:
        The direction, name → tensor.
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int, got {seed!r}")
    weights = as_params(params)
    masks = check_mask(weights, mask) or {}
    generator = torch.Generator().manual_seed(int(seed))
    out = {}
    for name, w in weights.items():
        draw = torch.randn(w.shape, generator=generator, dtype=torch.float64)
        w64 = w.detach().to("cpu", torch.float64)
        if name in masks:
            keep = masks[name].cpu()
            draw, w64 = draw * keep, w64 * keep
        if w.dim() <= 1 and ignore_1d:
            d = torch.zeros_like(draw)
        elif norm == "none":
            d = draw
        elif norm == "layer" or w.dim() <= 1:
            d = draw * _ratio(w64.norm(), draw.norm())
        else:
            dims = tuple(range(1, w.dim()))
            scale = _ratio(
                torch.linalg.vector_norm(w64, dim=dims, keepdim=True),
                torch.linalg.vector_norm(draw, dim=dims, keepdim=True),
            )
            d = draw * scale
        out[name] = d.to(device=w.device, dtype=w.dtype)
    return out


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    """num / den, with 0 where den is 0 (an all-pruned filter stays zero)."""
    return torch.where(den > 0, num / den.clamp_min(1e-300), torch.zeros_like(num))


def orthogonalize(d1: Mapping[str, Tensor], d2: Mapping[str, Tensor]) -> Params:
    """`d2` minus its projection on `d1` (Gram-Schmidt), so that ⟨d1, result⟩ = 0.

    Args:
        d1: A direction (name → tensor).
        d2: The direction to orthogonalize, over the same names.

    Returns:
        The orthogonalized direction (name → tensor).
    """
    denom = dot(d1, d1)
    if float(denom) == 0.0:
        raise ValueError("cannot orthogonalize against a zero direction")
    coef = float(dot(d1, d2) / denom)
    return {k: d2[k] - coef * d1[k] for k in d2}


def towards(a: Solution, b: Solution, model: nn.Module | None = None) -> Params:
    """The direction b − a between two solutions.

    Args:
        a: A model, state dict or parameter dict.
        b: Another solution of the same architecture.
        model: The architecture, where neither is a model.

    Returns:
        b − a over the parameters, name → tensor.
    """
    template = template_of([a, b], model)
    pa, _ = split_solution(a, template, "a")
    pb, _ = split_solution(b, template, "b")
    return sub(pb, pa)
