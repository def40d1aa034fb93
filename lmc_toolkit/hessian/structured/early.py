"""Exact Hessian diagonal entries of the early blocks of a conv chain by forward tangents.

For one coordinate θ_i of block l0 and one sample, the second derivative of the loss along e_i is
(the second-order chain rule, all layers but the norms and the loss being linear a.e.)

    d²ℓ/dθ_i² = Σ_{instance-norm levels l ≥ l0} u_lᵀ R_l u_l + u_outᵀ [∇²_logits ℓ] u_out,

with u_l the tangent of the conv output z_l (pushed forward from θ_i) and R_l the norm's own
curvature (closed form in `hessian.structured.chain.r_quad`). So each coordinate costs one linearized
forward pass of the network above it, batched over coordinates and samples — no backward
pass. A conv weight's tangent lives in one channel until the next conv, which is exploited.

Train-mode BatchNorm is an instance norm over samples and positions together: the same sum with
R_l over the whole batch. Samples then interact, so all data goes through at once and the
coordinates are split into steps instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from lmc_toolkit.hessian.operator import Hessian
from lmc_toolkit.hessian.structured.batch import LastBatchNorm
from lmc_toolkit.hessian.structured.chain import (
    Block,
    Chain,
    Level,
    centered_q,
    coupled,
    factor,
    forward,
    loss_sum,
    push,
)

_BUDGET = 16 * 2**20  # elements of the largest tangent tensor per step (×16 on a GPU)


def _coordinates(H: Hessian, chain: Chain, names: list[str]) -> list[tuple[str, int, int, int]]:
    """(name, flat index, level, channel) of every kept coordinate of `names`, in order."""
    owner = {}
    for level, b in enumerate(chain.blocks):
        owner[f"{b.conv}.weight"] = (level, "w")
        owner[f"{b.conv}.bias"] = (level, "b")
        if b.norm:
            owner[f"{b.norm}.weight"] = (level, "g")
            owner[f"{b.norm}.bias"] = (level, "g")
    kept = H.kept()
    out = []
    for name in names:
        level, kind = owner[name]
        idx = kept[name].reshape(-1).nonzero().flatten().tolist()
        per = kept[name].shape[1:].numel() if kind == "w" else 1
        out += [(name, i, level, i // per) for i in idx]
    return out


def _start(b: Block, lv: Level, name: str, i: int) -> tuple[Tensor, bool]:
    """One coordinate's tangent in its channel: of z (True: conv weight or bias, n × S) or of
    the block's pooled output (False: norm weight or bias, already masked and pooled)."""
    if name == f"{b.conv}.weight":
        return lv.cols[:, i % (lv.cols.shape[1] - 1)], True
    if name == f"{b.conv}.bias":
        return lv.cols[:, -1], True
    return lv.pooled["mx" if name.endswith(".weight") else "m"][:, 0], False


@dataclass(frozen=True)
class _Curv:
    """A level's instance-norm curvature data per sample and channel: columns [1, x̂, q] of the
    dot products, α = 1/(Sσ²) and s = qᵀx̂ (see `hessian.structured.chain.r_quad`)."""

    basis: Tensor
    alpha: Tensor
    s: Tensor

    @staticmethod
    def of(b: Block, lv: Level, q: Tensor | None) -> _Curv | None:
        if q is None:
            return None
        basis = torch.stack([torch.ones_like(q), lv.xhat, q], -1)
        if b.kind == "bt":  # one norm over samples and positions: 1 × C
            size = q.shape[0] * q.shape[-1]
            return _Curv(
                basis, 1 / (size * lv.norm_sigma[:1] ** 2), (q * lv.xhat).sum((0, 2))[None]
            )
        return _Curv(basis, 1 / (q.shape[-1] * lv.norm_sigma**2), (q * lv.xhat).sum(-1))

    def channel(self, o: int) -> _Curv:
        sl = slice(o, o + 1)
        return _Curv(self.basis[:, sl], self.alpha[:, sl], self.s[:, sl])


def _over_samples(t: Tensor) -> Tensor:
    """Sum over dimension 1 (samples) in float64: batch-wide sums of many float32 terms."""
    return t.double().sum(1)


