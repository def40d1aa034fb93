"""The generalized Gauss–Newton diagonal, layer by layer from per-sample squared gradients.

(1/N) Σ_n Σ_c (J_nᵀ a_nc)², where a_nc are the columns of a factor of the output curvature
(√p_c (e_c − p) for cross-entropy): one backward pass per class over per-sample factors, plus
per-sample squared weight gradients per layer (Linear, Conv2d, BatchNorm, GroupNorm). Where the
network is piecewise linear in each parameter it equals the Hessian diagonal.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from lmc_toolkit.hessian.network_operator import NetworkOperator

Handler = Callable[[nn.Module, Tensor, Tensor], dict[str, Tensor]]


def _linear(m: nn.Linear, a: Tensor, g: Tensor) -> dict[str, Tensor]:
    """g: classes × N × ... × out. Without shared positions the squares factor per sample."""
    if a.dim() == 2:
        g2 = (g * g).sum(0)  # N × out, summed over the factor's columns
        return {"weight": g2.T @ (a * a), "bias": g2.sum(0)}
    weight = torch.zeros_like(m.weight)
    for gc in g:  # shared over positions: materialize each per-sample gradient, then square
        per = torch.einsum("n...o,n...i->noi", gc, a)
        weight += (per * per).sum(0)
    gb = g.reshape(g.shape[0], g.shape[1], -1, g.shape[-1]).sum(2)
    return {"weight": weight, "bias": (gb * gb).sum((0, 1))}


def _conv2d(m: nn.Conv2d, a: Tensor, g: Tensor) -> dict[str, Tensor]:
    if m.groups != 1 or m.padding_mode != "zeros" or isinstance(m.padding, str):
        raise ValueError(
            "the GGN diagonal supports Conv2d with groups=1, zero padding given as numbers; "
            "use method='onehot' or 'hutchinson' for this model"
        )
    cols = F.unfold(a, m.kernel_size, m.dilation, m.padding, m.stride)  # N × Cin·k·k × L
    gg = g.reshape(g.shape[0], g.shape[1], g.shape[2], -1)  # classes × N × O × L
    weight = torch.zeros(m.weight.shape[0], cols.shape[1], device=a.device, dtype=a.dtype)
    for gc in gg:
        per = torch.bmm(gc, cols.transpose(1, 2))  # N × O × Cin·k·k
        weight += (per * per).sum(0)
    gb = gg.sum(3)
    return {"weight": weight.view_as(m.weight), "bias": (gb * gb).sum((0, 1))}


def _affine(normalized: Tensor, g: Tensor) -> dict[str, Tensor]:
    k, n, c = g.shape[:3]
    gw = (g * normalized).reshape(k, n, c, -1).sum(3)
    gb = g.reshape(k, n, c, -1).sum(3)
    return {"weight": (gw * gw).sum((0, 1)), "bias": (gb * gb).sum((0, 1))}


def _batchnorm(m: nn.modules.batchnorm._BatchNorm, a: Tensor, g: Tensor) -> dict[str, Tensor]:
    if m.training or m.running_mean is None:
        raise ValueError(
            "the GGN diagonal of train-mode BatchNorm is not per-sample; use bn='eval'"
        )
    shape = (1, -1) + (1,) * (a.dim() - 2)
    xhat = (a - m.running_mean.view(shape)) / (m.running_var.view(shape) + m.eps).sqrt()
    return _affine(xhat, g)


def _groupnorm(m: nn.GroupNorm, a: Tensor, g: Tensor) -> dict[str, Tensor]:
    return _affine(F.group_norm(a, m.num_groups, eps=m.eps), g)


_HANDLERS: dict[type, Handler] = {
    nn.Linear: _linear,
    nn.Conv2d: _conv2d,
    nn.BatchNorm1d: _batchnorm,
    nn.BatchNorm2d: _batchnorm,
    nn.GroupNorm: _groupnorm,
}


def _owners(H: NetworkOperator) -> dict[str, tuple[str, nn.Module, str]]:
    """selected parameter name → (module name, module, attribute)."""
    out = {}
    for mname, module in H.network().named_modules():
        for attr, _ in module.named_parameters(recurse=False):
            full = f"{mname}.{attr}" if mname else attr
            if full in H.names:
                if type(module) not in _HANDLERS:
                    raise ValueError(
                        f"the GGN diagonal has no rule for {type(module).__name__} (parameter "
                        f"{full!r}); use method='onehot' or 'hutchinson'"
                    )
                out[full] = (mname, module, attr)
    return out


def _output_factor(H: NetworkOperator, out: Tensor) -> Tensor:
    """Columns a_c (stacked: C × N × C) with Σ_c a_c a_cᵀ = the per-sample Hessian of the loss
    w.r.t. the outputs."""
    n, c = out.shape
    if H.loss == "mse":
        eye = torch.eye(c, device=out.device, dtype=out.dtype) * math.sqrt(2.0 / c)
        return eye[:, None, :].expand(c, n, c)
    p = torch.softmax(out.detach().double(), dim=-1)  # N × C
    sq = p.sqrt()
    eye = torch.eye(c, device=out.device, dtype=torch.float64)
    # a_k[n] = √p_nk (e_k − p_n)
    factors = sq.T[:, :, None] * (eye[:, None, :] - p[None, :, :])
    return factors.to(out.dtype)


def _output_grads(out: Tensor, outputs: list[Tensor], factors: Tensor) -> list[Tensor]:
    """The gradients of Σ_n a_c[n]·out[n] w.r.t. each tapped output, for every column c at once
    (a vmapped backward pass), or column by column where the batched pass is not supported."""
    try:
        grads = torch.autograd.grad(out, outputs, grad_outputs=factors, is_grads_batched=True)
        return [g.detach() for g in grads]
    except RuntimeError:
        cols = [
            torch.autograd.grad(out, outputs, grad_outputs=f, retain_graph=True) for f in factors
        ]
        return [torch.stack([c[i] for c in cols]).detach() for i in range(len(outputs))]


def ggn_diagonal(H: NetworkOperator, progress: bool, batch_size: int) -> list[Tensor]:
    owners = _owners(H)
    modules = {mname: module for mname, module, _ in owners.values()}
    net = H.network()
    totals = {
        k: torch.zeros(s, device=H.device, dtype=H.dtype)
        for k, s in zip(H.names, H.shapes, strict=True)
    }
    chunks = list(H.chunks(batch_size))
    for x, _, _ in tqdm(chunks, desc="ggn diagonal", disable=not progress, leave=False):
        seen: dict[str, list[tuple[Tensor, Tensor]]] = {m: [] for m in modules}

        def hook(mname, seen=seen):
            def fn(module, inputs, output):
                seen[mname].append((inputs[0].detach(), output))

            return fn

        handles = [mod.register_forward_hook(hook(mname)) for mname, mod in modules.items()]
        try:
            out = net(x)
        finally:
            for h in handles:
                h.remove()
        for mname, calls in seen.items():
            if len(calls) != 1:
                raise ValueError(f"module {mname!r} ran {len(calls)} times in one forward pass")
        names = list(modules)
        outputs = [seen[m][0][1] for m in names]
        scale = 1.0 / H.n  # per-sample sums, averaged over all data
        grads = _output_grads(out, outputs, _output_factor(H, out))
        per_module = {
            m: _HANDLERS[type(modules[m])](modules[m], seen[m][0][0], g)
            for m, g in zip(names, grads, strict=True)
        }
        for full, (mname, _, attr) in owners.items():
            totals[full] += per_module[mname][attr].view_as(totals[full]) * scale
    return [totals[k] for k in H.names]
