"""REPAIR (Jordan et al., ICLR 2023): renormalize an interpolated network's hidden units.

Averaging the weights of two aligned networks shrinks the variance of its hidden units
("variance collapse"), which alone can make a barrier. REPAIR measures, for every hidden
unit, the mean and standard deviation of its pre-activation in the two end networks and
rescales the unit of the network at α so that its own statistics become the interpolation
of theirs: μ_α = (1−α)μ_a + αμ_b, σ_α = (1−α)σ_a + ασ_b. The correction is folded into the
layer that makes the unit (its weight row is scaled, its bias shifted), layer by layer in
forward order, each measured after the earlier ones are corrected.

Units followed by a norm layer are left alone: a BatchNorm's statistics are re-estimated by
the `"recalibrate"` policy (REPAIR's "BN reset"), and a per-sample GroupNorm/instance norm
already fixes them. A unit's layer needs a bias to take the shift.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lmc_toolkit.alignment.spec import PermutationSpec, permutation_spec
from lmc_toolkit.data.dataset import Dataset
from lmc_toolkit.data.entrance import as_dataset
from lmc_toolkit.data.inputs import Inputs, chunks, move, take

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm)


def repairable_layers(model: nn.Module, spec: PermutationSpec | None = None) -> list[str]:
    """The layers REPAIR corrects, in forward order: each hidden group's creating conv or
    linear layer (with a bias) whose units reach no norm layer."""
    spec = spec or permutation_spec(model)
    modules = dict(model.named_modules())
    out = []
    for group in spec:
        owners = {a.name.rsplit(".", 1)[0] for a in group.axes}
        normed = any(isinstance(modules.get(o), _NORMS) for o in owners)
        layer = modules.get(group.name)
        if not normed and isinstance(layer, nn.Conv2d | nn.Linear) and layer.bias is not None:
            out.append(group.name)
    order = [name for name, _ in model.named_modules()]
    return sorted(out, key=order.index)


def repair(
    model: nn.Module,
    a: nn.Module,
    b: nn.Module,
    alpha: float,
    data: Dataset,
    *,
    layers: Sequence[str] | None = None,
    images: int = 1000,
    batch_size: int = 500,
) -> nn.Module:
    """REPAIR (Jordan et al. 2023): a copy of `model`, the network at `alpha` between `a` and `b`,
    whose hidden units get the interpolated statistics of the ends' units.

    Args:
        model: The interpolated network, (1 − alpha)·a + alpha·b (not changed).
        a: The first end.
        b: The second end, already aligned onto `a`.
        alpha: Where `model` lies on the path, in [0, 1].
        data: The examples the statistics are measured on.
        layers: The layers renormalized (default: every repairable one, traced).
        images: How many of the first examples of `data` are used.
        batch_size: Examples per forward pass.

    Returns:
        The repaired copy of `model`.
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha!r}")
    data = as_dataset(data, "data")
    if layers is None:  # the data's input shape traces a model the registry does not know
        layers = repairable_layers(model, permutation_spec(model, example=data.x))
    layers = list(layers)
    x = take(data.x, slice(None, images))
    out = copy.deepcopy(model).eval()
    stats_a, stats_b = unit_stats(a, x, layers, batch_size), unit_stats(b, x, layers, batch_size)
    for name in layers:
        mean, std = unit_stats(out, x, [name], batch_size)[name]
        goal_mean = (1 - alpha) * stats_a[name][0] + alpha * stats_b[name][0]
        goal_std = (1 - alpha) * stats_a[name][1] + alpha * stats_b[name][1]
        layer = out.get_submodule(name)
        device = layer.weight.device
        scale = (goal_std / std.clamp_min(1e-12)).to(device)
        shift = goal_mean.to(device) - mean.to(device) * scale
        with torch.no_grad():
            shape = (-1,) + (1,) * (layer.weight.dim() - 1)
            layer.weight.mul_(scale.view(shape).to(layer.weight.dtype))
            layer.bias.copy_((layer.bias.double() * scale + shift).to(layer.bias.dtype))
    return out


def unit_stats(
    model: nn.Module, x: Inputs, layers: Sequence[str], batch_size: int = 500
) -> dict[str, tuple[Tensor, Tensor]]:
    """Per layer, the mean and standard deviation (float64, over images and positions) of
    each output unit of `model` (eval mode) on the images `x`."""
    counts: dict[str, int] = {}
    sums: dict[str, Tensor] = {}
    squares: dict[str, Tensor] = {}

    def hook(name: str):
        def record(_module: nn.Module, _inputs: tuple, output: Tensor) -> None:
            y = output.detach().double()
            y = y.movedim(1, -1).reshape(-1, y.shape[1])
            counts[name] = counts.get(name, 0) + len(y)
            sums[name] = sums[name] + y.sum(0) if name in sums else y.sum(0)
            squares[name] = squares[name] + (y * y).sum(0) if name in squares else (y * y).sum(0)

        return record

    was_training = model.training
    model.eval()
    handles = [model.get_submodule(n).register_forward_hook(hook(n)) for n in layers]
    try:
        with torch.no_grad():
            device = next((p.device for p in model.parameters()), torch.device("cpu"))
            for chunk in chunks(x, batch_size):
                model(move(chunk, device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    out = {}
    for name in layers:
        n = counts[name]
        mean = sums[name] / n
        out[name] = (mean.cpu(), (squares[name] / n - mean**2).clamp_min(0).sqrt().cpu())
    return out