def _step(b: Block, lv: Level, curv: _Curv | None, u: Tensor) -> tuple[Tensor, Tensor]:
    """Tangents u of z (B × n × C × S) → (Σ_c u_cᵀ R_c u_c per tangent and sample, the tangents
    of the block's pooled output, B × n × C × S')."""
    if b.kind not in ("in", "bt"):
        return u.new_zeros(u.shape[:2]), push(b, lv, u, None, None)
    if curv is None:
        raise RuntimeError(f"the normalized block of {b.conv} needs its curvature terms")
    if b.kind == "bt":  # sums over samples too; R's share is spread evenly over the samples
        # centered first: the norm removes the mean, which can dwarf the rest (input patches)
        # sums per sample in u's precision, then over samples in float64
        n, size = u.shape[1], u.shape[1] * u.shape[-1]
        u = u - (_over_samples(u.sum(-1)) / size).to(u.dtype)[:, None, :, None]
        xt, qt = _over_samples(torch.einsum("bncs,ncsk->bnck", u, curv.basis[..., 1:])).unbind(-1)
        pt2 = _over_samples(u.square().sum(-1))
        a, sc = curv.alpha.double(), curv.s.double()
        r = (a * (-2 * qt * xt - sc * pt2 + (3 / size) * sc * xt * xt)).sum(-1).to(u.dtype)
        zero = u.new_zeros(u.shape[0], 1, u.shape[2])
        return (r / n)[:, None].expand(-1, n), push(b, lv, u, zero, xt.to(u.dtype)[:, None])
    size = u.shape[-1]
    su, xt, qt = torch.einsum("bncs,ncsk->bnck", u, curv.basis).unbind(-1)
    pt2 = torch.linalg.vector_norm(u, dim=-1).square() - su * su / size
    r = curv.alpha * (-2 * qt * xt - curv.s * pt2 + (3 / size) * curv.s * xt * xt)
    return r.sum(-1), push(b, lv, u, su, xt)


