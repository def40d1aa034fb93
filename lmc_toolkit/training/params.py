"""Models as named tensors: take parameters out, put them into copies, and do arithmetic on them.

Analysis never writes into the caller's model: it reads parameter dicts, computes new ones and
evaluates them on a copy or functionally (`torch.func.functional_call`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

Params = dict[str, Tensor]


def params_of(model: nn.Module) -> Params:
    """Detached copies of the model's named parameters."""
    return {k: p.detach().clone() for k, p in model.named_parameters()}


def state_of(model: nn.Module) -> Params:
    """Detached copies of the model's full state (parameters and buffers)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def as_params(obj: nn.Module | Mapping[str, Tensor], names: Iterable[str] | None = None) -> Params:
    """Parameters of a model, or the entries of a state/parameter dict (restricted to `names`).

    Tensors of a dict are returned as they are (not copied).
    """
    if isinstance(obj, nn.Module):
        out = {k: p.detach() for k, p in obj.named_parameters()}
    elif isinstance(obj, Mapping):
        out = dict(obj)
    else:
        raise TypeError(f"expected a model or a dict of tensors, got {type(obj).__name__}")
    if names is not None:
        names = list(names)
        missing = [n for n in names if n not in out]
        if missing:
            raise ValueError(f"missing parameters {missing[:3]} (of {len(missing)})")
        out = {n: out[n] for n in names}
    return out


def check_compatible(
    a: Mapping[str, Tensor], b: Mapping[str, Tensor], names: tuple[str, str] = ("a", "b")
) -> None:
    """Raise a `ValueError` naming the first parameter that differs in name or shape."""
    for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=False):
        if ka != kb:
            raise ValueError(f"{names[0]} has parameter {ka!r} where {names[1]} has {kb!r}")
        if va.shape != vb.shape:
            raise ValueError(
                f"parameter {ka!r} has shape {tuple(va.shape)} in {names[0]} "
                f"but {tuple(vb.shape)} in {names[1]}"
            )
    if len(a) != len(b):
        longer, extra = (
            (names[0], list(a)[len(b)]) if len(a) > len(b) else (names[1], list(b)[len(a)])
        )
        raise ValueError(f"{longer} has an extra parameter {extra!r}")


def with_state(model: nn.Module, state: Mapping[str, Tensor], strict: bool = True) -> nn.Module:
    """A deep copy of `model` holding `state` (a state dict or a parameter dict)."""
    net = copy.deepcopy(model)
    load_into(net, state, strict=strict)
    return net


def load_into(model: nn.Module, state: Mapping[str, Tensor], strict: bool = True) -> None:
    """Copy `state` into `model` in place (only for models the toolkit owns)."""
    own = model.state_dict()
    if strict:
        params = dict(model.named_parameters())
        keys = own if set(state) == set(own) else params
        check_compatible({k: own[k] for k in keys}, dict(state), ("the model", "the state"))
    with torch.no_grad():
        for k, v in state.items():
            if k not in own:
                raise ValueError(f"the model has no parameter or buffer {k!r}")
            own[k].copy_(v)


def lerp(a: Mapping[str, Tensor], b: Mapping[str, Tensor], alpha: float) -> Params:
    """(1 - alpha)·a + alpha·b, entry by entry (integer buffers are taken from the nearer end)."""
    out = {}
    for k, va in a.items():
        vb = b[k]
        if va.is_floating_point():
            out[k] = va + alpha * (vb - va)
        else:
            out[k] = (va if alpha < 0.5 else vb).clone()
    return out


def add(a: Mapping[str, Tensor], b: Mapping[str, Tensor], scale: float = 1.0) -> Params:
    """a + scale·b."""
    return {k: a[k] + scale * b[k] for k in a}


def sub(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> Params:
    return {k: a[k] - b[k] for k in a}


def dot(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> Tensor:
    return sum((a[k].double() * b[k].double()).sum() for k in a)  # type: ignore[return-value]


def norm(a: Mapping[str, Tensor]) -> Tensor:
    return dot(a, a).sqrt()


def to_device(state: Mapping[str, Tensor], device: torch.device | str) -> Params:
    return {k: v.to(device) for k, v in state.items()}


def is_finite(state: Mapping[str, Any]) -> bool:
    """Whether every floating tensor in `state` is free of NaN and inf."""
    return all(
        bool(torch.isfinite(v).all())
        for v in state.values()
        if isinstance(v, Tensor) and v.is_floating_point()
    )


def check_mask(
    params: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None
) -> dict[str, Tensor] | None:
    """Validate a mask (parameter name → bool tensor, True = kept) against `params`.

    Raises a `ValueError` naming the first unknown parameter, mismatched shape, or value other
    than 0/1 in a non-bool mask, and returns the mask as bool tensors on the parameters' devices.
    """
    if mask is None:
        return None
    if not isinstance(mask, Mapping):
        raise TypeError(f"a mask maps parameter names to bool tensors, got {type(mask).__name__}")
    out = {}
    for name, m in mask.items():
        if name not in params:
            known = ", ".join(list(params)[:6])
            raise ValueError(
                f"the mask names {name!r}, which the model lacks (it has {known}, ...)"
            )
        m = torch.as_tensor(m)
        if m.shape != params[name].shape:
            raise ValueError(
                f"the mask for {name!r} has shape {tuple(m.shape)} but the parameter has "
                f"{tuple(params[name].shape)}"
            )
        if m.dtype != torch.bool:
            off = m[(m != 0) & (m != 1)]
            if off.numel():
                raise ValueError(
                    f"the mask for {name!r} is {m.dtype} with the value {off.flatten()[0].item()!r}"
                    "; a mask holds bools (or only 0 and 1)"
                )
        out[name] = m.to(device=params[name].device, dtype=torch.bool)
    return out
