"""Building blocks of the evaluator: flat views of a module's tensors, the first-layer split
that lets planes reuse the first layer's output, and estimates the evaluator plans with."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmc_toolkit.landscape.evaluator.precision import autocast_dtype


class FlatView:
    """Tensors of a module re-seated as views into one flat vector, written in one operation."""

    def __init__(self, named: Mapping[str, Tensor]):
        self.names = list(named)
        tensors = list(named.values())
        dtypes = {t.dtype for t in tensors}
        if len(dtypes) > 1:
            raise TypeError(f"the evaluator needs one floating dtype for all tensors, got {dtypes}")
        self.shapes = [t.shape for t in tensors]
        self.sizes = [t.numel() for t in tensors]
        device = tensors[0].device if tensors else torch.device("cpu")
        dtype = tensors[0].dtype if tensors else torch.float32
        self.flat = torch.empty(sum(self.sizes), dtype=dtype, device=device)
        for t, view in zip(tensors, self.views(self.flat), strict=True):
            view.copy_(t.detach())
            t.data = view

    def views(self, flat: Tensor) -> list[Tensor]:
        """`flat` (..., n) split into tensors of the stored shapes (with leading dims kept)."""
        lead = flat.shape[:-1]
        parts = torch.split(flat, self.sizes, dim=-1)
        return [p.view(*lead, *s) for p, s in zip(parts, self.shapes, strict=True)]

    def pack(self, named: Mapping[str, Tensor]) -> Tensor:
        """The tensors of `named` (same names and shapes) as one flat vector."""
        if not self.names:
            return self.flat.new_zeros(0)
        return torch.cat(
            [named[k].detach().reshape(-1).to(self.flat) for k in self.names]
        ).contiguous()

    def write(self, values: Tensor) -> None:
        self.flat.copy_(values)


def first_layer_split(net: nn.Module) -> tuple[nn.Module, nn.Module, nn.Module] | None:
    """(prefix, first layer, rest) when `net` is a Sequential whose first parameterized module
    is a plain Conv2d or Linear preceded only by parameter-free modules; else None."""
    if not isinstance(net, nn.Sequential):
        return None
    for i, m in enumerate(net):
        if type(m) in (nn.Conv2d, nn.Linear):
            return net[:i], m, net[i + 1 :]
        if any(True for _ in m.parameters()) or any(True for _ in m.buffers()):
            return None
    return None


def layer_output(layer: nn.Module, z: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    if isinstance(layer, nn.Conv2d):
        return layer._conv_forward(z, weight, bias)
    return F.linear(z, weight, bias)


def compiler_available(device: str = "cpu") -> bool:
    """Whether `torch.compile` can generate code here: a C++ compiler for the CPU, Triton
    for CUDA."""
    if device == "cuda":
        try:
            from torch.utils._triton import has_triton
        except ImportError:
            return False
        return bool(has_triton())
    return any(shutil.which(c) for c in ("c++", "g++", "clang++"))


def activation_bytes(net: nn.Module, x: Tensor) -> int:
    """The bytes of all leaf-module outputs of one forward pass over `x` (a memory estimate)."""
    total = [0]

    def hook(_m: nn.Module, _i: Any, out: Any) -> None:
        if isinstance(out, Tensor):
            total[0] += out.numel() * out.element_size()

    handles = [
        m.register_forward_hook(hook) for m in net.modules() if not any(True for _ in m.children())
    ]
    try:
        with torch.inference_mode():
            net(x)
    finally:
        for h in handles:
            h.remove()
    return total[0] + x.numel() * x.element_size()


def vmap_scores(
    net: nn.Module,
    params: FlatView,
    buffers: FlatView,
    thetas: Tensor,
    buffer_rows: Tensor | None,
    x: Tensor,
    y: Tensor,
) -> tuple[Tensor, Tensor]:
    """Summed loss (float64) and right images (B, chunk) on one chunk for a block of points at once:
    `thetas` (B, n) are the points' flat parameters, `buffer_rows` (B, nb) their float buffers
    (None: the module's own, shared by all). Under autocast the points, their buffers and the
    data are cast to its dtype and the vmapped forward runs in it with autocast off: inside
    `vmap` autocast casts some operands of an operation and not others."""
    from torch.func import functional_call, vmap

    low = autocast_dtype(x.device)
    rows = buffers.flat if buffer_rows is None else buffer_rows
    if low is not None:
        thetas, rows, x = thetas.to(low), rows.to(low), x.to(low)
    block = thetas.shape[0]
    named = dict(zip(params.names, params.views(thetas), strict=True))
    bufs = dict(zip(buffers.names, buffers.views(rows), strict=True))
    dims: tuple[int | None, int | None] = (0, 0) if buffer_rows is not None else (0, None)

    def forward(p: dict[str, Tensor], b: dict[str, Tensor]) -> Tensor:
        return functional_call(net, (p, b), (x,))

    with torch.autocast(device_type=x.device.type, enabled=False):
        logits = vmap(forward, in_dims=dims)(named, bufs)  # (B, n, classes)
    per = F.cross_entropy(logits.flatten(0, 1).float(), y.repeat(block), reduction="none")
    return per.view(block, -1).sum(1).double(), logits.argmax(-1) == y