def early_diagonal(
    H: Hessian, chain: Chain, names: list[str], limit: int | None, progress: bool
) -> tuple[dict[str, Tensor], int, int]:
    """name → diagonal (0 at pruned coordinates, NaN past `limit`) of the early-block
    parameters `names`, the number of coordinates and how many were computed."""
    coords = _coordinates(H, chain, names)
    todo = coords if limit is None else coords[:limit]
    params = dict(zip(H.names, H.parameters(), strict=True))
    values = {k: torch.zeros_like(params[k]).reshape(-1) for k in names}
    for name, i, _, _ in coords[len(todo) :]:
        values[name][i] = math.nan
    groups: dict[tuple[int, int], list[tuple[str, int]]] = {}
    for name, i, level, o in todo:
        groups.setdefault((level, o), []).append((name, i))
    if todo:
        x0 = next(iter(H.chunks(1)))[0]
        with torch.no_grad():
            lv0, _, _ = forward(chain, x0)
        budget = _BUDGET * (1 if x0.device.type == "cpu" else 16)
        if coupled(chain):  # all samples at once; coordinates in steps sized to the budget
            x, y, _ = next(iter(H.chunks(H.n)))
            sizes = [_step_width(lv0, level, _shortcut(chain)) for level in range(len(lv0))]
            steps = {k: max(1, budget // (sizes[k[0]] * H.n)) for k in groups}
            _chunk(H, chain, groups, values, x, y, steps, progress)
        else:
            widest = max(_step_width(lv0, level, False) for level in range(len(lv0)))
            biggest = max(len(g) for g in groups.values())
            chunk = max(1, min(H.n, budget // (widest * biggest)))
            for x, y, _ in tqdm(
                list(H.chunks(chunk)), desc="early blocks", disable=not progress, leave=False
            ):
                _chunk(H, chain, groups, values, x, y)
    return {k: (v / H.n).view_as(params[k]) for k, v in values.items()}, len(coords), len(todo)


def _conv(b: Block, lv: Level, t: Tensor, w_in: slice) -> Tensor:
    """The block's conv (no bias) of tangents t from input channels `w_in`; from one channel as
    taps × weights, which measured faster than a one-channel convolution on the CPU."""
    c = b.conv_m
    w = c.weight.detach()[:, w_in]
    if w.shape[1] != 1:
        return F.conv2d(t, w, None, c.stride, c.padding, c.dilation)
    cols = F.unfold(t, c.kernel_size, c.dilation, c.padding, c.stride)
    return (w.flatten(1) @ cols).view(t.shape[0], w.shape[0], *lv.z.shape[2:])


def _step_width(levels: list[Level], l0: int, shortcut: bool) -> int:
    """Elements per sample of the widest tangent of one coordinate of block l0 (`shortcut`:
    the last block is `LastBatchNorm`'s, which never forms its one-channel tangents' pushes)."""
    later = levels[l0 + 1 : -1 if shortcut and l0 == len(levels) - 2 else None]
    return max([levels[l0].z[0, 0].numel()] + [lv.z[0].numel() for lv in later])


def _shortcut(chain: Chain) -> bool:
    return coupled(chain) and chain.blocks[-1].kind == "bt" and len(chain.blocks) > 1


def _last_norm(
    loss: str, chain: Chain, levels: list, curv: _Curv | None, logits: Tensor
) -> LastBatchNorm:
    """The shortcut through the last block's train-mode batch norm (`_shortcut`)."""
    if curv is None:
        raise RuntimeError("the last block's batch norm needs its curvature terms")
    u = factor(loss, logits)
    w_fc = chain.fc_m.weight.detach()
    return LastBatchNorm(chain.blocks[-1], levels[-1], curv.basis, curv.alpha, curv.s, u, w_fc)


def _work(groups: dict, steps: dict | None) -> list[tuple[Any, list]]:
    """(group, coordinates) per step: a group whole, or cut into `steps[group]` coordinates."""
    work = []
    for key, coords in groups.items():
        step = len(coords) if steps is None else steps[key]
        work += [(key, coords[i : i + step]) for i in range(0, len(coords), step)]
    return work


def _through_head(loss: str, uh: Tensor, w_fc: Tensor, channels: int, o: int, p: Tensor) -> Tensor:
    """The classifier's share of tᵀ·H_logits·t for tangents `uh` of the last block's pooled
    output (B × n × C' × S'; still in channel `o` alone when C' < `channels`)."""
    w = w_fc
    if uh.shape[2] < channels:  # still in channel o: its columns of w_fc
        w = w_fc.view(w_fc.shape[0], channels, -1)[:, o]
    out = uh.reshape(*uh.shape[:2], -1) @ w.T  # B × n × K
    if loss == "cross_entropy":
        return (p * out * out).sum(-1) - (p * out).sum(-1) ** 2
    return (out * out).sum(-1) * (2 / out.shape[-1])


def _chunk(
    H: Hessian,
    chain: Chain,
    groups,
    values,
    x: Tensor,
    y: Tensor,
    steps: dict | None = None,
    progress: bool = False,
) -> None:
    """Adds one data chunk's share to `values`; `steps` (coordinates per step, by group) splits
    the groups, otherwise each group is one step."""
    levels, logits, _ = forward(chain, x)
    grads = torch.autograd.grad(loss_sum(H.loss, logits, y), [lv.a for lv in levels])
    curvs = [
        _Curv.of(b, lv, centered_q(b, g))
        for b, lv, g in zip(chain.blocks, levels, grads, strict=True)
    ]
    p = torch.softmax(logits.detach(), -1)
    w_fc = chain.fc_m.weight.detach()
    last = _last_norm(H.loss, chain, levels, curvs[-1], logits) if _shortcut(chain) else None
    bar = tqdm(
        _work(groups, steps),
        desc="early blocks",
        disable=not progress or steps is None,
        leave=False,
    )
    for (l0, o), coords in bar:
        b, lv = chain.blocks[l0], levels[l0].channel(o)
        curv = None if curvs[l0] is None else curvs[l0].channel(o)
        starts = [_start(b, lv, name, i) for name, i in coords]
        at_z = [s for s, z in starts if z]
        total = x.new_zeros(len(at_z), x.shape[0])
        parts = []
        if at_z:
            total, uh = _step(b, lv, curv, torch.stack(at_z)[:, :, None])
            parts.append(uh)
        at_h = [s for s, z in starts if not z]
        if at_h:
            parts.append(torch.stack(at_h)[:, :, None])
            total = torch.cat([total, total.new_zeros(len(at_h), x.shape[0])])
        uh = torch.cat(parts)  # B × n × 1 × S', in the order z-tangents, then h-tangents
        order = [c for c, (_, z) in zip(coords, starts, strict=True) if z]
        order += [c for c, (_, z) in zip(coords, starts, strict=True) if not z]
        w_in = slice(o, o + 1)
        for level in range(l0 + 1, len(chain.blocks)):
            b, lv = chain.blocks[level], levels[level]
            if last is not None and level == len(chain.blocks) - 1 and uh.shape[2] == 1:
                total = total + (last.apply(uh[:, :, 0], o) / uh.shape[1])[:, None]
                break
            bt, n = uh.shape[:2]
            flat = uh.reshape(bt * n, -1, *lv.h_in.shape[2:])
            uz = _conv(b, lv, flat, w_in)
            w_in = slice(None)
            r, uh = _step(b, lv, curvs[level], uz.reshape(bt, n, uz.shape[1], -1))
            total = total + r
        else:
            total = total + _through_head(H.loss, uh, w_fc, levels[-1].z.shape[1], o, p)
        for (name, i), v in zip(order, total.sum(1), strict=True):
            values[name][i] += v.detach()
