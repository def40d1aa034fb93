"""Masks as data: which weights a sparse network keeps.

A `Mask` maps parameter names (the model's own, e.g. `"0.weight"`) to bool tensors, True = kept.
It is an immutable `Mapping`, so everything that takes "name → bool tensor" (`train(mask=...)`,
`params.check_mask`, interpolation, landscapes, Hessians) takes a `Mask` as it is. The prunable
set is the weight of every Conv and Linear layer, first conv and classifier included (as in the
study); biases and norm parameters are never in a mask.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lmc_toolkit.store.files import atomic_torch_save, safe_torch_load
from lmc_toolkit.training.params import as_params

_FORMAT = "lmc_toolkit.mask/1"


_PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class LayerSparsity:
    """One row of `Mask.per_layer()`: a prunable tensor's size, kept count and sparsity."""

    name: str
    shape: tuple[int, ...]
    total: int
    kept: int

    @property
    def pruned(self) -> int:
        return self.total - self.kept

    @property
    def sparsity(self) -> float:
        return self.pruned / self.total if self.total else 0.0

    @property
    def density(self) -> float:
        return 1.0 - self.sparsity


class Mask(Mapping[str, Tensor]):
    """An immutable map from parameter name to a bool tensor (True = kept).

    Build one with `Mask.ones(model)` (nothing pruned yet), `magnitude(...)` or `random(...)`.
    The tensors are copied in and handed out as they are: treat them as read-only. Masks are
    equal when they name the same tensors with the same entries; `digest()` is a content hash
    (the store uses it to name trained tickets).

    Args:
        masks: Name → bool (or 0/1 integer) tensor.
    """

    __slots__ = ("_masks",)
    _masks: dict[str, Tensor]

    def __init__(self, masks: Mapping[str, Tensor]):
        if not isinstance(masks, Mapping):
            raise TypeError(f"a Mask is built from a name → bool tensor mapping, got {masks!r}")
        out: dict[str, Tensor] = {}
        for name, m in masks.items():
            if not isinstance(name, str):
                raise TypeError(f"mask keys are parameter names (str), got {name!r}")
            t = torch.as_tensor(m)
            if t.dtype != torch.bool:
                if t.is_floating_point() or t.is_complex():
                    raise TypeError(
                        f"the mask for {name!r} must be bool (True = kept), got {t.dtype}"
                    )
                if t.numel() and not bool(((t == 0) | (t == 1)).all()):
                    raise ValueError(f"the mask for {name!r} holds values other than 0 and 1")
            out[name] = t.detach().to(torch.bool).clone()
        if not out:
            raise ValueError("a Mask needs at least one prunable tensor")
        object.__setattr__(self, "_masks", out)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Mask is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (Mask, (self._masks,))

    # -- Mapping ----------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Tensor:
        return self._masks[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._masks)

    def __len__(self) -> int:
        return len(self._masks)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        if list(self) != list(other):
            return False
        return all(
            isinstance(other[k], Tensor)
            and other[k].shape == v.shape
            and torch.equal(v, other[k].to(device=v.device, dtype=torch.bool))
            for k, v in self.items()
        )

    def __hash__(self) -> int:
        return hash(self.digest())

    def __repr__(self) -> str:
        return (
            f"Mask({len(self)} tensors, {self.total} weights, sparsity {self.sparsity:.4f}, "
            f"digest {self.digest()})"
        )

    # -- construction -----------------------------------------------------------------------
    @staticmethod
    def ones(
        model: nn.Module | Mapping[str, Tensor],
        include: Iterable[str] | None = None,
        *,
        first: bool = True,
        last: bool = True,
    ) -> Mask:
        """A mask that keeps everything, over the prunable set of `model`.

        The default prunable set is `prunable_names(model)`: the weight of every Conv and Linear
        layer (for a parameter dict, every tensor of two or more dimensions). `first=False` or
        `last=False` leaves out the first or last of them (the first conv, the classifier).
        `include` names the tensors explicitly instead.
        """
        params = as_params(model)
        names = prunable_names(model) if include is None else list(include)
        if include is not None:
            if isinstance(include, str):
                raise TypeError(f"include takes a list of parameter names, got the str {include!r}")
            unknown = [n for n in names if n not in params]
            if unknown:
                raise ValueError(
                    f"include names {unknown[0]!r}, which the model lacks "
                    f"(it has {', '.join(list(params)[:6])}, ...)"
                )
            names = [n for n in params if n in set(names)]  # parameter order
        if not first:
            names = names[1:]
        if not last:
            names = names[:-1]
        if not names:
            raise ValueError("the prunable set is empty (first=False and last=False left nothing)")
        return Mask({n: torch.ones_like(params[n], dtype=torch.bool) for n in names})

    # -- accounting -------------------------------------------------------------------------
    @property
    def total(self) -> int:
        """Number of prunable weights."""
        return sum(m.numel() for m in self._masks.values())

    @property
    def kept(self) -> int:
        return sum((int(m.sum()) for m in self._masks.values()), 0)

    @property
    def pruned(self) -> int:
        return self.total - self.kept

    @property
    def sparsity(self) -> float:
        """The fraction of the prunable set that is pruned."""
        total = self.total
        return self.pruned / total if total else 0.0

    @property
    def density(self) -> float:
        return 1.0 - self.sparsity

    def per_layer(self) -> tuple[LayerSparsity, ...]:
        """One row per tensor: name, shape, total, kept (and `.sparsity`, `.density`)."""
        return tuple(
            LayerSparsity(n, tuple(m.shape), m.numel(), int(m.sum())) for n, m in self.items()
        )

    def format(self) -> str:
        """The per-layer table as text."""
        rows = [f"{'parameter':<28} {'shape':<18} {'kept':>10} {'total':>10} {'sparsity':>9}"]
        for r in (*self.per_layer(), LayerSparsity("all", (), self.total, self.kept)):
            shape = "×".join(map(str, r.shape))
            rows.append(f"{r.name:<28} {shape:<18} {r.kept:>10} {r.total:>10} {r.sparsity:>9.4f}")
        return "\n".join(rows)

    # -- algebra ----------------------------------------------------------------------------
    def apply(self, params: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """A new dict: the entries of `params` with pruned weights set to zero (others as
        they are). `params` is a parameter or state dict; use `params_of(model)` for a model."""
        if not isinstance(params, Mapping):
            raise TypeError(
                f"apply takes a dict of tensors (e.g. params_of(model)), got {type(params).__name__}"
            )
        check_compatible(self, params)
        out = dict(params)
        for n, m in self.items():
            out[n] = params[n] * m.to(params[n].device)
        return out

    def __and__(self, other: Mapping[str, Tensor]) -> Mask:
        """Intersection: kept where both keep."""
        other = same_layout(self, other)
        return Mask({n: m & other[n].to(m.device) for n, m in self.items()})

    def __or__(self, other: Mapping[str, Tensor]) -> Mask:
        """Union: kept where either keeps."""
        other = same_layout(self, other)
        return Mask({n: m | other[n].to(m.device) for n, m in self.items()})

    def to(self, device: torch.device | str) -> Mask:
        return Mask({n: m.to(device) for n, m in self.items()})

    # -- identity and files -----------------------------------------------------------------
    def digest(self) -> str:
        """A 16-hex content hash of the names, shapes and entries (device independent)."""
        h = hashlib.sha256()
        for n, m in self.items():
            h.update(f"{n}:{tuple(m.shape)};".encode())
            h.update(np.packbits(m.detach().cpu().numpy().reshape(-1)).tobytes())
        return h.hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """Tensors and primitives, for the store (`Run.save`) or `torch.save`."""
        return {
            "format": _FORMAT,
            "names": list(self),
            "masks": {n: m.detach().cpu() for n, m in self.items()},
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> Mask:
        if not isinstance(d, Mapping) or d.get("format") != _FORMAT:
            raise ValueError(f"not a stored mask (format {_FORMAT!r})")
        return Mask({n: d["masks"][n] for n in d["names"]})

    def save(self, path: str | Path) -> Path:
        """Write the mask to `path` atomically; read it with `Mask.load`."""
        return atomic_torch_save(self.to_dict(), path)

    @staticmethod
    def load(path: str | Path) -> Mask:
        return Mask.from_dict(safe_torch_load(path))


def prunable_names(model: nn.Module | Mapping[str, Tensor]) -> list[str]:
    """The default prunable set, in parameter order: the `weight` of every Conv and Linear
    module of a model; for a parameter dict, every tensor with two or more dimensions."""
    if isinstance(model, nn.Module):
        names = {
            f"{prefix}.weight" if prefix else "weight"
            for prefix, module in model.named_modules()
            if isinstance(module, _PRUNABLE) and getattr(module, "weight", None) is not None
        }
        return [n for n, _ in model.named_parameters() if n in names]
    if isinstance(model, Mapping):
        return [n for n, t in model.items() if isinstance(t, Tensor) and t.dim() >= 2]
    raise TypeError(f"expected a model or a dict of tensors, got {type(model).__name__}")


def check_compatible(mask: Mapping[str, Tensor], params: Mapping[str, Tensor]) -> None:
    """Raise a `ValueError` naming the first mask tensor that the parameters lack or that has
    another shape (both shapes given): the mask is from a different model."""
    for n, m in mask.items():
        if n not in params:
            raise ValueError(
                f"the mask names {n!r}, which the model lacks (it has "
                f"{', '.join(list(params)[:6])}, ...): is the mask from a different model?"
            )
        if tuple(m.shape) != tuple(params[n].shape):
            raise ValueError(
                f"the mask for {n!r} has shape {tuple(m.shape)} but the model's parameter has "
                f"{tuple(params[n].shape)}: is the mask from a different model?"
            )


def same_layout(a: Mask, b: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
    if not isinstance(b, Mapping):
        raise TypeError(f"expected a mask, got {type(b).__name__}")
    if list(a) != list(b):
        extra = [n for n in a if n not in b] or [n for n in b if n not in a]
        raise ValueError(
            f"the masks cover different tensors ({extra[0]!r} is in one only)"
            if extra
            else "the masks list their tensors in different orders"
        )
    check_compatible(a, b)
    return b
