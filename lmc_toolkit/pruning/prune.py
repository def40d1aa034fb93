"""Choosing what to prune: by magnitude (globally or per layer, as `torch.nn.utils.prune` does)
and at random (the baseline), each pruning a fraction of the weights a mask still keeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from lmc_toolkit.pruning.mask import Mask, check_compatible
from lmc_toolkit.training.params import as_params

Scope = Literal["global", "layerwise"]
SCOPES: tuple[Scope, ...] = get_args(Scope)


def check_fraction(fraction: float) -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction < 1:
        raise ValueError(
            f"the fraction to prune must lie strictly between 0 and 1, got {fraction!r}"
        )
    return float(fraction)


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    return scope


def _prune_lowest(scores: Mapping[str, Tensor], mask: Mask, fraction: float, scope: str) -> Mask:
    """Prune `round(fraction · remaining)` of the kept entries with the lowest scores, over all
    tensors at once (global) or per tensor (layerwise). Ties go to the earlier entry (parameter
    order, then flat index), through a stable sort."""
    groups = [list(mask)] if scope == "global" else [[n] for n in mask]
    out = {n: m.clone() for n, m in mask.items()}
    for names in groups:
        kept = [mask[n].reshape(-1) for n in names]
        flat = torch.cat(
            [scores[n].detach().reshape(-1).to(k.device) for n, k in zip(names, kept, strict=True)]
        )
        alive = torch.cat(kept)
        positions = torch.nonzero(alive).flatten()
        k = round(fraction * len(positions))  # as torch.nn.utils.prune does
        if k == 0:
            continue
        order = torch.sort(flat[positions].double().cpu(), stable=True).indices[:k]
        alive[positions[order.to(positions.device)]] = False
        offset = 0
        for n in names:
            size = mask[n].numel()
            out[n] = alive[offset : offset + size].view_as(mask[n]).clone()
            offset += size
    return Mask(out)


def _start(model: nn.Module | Mapping[str, Tensor], mask: Mapping[str, Tensor] | None) -> Mask:
    params = as_params(model)
    if mask is None:
        return Mask.ones(model)
    mask = mask if isinstance(mask, Mask) else Mask(mask)
    check_compatible(mask, params)
    return mask


def magnitude(
    model_or_params: nn.Module | Mapping[str, Tensor],
    fraction: float,
    mask: Mapping[str, Tensor] | None = None,
    scope: str = "global",
) -> Mask:
    """Prune `fraction` of the weights that `mask` keeps, those of smallest absolute value.

    `scope="global"` ranks all the mask's tensors together and prunes `round(fraction · kept)`
    weights: exactly the mask that `torch.nn.utils.prune.global_unstructured(...,
    L1Unstructured, amount=fraction)` gives on the same weights (when the k-th smallest
    magnitude is not tied; on ties the earlier weight, in parameter order and then flat index,
    is pruned first, where torch makes no promise). `scope="layerwise"` prunes the fraction in
    each tensor separately. Pruned weights stay pruned whatever their current value.

    Args:
        model_or_params: The trained weights ranked (a model or name → tensor).
        fraction: The fraction of the kept weights to prune, in [0, 1].
        mask: What is kept so far (default: the prunable set, nothing pruned).
        scope: `"global"` or `"layerwise"`.

    Returns:
        The new `Mask`.
    """
    fraction, scope = check_fraction(fraction), check_scope(scope)
    params = as_params(model_or_params)
    mask = _start(model_or_params, mask)
    return _prune_lowest({n: params[n].abs() for n in mask}, mask, fraction, scope)


def random(
    model: nn.Module | Mapping[str, Tensor],
    fraction: float,
    mask: Mapping[str, Tensor] | None = None,
    seed: int = 0,
    scope: str = "global",
) -> Mask:
    """The random-pruning baseline: prune `round(fraction · kept)` of the kept weights chosen
    uniformly at random.

    Args:
        model: The network (or name → tensor) whose prunable tensors are masked.
        fraction: The fraction of the kept weights to prune, in [0, 1].
        mask: What is kept so far (default: the prunable set).
        seed: Seeds the `torch.Generator` (on the CPU: the same mask on every device).
        scope: Over all tensors (`"global"`) or per tensor (`"layerwise"`).

    Returns:
        The new `Mask`.
    """
    fraction, scope = check_fraction(fraction), check_scope(scope)
    mask = _start(model, mask)
    g = torch.Generator().manual_seed(int(seed))
    scores = {n: torch.rand(m.shape, generator=g) for n, m in mask.items()}
    return _prune_lowest(scores, mask, fraction, scope)


def shuffled(mask: Mapping[str, Tensor], seed: int = 0) -> Mask:
    """A random mask with the same number of kept weights in every tensor as `mask` (the
    "random pruning with the same layerwise profile" control)."""
    mask = mask if isinstance(mask, Mask) else Mask(mask)
    g = torch.Generator().manual_seed(int(seed))
    out = {}
    for n, m in mask.items():
        flat = m.reshape(-1).cpu()
        out[n] = flat[torch.randperm(flat.numel(), generator=g)].view_as(m).to(m.device)
    return Mask(out)
