"""Ground truth for the Hessian tests: dense Hessians by `torch.func.hessian`, tiny models."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from lmc_toolkit import data as D
from lmc_toolkit import models


def tiny_data(digits: D.Dataset, n: int = 40) -> D.Dataset:
    """The first n digits in float64, for exact comparisons."""
    d = digits[:n]
    return D.Dataset(d.x.double(), d.y, d.classes, d.name, d.meta)


def mlp(seed: int = 0, hidden: int = 4) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10)
    ).double()


def cnn(seed: int = 0, norm: str = "none") -> nn.Module:
    """conv(1→2) [→ norm] → ReLU → pool → linear on 8×8 digits (~120 parameters); norm is
    none, bn (BatchNorm) or gn (instance norm as GroupNorm(2, 2), like convnet3's)."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Conv2d(1, 2, 3, padding=1)]
    if norm == "bn":
        layers.append(nn.BatchNorm2d(2))
    elif norm == "gn":
        layers.append(nn.GroupNorm(2, 2))
    layers += [nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(), nn.Linear(2 * 4, 10)]
    net = nn.Sequential(*layers).double()
    if norm == "bn":  # non-trivial running statistics and affine parameters
        with torch.no_grad():
            net[1].running_mean.uniform_(-0.5, 0.5)
            net[1].running_var.uniform_(0.5, 2.0)
            net[1].weight.uniform_(0.5, 1.5)
            net[1].bias.uniform_(-0.2, 0.2)
    return net


def tiny_resnet(seed: int = 0) -> nn.Module:
    """A two-stage ResNet of width 2 on 8×8 digits (~420 parameters): an identity shortcut
    (an empty Sequential), a projected one, functional ReLUs and eval-mode BatchNorm with
    non-trivial statistics."""
    torch.manual_seed(seed)
    net = models.ResNet(10, 1, [1, 1], 2, imagenet_stem=False).double()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()


def dense_hessian(
    model: nn.Module,
    data: D.Dataset,
    names: list[str] | None = None,
    train: bool = False,
    loss=F.cross_entropy,
) -> torch.Tensor:
    """The Hessian of the mean loss over all of `data` w.r.t. `names` (flattened in order)."""
    net = copy.deepcopy(model)
    if train:  # batch statistics without touching buffers (torch.func forbids in-place updates)
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.track_running_stats = False
                m.running_mean = m.running_var = None
    net.train(train)
    params = {k: p.detach() for k, p in net.named_parameters()}
    buffers = dict(net.named_buffers())
    names = names or list(params)
    sizes = [params[k].numel() for k in names]
    flat0 = torch.cat([params[k].reshape(-1) for k in names])

    def f(flat):
        ps = dict(params)
        for k, t in zip(names, flat.split(sizes), strict=True):
            ps[k] = t.view_as(params[k])
        return loss(functional_call(net, {**ps, **buffers}, (data.x,)), data.y)

    return torch.func.hessian(f)(flat0)


def flat_mask(model: nn.Module, mask: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat(
        [
            mask.get(k, torch.ones_like(p, dtype=torch.bool)).reshape(-1)
            for k, p in model.named_parameters()
        ]
    )


def random_mask(model: nn.Module, names: list[str], keep: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters())
    return {k: torch.rand(params[k].shape, generator=g) < keep for k in names}


def apply_mask(model: nn.Module, mask: dict[str, torch.Tensor]) -> nn.Module:
    net = copy.deepcopy(model)
    with torch.no_grad():
        for k, p in net.named_parameters():
            if k in mask:
                p.mul_(mask[k])
    return net


def finite_difference_hessian(model: nn.Module, data: D.Dataset, h: float = 1e-5) -> torch.Tensor:
    """Central differences of autograd gradients in train mode with batch statistics.

    `torch.func.hessian` (forward over reverse) gets train-mode BatchNorm wrong in torch 2.14:
    its result is not even symmetric. Differences of gradients are an independent check.
    """
    net = copy.deepcopy(model)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.track_running_stats = False
            m.running_mean = m.running_var = None
    net.train()
    ps = list(net.parameters())
    flat = torch.cat([p.detach().reshape(-1) for p in ps])

    def grad_at(point):
        with torch.no_grad():
            for p, t in zip(ps, point.split([p.numel() for p in ps]), strict=True):
                p.copy_(t.view_as(p))
        loss = F.cross_entropy(net(data.x), data.y)
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, ps)])

    cols = []
    for i in range(len(flat)):
        e = torch.zeros_like(flat)
        e[i] = h
        cols.append((grad_at(flat + e) - grad_at(flat - e)) / (2 * h))
    return torch.stack(cols, dim=1)
