"""The first block of a convnet (conv → norm → activation → 2×2 pooling) as one fused kernel.

On the CPU the first block of a small-input convnet costs more than the rest of the network:
`convnet3` on 32×32 inputs spends about two thirds of a forward pass writing and re-reading the
64×32×32 conv output (conv, GroupNorm's two passes, ReLU, pooling). That output never needs to
exist. A conv with few input taps (in_channels·kh·kw, 9 for MNIST) is a small weighted sum of
shifted input windows, and the normalization statistics follow from per-image moments of those
windows:

    u[n, c, p] = w_c · X[n, :, p] + b_c
    mean_p u[n, c] = w_c · m_n + b_c,      var_p u[n, c] = w_cᵀ Σ_n w_c

(m_n, Σ_n: mean and covariance of the taps over positions, computed once per chunk in float64).
So normalization folds into per-(image, channel) tap weights, and one kernel reads the windows,
applies the activation and pools, writing only the pooled output. With `torch.compile` the
kernel is generated from an unrolled sum over taps and pooling phases; without it, the same
arithmetic runs as one batched matrix product. The windows are stored by pooling phase so that
every load is contiguous.

Supported: a parameter-free prefix, `Conv2d` (groups 1, zero padding, ≤ `MAX_TAPS` taps), then
optionally `GroupNorm` (any groups) or `BatchNorm2d` with running statistics, optionally one
elementwise activation, optionally `AvgPool2d(2)` / `MaxPool2d(2)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Beyond this many input taps the conv's own kernel is cheaper than the unrolled sum.
MAX_TAPS = 27
_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.ELU)


@dataclass(frozen=True, eq=False)
class Windows:
    """One data chunk's conv input windows by pooling phase, and their moments."""

    phases: Tensor  # (N, T, Q, H', W'): tap t of phase q at pooled position (i, j)
    mean: Tensor  # (N, T) float64, over all conv output positions
    cov: Tensor  # (N, T, T) float64


