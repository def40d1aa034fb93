"""Models, state dicts and parameter dicts as parameter points, checked before any work starts.

Connectivity and landscape functions accept any of the three for each solution; these helpers
find the architecture (a template model), split a solution into parameters and float buffers
on the template's device, apply a mask, and raise clear errors for mismatched shapes, a mask
from another model, and NaN weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import torch
from torch import Tensor, nn

from lmc_toolkit.training.params import Params, check_compatible, check_mask, is_finite
from lmc_toolkit.training.results import TrainResult

#: a point in weight space: a model, a state dict or parameter dict, or a training result
Solution: TypeAlias = nn.Module | Mapping[str, Tensor] | TrainResult


def template_of(solutions: Sequence[Any], model: nn.Module | None) -> nn.Module:
    """The model that fixes the architecture: `model`, else the first solution that is a model
    or a training result that knows the model it started from (`TrainResult.template`)."""
    if model is not None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model= must be an nn.Module, got {type(model).__name__}")
        return model
    for s in solutions:
        if isinstance(s, nn.Module):
            return s
    for s in solutions:
        if isinstance(getattr(s, "template", None), nn.Module):
            return s.template
    raise TypeError(
        "no solution is an nn.Module, so the architecture is unknown: pass model= (any network "
        "of the same architecture)"
    )


def split_solution(solution: Solution, template: nn.Module, what: str) -> tuple[Params, Params]:
    """(parameters, float buffers) of `solution` on the template's device.

    A parameter dict takes its buffers from `template`. Raises a `ValueError` naming the first
    parameter whose name or shape differs from the template's, or when a weight is NaN/inf.
    """
    own = dict(template.named_parameters())
    own_buffers = {k: b for k, b in template.named_buffers() if b.is_floating_point()}
    device = next((p.device for p in own.values()), torch.device("cpu"))
    if not isinstance(solution, nn.Module | Mapping) and isinstance(
        getattr(solution, "state", None), Mapping
    ):
        solution = solution.state  # a training result: its final weights
    if isinstance(solution, nn.Module):
        given = {k: p.detach() for k, p in solution.named_parameters()}
        buffers = {k: b.detach() for k, b in solution.named_buffers() if b.is_floating_point()}
    elif isinstance(solution, Mapping):
        all_buffers = {k for k, _ in template.named_buffers()}
        given = {k: v for k, v in solution.items() if k not in all_buffers}
        buffers = {k: solution[k] for k in own_buffers if k in solution}
    else:
        raise TypeError(
            f"{what} must be a model, a state dict or a parameter dict, got {type(solution).__name__}"
        )
    for k, v in given.items():
        if not isinstance(v, Tensor):
            raise TypeError(f"{what}[{k!r}] must be a tensor, got {type(v).__name__}")
    check_compatible(own, given, ("the model", what))
    if not is_finite(given):
        bad = next(k for k, v in given.items() if not bool(torch.isfinite(v).all()))
        raise ValueError(f"{what} has NaN or inf weights (first in {bad!r})")
    params = {k: v.detach().to(device=device, dtype=own[k].dtype) for k, v in given.items()}
    out_buffers = {
        k: buffers.get(k, b).detach().to(device=device, dtype=b.dtype)
        for k, b in own_buffers.items()
    }
    return params, out_buffers


def apply_mask(params: Params, mask: Mapping[str, Tensor] | None) -> Params:
    """`params` with the pruned coordinates (mask False) set to zero; `mask` is validated."""
    checked = check_mask(params, mask)
    if not checked:
        return dict(params)
    return {k: v * checked[k] if k in checked else v for k, v in params.items()}


def sparsity(params: Params, mask: Mapping[str, Tensor] | None) -> float:
    """The fraction of the masked tensors' entries that are pruned (0 without a mask)."""
    checked = check_mask(params, mask)
    if not checked:
        return 0.0
    total = sum(m.numel() for m in checked.values())
    kept = sum(int(m.sum()) for m in checked.values())
    return 1.0 - kept / max(total, 1)
