"""Permutations of a network's hidden units, and applying them to weights, buffers and masks.

A `Permutation` holds one index tensor per group of a `PermutationSpec`: unit i of the permuted
network is unit `perm[i]` of the original (`new = old[perm]` along every axis of the group).
`permute` applies it to a model (a new one; the caller's is left alone), a state or parameter
dict, or a `Mask`, so that a pruned coordinate stays pruned.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, overload

import torch
from torch import Tensor, nn

from lmc_toolkit.alignment.spec import Axis, PermutationSpec, permutation_spec
from lmc_toolkit.pruning.mask import Mask


@dataclass(frozen=True, eq=False)
class Permutation:
    """One index tensor (`perm[i]`: the original unit that becomes unit i) per group."""

    spec: PermutationSpec
    perms: Mapping[str, Tensor]

    def __post_init__(self) -> None:
        for g in self.spec:
            p = self.perms.get(g.name)
            if p is None:
                raise ValueError(f"no permutation for group {g.name!r}")
            if p.dtype != torch.long or p.shape != (g.size,):
                raise ValueError(
                    f"group {g.name!r}: expected a long tensor of {g.size} indices, got "
                    f"{p.dtype} of shape {tuple(p.shape)}"
                )
            if not torch.equal(torch.sort(p).values, torch.arange(g.size)):
                raise ValueError(f"group {g.name!r}: the indices are not a permutation")
        extra = set(self.perms) - set(self.spec.names)
        if extra:
            raise ValueError(f"permutations for unknown groups: {sorted(extra)}")

    def __getitem__(self, group: str) -> Tensor:
        return self.perms[group]

    def __iter__(self) -> Iterator[str]:
        return iter(self.spec.names)

    def inverse(self) -> Permutation:
        """The permutation that undoes this one."""
        return Permutation(self.spec, {g: torch.argsort(p) for g, p in self.perms.items()})

    def then(self, other: Permutation) -> Permutation:
        """This permutation followed by `other`: `permute(permute(x, self), other)`."""
        return Permutation(self.spec, {g: p[other.perms[g]] for g, p in self.perms.items()})

    def is_identity(self) -> bool:
        return all(torch.equal(p, torch.arange(len(p))) for p in self.perms.values())

    def moved(self) -> dict[str, float]:
        """Per group, the fraction of units that move."""
        return {
            g: float((p != torch.arange(len(p))).double().mean()) for g, p in self.perms.items()
        }

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Permutation)
            and self.spec == other.spec
            and all(torch.equal(self.perms[g], other.perms[g]) for g in self.spec.names)
        )

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        return {g: p.tolist() for g, p in self.perms.items()}

    @staticmethod
    def from_dict(d: Mapping[str, Any], spec: PermutationSpec) -> Permutation:
        """The permutation `to_dict` wrote, on the groups of `spec` (checked again)."""
        return Permutation(spec, {g: torch.tensor(p, dtype=torch.long) for g, p in d.items()})


def identity_permutation(spec: PermutationSpec) -> Permutation:
    return Permutation(spec, {g.name: torch.arange(g.size) for g in spec})


def random_permutation(
    model: nn.Module | PermutationSpec, seed: int = 0, spec: PermutationSpec | None = None
) -> Permutation:
    """A uniformly random permutation of every group of `model` (for tests, and for planting a
    known permutation).

    Args:
        model: A network (its groups are traced) or a `PermutationSpec`.
        seed: Seeds the `torch.Generator` every group's permutation is drawn from.
        spec: The groups, where `model` is a network not made by `lmc_toolkit.build`.

    Returns:
        A `Permutation` over every group.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    spec = _spec_of(model, spec)
    g = torch.Generator().manual_seed(seed)
    return Permutation(spec, {grp.name: torch.randperm(grp.size, generator=g) for grp in spec})


@overload
def permute(target: Mask, perm: Permutation) -> Mask: ...
@overload
def permute(target: Mapping[str, Tensor], perm: Permutation) -> Mapping[str, Tensor]: ...
@overload
def permute(target: nn.Module, perm: Permutation) -> nn.Module: ...
def permute(target: Any, perm: Permutation) -> Any:
    """`target` with every group's units reordered by `perm` (nothing is changed in place).

    Args:
        target: A model (its weights, biases, norm parameters and BatchNorm running statistics
            are permuted), a state or parameter dict (entries outside the spec kept as they
            are), or a `Mask`.
        perm: The permutation, e.g. `weight_matching(a, b).permutation`.

    Returns:
        A new object of `target`'s kind: a model, a dict or a `Mask`.
    """
    if not isinstance(perm, Permutation):
        raise TypeError(f"perm must be a Permutation, got {type(perm).__name__}")
    if isinstance(target, nn.Module):
        out = copy.deepcopy(target)
        state = permute_state(out.state_dict(), perm)
        out.load_state_dict(state)
        return out
    if isinstance(target, Mask):
        return Mask(permute_state(target, perm))
    if isinstance(target, Mapping):
        return permute_state(target, perm)
    raise TypeError(f"permute needs a model, a Mask or a dict of tensors, got {type(target)}")


def permute_state(state: Mapping[str, Tensor], perm: Permutation) -> dict[str, Tensor]:
    """A new dict: the entries of `state` with each spec axis reordered (others untouched)."""
    out = dict(state)
    for group in perm.spec:
        p = perm[group.name]
        for axis in group.axes:
            if axis.name in out:
                out[axis.name] = take(out[axis.name], axis, p)
    return out


def take(t: Tensor, axis: Axis, perm: Tensor) -> Tensor:
    """`t` reordered along `axis.dim` by `perm` (each unit a block of `axis.block` entries)."""
    index = perm.to(t.device)
    if axis.block > 1:
        offsets = torch.arange(axis.block, device=t.device)
        index = (index[:, None] * axis.block + offsets).reshape(-1)
    return t.index_select(axis.dim, index)


def _spec_of(model: Any, spec: PermutationSpec | None) -> PermutationSpec:
    if spec is not None:
        return spec
    if isinstance(model, PermutationSpec):
        return model
    if isinstance(model, nn.Module):
        return permutation_spec(model)
    raise TypeError(f"expected a model or a PermutationSpec, got {type(model).__name__}")
