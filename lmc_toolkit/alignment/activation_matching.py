"""Activation matching (Ainsworth et al. 2023; Entezari et al. 2022): pair each hidden unit of
`b` with the unit of `a` whose activations on the same images correlate best.

Both networks run on the same batches (eval mode); at each group's tap (the traced node that
holds its units as channels, see `PermutationSpec`) the Pearson correlation of every pair of
units is accumulated over images and positions, and one linear assignment per group
(scipy's `linear_sum_assignment`) maximizes the summed correlation. Groups are independent
here, so one pass decides them all.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, fx, nn

from lmc_toolkit.alignment.permute import Permutation
from lmc_toolkit.alignment.result import Alignment
from lmc_toolkit.alignment.spec import PermutationSpec, permutation_spec
from lmc_toolkit.data.dataset import Dataset, check_batch_size
from lmc_toolkit.data.entrance import as_dataset
from lmc_toolkit.data.inputs import chunks, move, take
from lmc_toolkit.training.params import check_compatible


def activation_matching(
    a: nn.Module,
    b: nn.Module,
    data: Dataset,
    *,
    spec: PermutationSpec | None = None,
    batch_size: int = 250,
    max_images: int | None = 1000,
) -> Alignment:
    """The permutation of `b`'s hidden units whose activations on `data` correlate best with
    `a`'s, group by group (a linear assignment per group). Neither model is changed.

    Args:
        a: The reference network.
        b: The network whose units are permuted onto `a`'s (same architecture).
        data: Images whose activations are compared (any data `as_dataset` takes).
        spec: The permutation groups (default: traced from `a` with an example of `data`).
        batch_size: Images per forward pass.
        max_images: How many of the first images of `data` are used (None: all).

    Returns:
        An `Alignment`: the `Permutation` of `b` and each group's mean correlation.
    """
    for name, m in (("a", a), ("b", b)):
        if not isinstance(m, nn.Module):
            raise TypeError(f"{name} must be an nn.Module, got {type(m).__name__}")
    data = as_dataset(data, "data")
    check_batch_size(batch_size)
    if max_images is not None and (
        isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 2
    ):
        raise ValueError(f"max_images must be an int ≥ 2 or None, got {max_images!r}")
    check_compatible(dict(a.state_dict()), dict(b.state_dict()))
    spec = spec or permutation_spec(a, example=data.x)
    start = time.perf_counter()
    stats = {g.name: _Correlation(g.size) for g in spec}
    taps = {g.tap: g.name for g in spec}
    net_a, net_b = _tapped(a, taps), _tapped(b, taps)
    x = take(data.x, slice(None, max_images))
    with torch.no_grad():
        for chunk in chunks(x, batch_size):
            out_a, out_b = net_a(move(chunk, _device(a))), net_b(move(chunk, _device(b)))
            for tap, group in taps.items():
                stats[group].add(out_a[tap], out_b[tap])
    perms, scores = {}, []
    for g in spec:
        corr = stats[g.name].correlation()
        rows, cols = linear_sum_assignment(corr.numpy(), maximize=True)
        perms[g.name] = torch.as_tensor(cols[np.argsort(rows)], dtype=torch.long)
        scores.append(float(corr[torch.arange(g.size), perms[g.name]].mean()))
    return Alignment(
        method="activations",
        permutation=Permutation(spec, perms),
        objective=tuple(scores),
        sweeps=1,
        converged=True,
        seed=None,
        seconds=time.perf_counter() - start,
        meta={"model": spec.model, "groups": len(spec), "images": len(x), "data": data.name},
    )


class _Correlation:
    """Running sums for the Pearson correlation of a's units with b's, in float64."""

    def __init__(self, size: int):
        self.n = 0
        self.sa = torch.zeros(size, dtype=torch.float64)
        self.sb = torch.zeros(size, dtype=torch.float64)
        self.saa = torch.zeros(size, dtype=torch.float64)
        self.sbb = torch.zeros(size, dtype=torch.float64)
        self.sab = torch.zeros(size, size, dtype=torch.float64)

    def add(self, ya: Tensor, yb: Tensor) -> None:
        ua, ub = _rows(ya), _rows(yb)  # (observations, units)
        self.n += len(ua)
        self.sa += ua.sum(0)
        self.sb += ub.sum(0)
        self.saa += (ua * ua).sum(0)
        self.sbb += (ub * ub).sum(0)
        self.sab += ua.T @ ub

    def correlation(self) -> Tensor:
        n = self.n
        mean_a, mean_b = self.sa / n, self.sb / n
        cov = self.sab / n - mean_a[:, None] * mean_b[None, :]
        std_a = (self.saa / n - mean_a**2).clamp_min(0).sqrt()
        std_b = (self.sbb / n - mean_b**2).clamp_min(0).sqrt()
        return cov / (std_a[:, None] * std_b[None, :] + 1e-12)


def _rows(y: Tensor) -> Tensor:
    """Activations (batch, channels, ...) as (batch·positions, channels), float64 on the CPU."""
    y = y.detach().double().cpu()
    return y.movedim(1, -1).reshape(-1, y.shape[1])


def _tapped(model: nn.Module, taps: Mapping[str, str]) -> Any:
    """A traced copy of `model` (eval mode) returning the outputs of the `taps` nodes."""
    traced = fx.symbolic_trace(copy.deepcopy(model).eval())
    nodes = {n.name: n for n in traced.graph.nodes}
    missing = [t for t in taps if t not in nodes]
    if missing:
        raise ValueError(f"the traced model has no node {missing[0]!r}: a spec of another model?")
    output = next(n for n in traced.graph.nodes if n.op == "output")
    output.args = ({t: nodes[t] for t in taps},)
    traced.graph.eliminate_dead_code()
    traced.recompile()
    return traced


def _device(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))
