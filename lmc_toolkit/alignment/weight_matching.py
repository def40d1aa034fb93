"""Weight matching (Ainsworth et al., "Git Re-Basin", ICLR 2023): the permutation of `b`'s
hidden units that brings its weights closest to `a`'s.

Maximizing Σ_layers ⟨W_a, P_out W_b P_inᵀ⟩ over all groups at once is NP-hard; coordinate
descent solves it one group at a time: with every other group's permutation held, the best
permutation of one group is a linear assignment problem (scipy's `linear_sum_assignment`) on
the similarity of its units summed over every axis it acts on. Groups are visited in a seeded
random order; sweeps repeat until one changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from lmc_toolkit.alignment.permute import Permutation, take
from lmc_toolkit.alignment.result import Alignment
from lmc_toolkit.alignment.spec import Axis, Group, PermutationSpec, permutation_spec
from lmc_toolkit.training.params import check_compatible

_STATISTICS = ("running_mean", "running_var")


def weight_matching(
    a: nn.Module | Mapping[str, Tensor],
    b: nn.Module | Mapping[str, Tensor],
    *,
    spec: PermutationSpec | None = None,
    seed: int = 0,
    max_sweeps: int = 100,
) -> Alignment:
    """The permutation of `b`'s hidden units that maximizes the summed inner product of its
    weights (and biases, norm parameters) with `a`'s; see the module docstring. Neither is
    changed.

    Args:
        a: The reference: a model, or a state dict with `spec` given.
        b: The model (or state dict) whose units are permuted onto `a`'s.
        spec: The permutation groups (default: traced from `a`; needed for state dicts, from
            `permutation_spec(model)`).
        seed: Seeds the random order the groups are visited in.
        max_sweeps: At most this many sweeps over the groups (they stop when one changes nothing).

    Returns:
        An `Alignment`: the `Permutation`, the objective after each sweep, and whether the sweeps
        converged.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    if isinstance(max_sweeps, bool) or not isinstance(max_sweeps, int) or max_sweeps < 1:
        raise ValueError(f"max_sweeps must be an int ≥ 1, got {max_sweeps!r}")
    if spec is None:
        model = a if isinstance(a, nn.Module) else b
        if not isinstance(model, nn.Module):
            raise ValueError("pass spec=permutation_spec(model) when a and b are state dicts")
        spec = permutation_spec(model)
    wa, wb = _state(a), _state(b)
    check_compatible(wa, wb)
    start = time.perf_counter()
    perms = {g.name: torch.arange(g.size) for g in spec}
    rng = np.random.default_rng(seed)
    history: list[float] = []
    converged = False
    sweeps = 0
    for sweeps in range(1, max_sweeps + 1):  # noqa: B007 (read after the loop)
        changed = False
        for i in rng.permutation(len(spec.groups)):
            group = spec.groups[int(i)]
            sim = _similarity(group, wa, wb, perms, spec)
            rows, cols = linear_sum_assignment(sim.numpy(), maximize=True)
            new = torch.as_tensor(cols[np.argsort(rows)], dtype=torch.long)
            units = torch.arange(group.size)
            old_score = float(sim[units, perms[group.name]].sum())
            new_score = float(sim[units, new].sum())
            if new_score > old_score + 1e-12 * max(1.0, abs(old_score)):
                perms[group.name] = new
                changed = True
        history.append(_objective(spec, wa, wb, perms))
        if not changed:
            converged = True
            break
    return Alignment(
        method="weights",
        permutation=Permutation(spec, perms),
        objective=tuple(history),
        sweeps=sweeps,
        converged=converged,
        seed=seed,
        seconds=time.perf_counter() - start,
        meta={"model": spec.model, "groups": len(spec)},
    )


def _state(x: nn.Module | Mapping[str, Tensor]) -> dict[str, Tensor]:
    if isinstance(x, nn.Module):
        return {
            k: v.detach().double().cpu() for k, v in x.state_dict().items() if v.is_floating_point()
        }
    if isinstance(x, Mapping):
        return {k: v.detach().double().cpu() for k, v in x.items() if v.is_floating_point()}
    raise TypeError(f"expected a model or a state dict, got {type(x).__name__}")


def _similarity(
    group: Group,
    wa: Mapping[str, Tensor],
    wb: Mapping[str, Tensor],
    perms: Mapping[str, Tensor],
    spec: PermutationSpec,
) -> Tensor:
    """sim[i, j]: how alike unit i of `a` and unit j of `b` are, summed over the group's axes,
    with every other axis of each tensor already permuted by the current permutations."""
    sim = torch.zeros(group.size, group.size, dtype=torch.float64)
    for axis in group.axes:
        if axis.name not in wa or axis.name.endswith(_STATISTICS):
            continue  # running statistics follow the weights; they are not matched
        tb = _others_permuted(wb[axis.name], axis, perms, spec)
        ua = _units(wa[axis.name], axis, group.size)
        ub = _units(tb, axis, group.size)
        sim += ua @ ub.T
    return sim


def _units(t: Tensor, axis: Axis, size: int) -> Tensor:
    """`t` as one row per unit of `axis` (each unit's block of entries and all other axes)."""
    moved = t.movedim(axis.dim, 0)
    return moved.reshape(size, -1)


def _others_permuted(
    t: Tensor, axis: Axis, perms: Mapping[str, Tensor], spec: PermutationSpec
) -> Tensor:
    """`t` (an entry of b) with the current permutation applied on every axis but `axis`."""
    for group in spec.groups:
        for other in group.axes:
            if other.name == axis.name and other.dim != axis.dim:
                t = take(t, other, perms[group.name])
    return t


def _objective(
    spec: PermutationSpec,
    wa: Mapping[str, Tensor],
    wb: Mapping[str, Tensor],
    perms: Mapping[str, Tensor],
) -> float:
    """Σ over matched entries of ⟨W_a, π(W_b)⟩ (each entry once)."""
    names = {a.name for g in spec.groups for a in g.axes}
    names = {n for n in names if n in wa and not n.endswith(_STATISTICS)}
    pb = dict(wb)
    for group in spec.groups:
        for axis in group.axes:
            if axis.name in names:
                pb[axis.name] = take(pb[axis.name], axis, perms[group.name])
    return float(sum((wa[n] * pb[n]).sum() for n in sorted(names)))