@dataclass(frozen=True, eq=False)
class Stem:
    """The modules of a fusable first block and the part of the network after it."""

    prefix: nn.Module
    conv: nn.Conv2d
    norm: nn.Module | None
    act: nn.Module | None
    pool: nn.Module | None
    rest: nn.Module

    @property
    def phases(self) -> int:
        return 1 if self.pool is None else 4

    def conv_elements(self, in_shape: tuple[int, ...]) -> int:
        """Elements of the first conv's output per image: what the fused block never writes."""
        with torch.no_grad():
            z = self.prefix(torch.zeros(1, *in_shape, device=self.conv.weight.device))
        h, w = _out_size(z.shape[-2:], self.conv)
        return self.conv.out_channels * h * w

    # -- per chunk --------------------------------------------------------------------------
    def windows(self, x: Tensor) -> Windows:
        """The conv's input windows of chunk `x`, laid out by pooling phase, with moments."""
        z = self.prefix(x)
        c = self.conv
        cols = F.unfold(z, c.kernel_size, c.dilation, c.padding, c.stride)  # (N, T, P)
        n, taps = cols.shape[:2]
        h_out, w_out = _out_size(z.shape[-2:], c)
        wide = cols.double()
        mean = wide.mean(-1)
        centred = wide - mean[..., None]
        cov = centred @ centred.transpose(1, 2) / cols.shape[-1]
        grid = cols.view(n, taps, h_out, w_out)
        if self.pool is None:
            phases = grid[:, :, None]
        else:
            h, w = h_out // 2 * 2, w_out // 2 * 2
            grid = grid[:, :, :h, :w]
            phases = torch.stack([grid[:, :, a::2, b::2] for a in (0, 1) for b in (0, 1)], 2)
        return Windows(phases.contiguous(), mean, cov)

    # -- per point --------------------------------------------------------------------------
    def coefficients(self, mean: Tensor, cov: Tensor) -> tuple[Tensor, Tensor]:
        """Per-(image, channel) tap weights (N, C, T) and offsets (N, C) of the normalized conv
        output at the module's current weights and buffers, from the windows' moments."""
        c = self.conv
        w = c.weight.reshape(c.out_channels, -1).double()  # (C, T)
        b = c.bias.double() if c.bias is not None else w.new_zeros(c.out_channels)
        mu = mean @ w.T + b  # (N, C): each channel's mean over positions
        scale, shift = self._norm(mu, cov, w)
        weights = (scale[..., None] * w).to(c.weight.dtype)
        offsets = (scale * b + shift).to(c.weight.dtype)
        return weights, offsets

    def _norm(self, mu: Tensor, cov: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
        norm = self.norm
        n, channels = mu.shape
        if norm is None:
            return mu.new_ones(n, channels), mu.new_zeros(n, channels)
        gamma = _affine(norm.weight, channels, 1.0, mu)
        beta = _affine(norm.bias, channels, 0.0, mu)
        if isinstance(norm, nn.GroupNorm):
            var = torch.einsum("ct,nts,cs->nc", w, cov, w)
            groups = norm.num_groups
            mu_g = mu.view(n, groups, -1)
            mean = mu_g.mean(-1, keepdim=True)
            gvar = var.view(n, groups, -1).mean(-1, keepdim=True) + (mu_g - mean).pow(2).mean(
                -1, keepdim=True
            )
            inv = (gvar + norm.eps).rsqrt()
            inv = inv.expand(-1, -1, channels // groups).reshape(n, channels)
            mean = mean.expand(-1, -1, channels // groups).reshape(n, channels)
        else:  # BatchNorm2d with running statistics
            assert isinstance(norm, nn.BatchNorm2d) and norm.running_var is not None
            inv = (norm.running_var.double() + norm.eps).rsqrt().expand(n, -1)
            mean = norm.running_mean.double().expand(n, -1)
        scale = gamma * inv
        return scale, beta - scale * mean

    def forward(self, win: Windows, *, unrolled: bool = False) -> Tensor:
        """The block's output at the module's current weights: `unrolled` is the form for
        `torch.compile`, the other a batched product for eager evaluation."""
        weights, offsets = self.coefficients(win.mean, win.cov)
        if unrolled:
            return self.block_unrolled(win.phases, weights, offsets)
        return self.block(win.phases, weights, offsets)

    def block(self, phases: Tensor, weights: Tensor, offsets: Tensor) -> Tensor:
        """The block's pooled output, as one batched product (the eager path)."""
        n, taps, q, h, w = phases.shape
        u = torch.bmm(weights, phases.reshape(n, taps, -1)) + offsets[..., None]
        u = u.view(n, -1, q, h, w)
        if self.act is not None:
            u = self.act(u)
        return self._reduce([u[:, :, i] for i in range(q)])

    def block_unrolled(self, phases: Tensor, weights: Tensor, offsets: Tensor) -> Tensor:
        """The same output as an unrolled sum over taps and phases, for `torch.compile` to fuse
        into one kernel that reads only the windows."""
        outs = []
        for q in range(phases.shape[2]):
            u = offsets[..., None, None]
            for t in range(phases.shape[1]):
                u = u + weights[:, :, t, None, None] * phases[:, None, t, q]
            outs.append(self.act(u) if self.act is not None else u)
        return self._reduce(outs)

    def _reduce(self, outs: list[Tensor]) -> Tensor:
        if len(outs) == 1:
            return outs[0]
        if isinstance(self.pool, nn.MaxPool2d):
            return torch.stack(outs).amax(0)
        total = outs[0]
        for o in outs[1:]:
            total = total + o
        return total * (1.0 / len(outs))


def find_stem(net: nn.Module) -> Stem | None:
    """The fusable first block of `net` (a Sequential), or None when it has none."""
    if not isinstance(net, nn.Sequential):
        return None
    mods = list(net)
    i = 0
    while i < len(mods) and not _has_state(mods[i]):
        i += 1
    if i == len(mods) or not _fusable_conv(mods[i]):
        return None
    conv, j = mods[i], i + 1
    norm = act = pool = None
    if j < len(mods) and _fusable_norm(mods[j], conv.out_channels):
        norm, j = mods[j], j + 1
    elif j < len(mods) and _has_state(mods[j]):
        return None
    if j < len(mods) and type(mods[j]) in _ACTIVATIONS:
        act, j = mods[j], j + 1
    if j < len(mods) and _fusable_pool(mods[j]):
        pool, j = mods[j], j + 1
    if norm is None and act is None and pool is None:
        return None  # a bare conv gains nothing from fusion
    return Stem(net[:i], conv, norm, act, pool, net[j:])


def _has_state(m: nn.Module) -> bool:
    return any(True for _ in m.parameters()) or any(True for _ in m.buffers())


def _fusable_conv(m: nn.Module) -> bool:
    return (
        type(m) is nn.Conv2d
        and m.groups == 1
        and m.padding_mode == "zeros"
        and not isinstance(m.padding, str)
        and m.in_channels * m.kernel_size[0] * m.kernel_size[1] <= MAX_TAPS
    )


def _fusable_norm(m: nn.Module, channels: int) -> bool:
    if type(m) is nn.GroupNorm:
        return m.num_channels == channels
    if type(m) is nn.BatchNorm2d:
        return m.num_features == channels and m.running_var is not None and not m.training
    return False


def _fusable_pool(m: nn.Module) -> bool:
    if type(m) not in (nn.AvgPool2d, nn.MaxPool2d):
        return False
    pair = (2, 2)
    size = m.kernel_size if isinstance(m.kernel_size, tuple) else (m.kernel_size,) * 2
    stride = m.stride if isinstance(m.stride, tuple) else (m.stride,) * 2
    padding = m.padding if isinstance(m.padding, tuple) else (m.padding,) * 2
    plain = size == pair and stride == pair and padding == (0, 0) and not m.ceil_mode
    if isinstance(m, nn.AvgPool2d):
        return plain and m.divisor_override is None
    dilation = m.dilation if isinstance(m.dilation, tuple) else (m.dilation,) * 2
    return plain and dilation == (1, 1) and not m.return_indices


def _out_size(size: torch.Size, conv: nn.Conv2d) -> tuple[int, int]:
    out = []
    for d in range(2):
        span = conv.dilation[d] * (conv.kernel_size[d] - 1) + 1
        out.append((size[d] + 2 * conv.padding[d] - span) // conv.stride[d] + 1)
    return out[0], out[1]


def _affine(t: Tensor | None, channels: int, default: float, like: Tensor) -> Tensor:
    if t is None:
        return like.new_full((channels,), default)
    return t.double()
