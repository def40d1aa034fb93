"""Conv chains [Conv2d → norm → ReLU → pool]×D → Flatten → Linear: parsing, a forward pass that
keeps what the exact diagonal routes need, and the instance norm's curvature in closed form.

Used by `hessian.structured.norm` (closed forms for the last two blocks) and `hessian.structured.early`
(forward tangents for the blocks before them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmc_toolkit.hessian.operator import Hessian

_POOLS = (nn.AvgPool2d, nn.MaxPool2d)


@dataclass(frozen=True)
class Block:
    """conv → norm → ReLU → pool; names are module names in the network."""

    conv: str
    conv_m: nn.Conv2d
    norm: str | None
    norm_m: nn.Module | None
    kind: str  # "in" (instance norm), "bn" (eval BatchNorm), "bt" (train-mode BatchNorm), "none"
    pool: nn.Module | None

    @property
    def norm_module(self) -> nn.Module:
        """The norm layer (only blocks of kind "in", "bn" or "bt" have one)."""
        if self.norm_m is None:
            raise RuntimeError(f"the block of {self.conv} has no norm layer (kind {self.kind!r})")
        return self.norm_m


@dataclass(frozen=True)
class Chain:
    blocks: tuple[Block, ...]
    fc: str
    fc_m: nn.Linear


def _leaves(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    if isinstance(module, nn.Sequential):
        out = []
        for name, child in module.named_children():
            out += _leaves(child, f"{prefix}.{name}" if prefix else name)
        return out
    if next(module.children(), None) is not None:
        raise ValueError(f"module {prefix!r} ({type(module).__name__}) is not a Sequential chain")
    return [(prefix, module)]


def parse_chain(H: Hessian) -> Chain:
    """The chain of blocks of `H`'s network, or a ValueError saying why the structured route
    does not apply."""
    if H.loss not in ("cross_entropy", "mse"):
        raise ValueError(f"the structured route needs loss cross_entropy or mse, got {H.loss!r}")
    leaves = [(n, m) for n, m in _leaves(H.network()) if not isinstance(m, nn.Identity)]
    blocks, i = [], 0

    def at(j: int) -> nn.Module | None:
        return leaves[j][1] if j < len(leaves) else None

    while isinstance(at(i), nn.Conv2d):
        conv_name, conv = leaves[i]
        if conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError(f"conv {conv_name!r} needs groups=1 and numeric zero padding")
        i += 1
        norm, norm_m, kind = None, None, "none"
        m = at(i)
        if isinstance(m, nn.GroupNorm) and m.num_groups == m.num_channels == conv.out_channels:
            norm, norm_m, kind = leaves[i][0], m, "in"
            i += 1
        elif isinstance(m, nn.BatchNorm2d):
            if H.bn == "eval" and m.running_mean is None:
                raise ValueError(f"BatchNorm {leaves[i][0]!r} has no running stats for bn='eval'")
            norm, norm_m, kind = leaves[i][0], m, "bn" if H.bn == "eval" else "bt"
            i += 1
        if not isinstance(at(i), nn.ReLU):
            got = type(at(i)).__name__
            raise ValueError(f"after conv {conv_name!r} expected [norm →] ReLU, got {got}")
        i += 1
        pool = at(i) if isinstance(at(i), _POOLS) else None
        i += pool is not None
        blocks.append(Block(conv_name, conv, norm, norm_m, kind, pool))
    if not blocks or not isinstance(at(i), nn.Flatten) or not isinstance(at(i + 1), nn.Linear):
        raise ValueError("expected [Conv2d → norm → ReLU → pool]×D → Flatten → Linear")
    if i + 2 != len(leaves):
        raise ValueError(f"unexpected module {leaves[i + 2][0]!r} after the last Linear")
    return Chain(tuple(blocks), leaves[i + 1][0], leaves[i + 1][1])


def coupled(chain: Chain) -> bool:
    """Whether samples interact (train-mode BatchNorm): then every route sees all data at once."""
    return any(b.kind == "bt" for b in chain.blocks)


def applies(H: Hessian) -> bool:
    try:
        parse_chain(H)
    except ValueError:
        return False
    return True


# ----- the forward pass, keeping what the closed forms need -----


@dataclass(frozen=True)
class Level:
    """One block's forward quantities for a chunk of n samples (S: the conv output's spatial
    size, S': the pooled size, J: the conv's fan-in). `z`, `a`, `h_in` stay in the graph."""

    cols: Tensor  # n × (J+1) × S: the conv's unfolded input plus a row of ones (bias)
    h_in: Tensor  # the conv input
    z: Tensor  # the conv output, n × C × H × W
    xhat: Tensor  # the normalized z, n × C × S (z itself without a norm)
    scale: Tensor  # ∂a/∂x̂ · 1/σ: γ/σ (instance norm), γ/sd (BatchNorm), 1 (none), n × C × 1
    sigma: Tensor | None  # n × C (instance norm; train-mode BatchNorm: the same for every n)
    a: Tensor  # the norm output (ReLU input)
    pool_idx: Tensor | None  # max-pool argmax, n × C × S'
    ms: Tensor  # ReLU mask ⊙ scale, n × C × S
    pooled: dict[str, Tensor]  # pooled per-channel maps n × C × S' of ms, ms⊙x̂, mask, mask⊙x̂

    @property
    def norm_sigma(self) -> Tensor:
        """`sigma`, which only the instance and train-mode batch norms have."""
        if self.sigma is None:
            raise RuntimeError("this level's block normalizes with no per-sample σ")
        return self.sigma

    def channel(self, o: int) -> Level:
        """This level restricted to output channel `o` (kept as a dimension of size 1)."""
        sl = slice(o, o + 1)

        def cut(t):
            return None if t is None else t[:, sl]

        return Level(
            self.cols, self.h_in, cut(self.z), cut(self.xhat), cut(self.scale), cut(self.sigma),
            cut(self.a), cut(self.pool_idx), cut(self.ms),
            {k: cut(v) for k, v in self.pooled.items()},
        )  # fmt: skip


def pool_map(b: Block, idx: Tensor | None, hw: tuple[int, ...], t: Tensor) -> Tensor:
    """The block's pooling applied to tangents of its ReLU output: … × S → … × S' (`idx`, the
    max-pool argmax, must broadcast against t's leading dimensions)."""
    if isinstance(b.pool, nn.MaxPool2d):
        if idx is None:
            raise RuntimeError(f"the max-pool after {b.conv} needs its argmax indices")
        shape = torch.broadcast_shapes(t.shape[:-1], idx.shape[:-1])
        return t.expand(*shape, t.shape[-1]).gather(-1, idx.expand(*shape, idx.shape[-1]))
    if b.pool is None:
        return t
    return b.pool(t.reshape(-1, 1, *hw)).reshape(*t.shape[:-1], -1)


def push(
    b: Block, lv: Level, t: Tensor, sum_t: Tensor | None, xt: Tensor | None, at=lambda v: v
) -> Tensor:
    """Tangents t of the conv output z (… × S) → tangents of the block's pooled output (… × S'):
    Pool(mask ⊙ ∂a/∂z t), which for instance norm is Pool(ms⊙t) − (Σt/S) Pool(ms) − (x̂ᵀt/S)
    Pool(ms⊙x̂). Train-mode BatchNorm is the same with sums over samples and positions: t is
    B × n × C × S and sum_t, xt are B × 1 × C. `at` aligns the level's n × C × … tensors with t's
    layout."""
    hw = tuple(lv.z.shape[2:])
    if isinstance(b.pool, nn.MaxPool2d):  # gather first: a quarter of the work
        out = pool_map(b, at(lv.pool_idx), hw, t) * at(lv.pooled["ms"])
    else:
        out = pool_map(b, None, hw, t * at(lv.ms))
    if b.kind in ("in", "bt"):
        size = t.shape[-1] * (t.shape[-3] if b.kind == "bt" else 1)
        out = out - (sum_t / size)[..., None] * at(lv.pooled["ms"])
        out = out - (xt / size)[..., None] * at(lv.pooled["msx"])
    return out


def centered_q(b: Block, ga: Tensor) -> Tensor | None:
    """∂ℓ/∂x̂ per sample and channel, centered over what the norm averages: positions (instance
    norm) or samples and positions (train-mode BatchNorm); None for the other kinds."""
    if b.kind not in ("in", "bt"):
        return None
    g = ga.detach().flatten(2)
    weight = b.norm_module.weight
    if weight is not None:
        g = g * weight.detach()[:, None]
    return g - g.mean((0, 2) if b.kind == "bt" else -1, keepdim=True)


def _param(m: nn.Module, attr: str) -> Tensor | None:
    p = getattr(m, attr, None)
    return None if p is None else p.detach()


def forward(chain: Chain, x: Tensor) -> tuple[list[Level], Tensor, list[Tensor]]:
    """The chain on a chunk x, written out with the parameters detached (the routes need
    derivatives w.r.t. activations only): levels, logits and each block's pooled output."""
    h = x.detach().requires_grad_(True)
    levels, pooled = [], []
    for b in chain.blocks:
        c = b.conv_m
        z = F.conv2d(h, _param(c, "weight"), _param(c, "bias"), c.stride, c.padding, c.dilation)
        n, ch = z.shape[:2]
        zf = z.flatten(2)
        sigma = None
        if b.kind == "in":
            mu = zf.mean(-1, keepdim=True)
            sigma = ((zf - mu) ** 2).mean(-1, keepdim=True).add(b.norm_module.eps).sqrt()
            xhat = (zf - mu) / sigma
            inv = 1 / sigma
        elif b.kind == "bt":  # batch statistics (biased variance), as train-mode BatchNorm
            mu = zf.mean((0, 2), keepdim=True)
            sigma = ((zf - mu) ** 2).mean((0, 2), keepdim=True).add(b.norm_module.eps).sqrt()
            xhat = (zf - mu) / sigma
            sigma = sigma.expand(n, ch, 1)
            inv = 1 / sigma
        elif b.kind == "bn":
            norm = b.norm_module
            sd = (norm.running_var + norm.eps).sqrt()[:, None]
            xhat = (zf - norm.running_mean[:, None]) / sd
            inv = (1 / sd).expand(n, ch, 1)
        else:
            xhat, inv = zf, torch.ones(n, ch, 1, dtype=z.dtype, device=z.device)
        gamma, beta = (
            (_param(b.norm_m, "weight"), _param(b.norm_m, "bias")) if b.norm_m else (None,) * 2
        )
        a = xhat * gamma[:, None] if gamma is not None else xhat
        a = (a + beta[:, None] if beta is not None else a).view_as(z)
        r = F.relu(a)
        out, idx = _pool(b, r)
        cols = F.unfold(h.detach(), c.kernel_size, c.dilation, c.padding, c.stride)
        cols = torch.cat([cols, torch.ones_like(cols[:, :1])], 1)
        scale = (inv * (gamma[:, None] if gamma is not None else 1)).detach()
        xhat = xhat.detach()
        mask = (a.detach() > 0).flatten(2).to(xhat.dtype)
        ms = mask * scale
        hw = tuple(z.shape[2:])
        maps = {
            k: pool_map(b, idx, hw, v)
            for k, v in {"ms": ms, "msx": ms * xhat, "m": mask, "mx": mask * xhat}.items()
        }
        sig = None if sigma is None else sigma.detach()[..., 0]
        levels.append(Level(cols, h, z, xhat, scale, sig, a, idx, ms, maps))
        pooled.append(out)
        h = out
    logits = F.linear(h.flatten(1), _param(chain.fc_m, "weight"), _param(chain.fc_m, "bias"))
    return levels, logits, pooled


def _pool(b: Block, r: Tensor) -> tuple[Tensor, Tensor | None]:
    """The block's pooling of its ReLU output `r`, with the max-pool argmax (flattened over
    positions) where it max-pools."""
    if isinstance(b.pool, nn.MaxPool2d):
        p = b.pool
        out, idx = F.max_pool2d(
            r, p.kernel_size, p.stride, p.padding, p.dilation, p.ceil_mode, return_indices=True
        )
        return out, idx.flatten(2)
    return (b.pool(r) if b.pool is not None else r), None


def loss_sum(loss: str, logits: Tensor, y: Tensor) -> Tensor:
    if loss == "cross_entropy":
        return F.cross_entropy(logits, y, reduction="sum")
    target = F.one_hot(y, logits.shape[-1]).to(logits.dtype)
    return F.mse_loss(logits, target, reduction="none").mean(1).sum()


def factor(loss: str, logits: Tensor) -> Tensor:
    """K × n × K columns u_k with Σ_k u_k u_kᵀ = ∇²_logits ℓ_n."""
    n, k = logits.shape
    if loss == "mse":
        eye = torch.eye(k, dtype=logits.dtype, device=logits.device) * math.sqrt(2.0 / k)
        return eye[:, None, :].expand(k, n, k)
    p = torch.softmax(logits.detach().double(), -1)
    eye = torch.eye(k, dtype=torch.float64, device=logits.device)
    return (p.sqrt().T[:, :, None] * (eye[:, None, :] - p[None])).to(logits.dtype)


def backward_columns(logits: Tensor, inputs: list[Tensor], factor: Tensor) -> list[Tensor]:
    """∂(u_kᵀ logits)/∂input for every column k, as n × C × S × K."""
    try:
        grads = torch.autograd.grad(
            logits, inputs, factor, retain_graph=True, is_grads_batched=True
        )
    except RuntimeError:
        cols = [torch.autograd.grad(logits, inputs, f, retain_graph=True) for f in factor]
        grads = tuple(torch.stack([c[i] for c in cols]) for i in range(len(inputs)))
    return [g.detach().flatten(3).permute(1, 2, 3, 0) for g in grads]


def shifts(conv: nn.Conv2d, in_hw: tuple[int, int], dtype, device) -> Tensor:
    """E: k² × S × S' with E[k] the 0/1 map from an input channel to the conv's k-th tap."""
    hw = in_hw[0] * in_hw[1]
    index = torch.arange(1, hw + 1, dtype=torch.float64, device=device).view(1, 1, *in_hw)
    taps = F.unfold(index, conv.kernel_size, conv.dilation, conv.padding, conv.stride)[0]
    taps = taps.long()  # k² × S, 0 = padding
    e = torch.zeros(taps.shape[0], taps.shape[1], hw + 1, dtype=dtype, device=device)
    e.scatter_(2, taps[..., None], 1.0)
    return e[..., 1:]


def r_quad(lv: Level, q: Tensor, cols: Tensor) -> Tensor:
    """tᵀ R t per sample, channel and tangent row of `cols` (n × J × S), instance norm only:
    R = (1/(Sσ²)) [−q x̂ᵀ − x̂ qᵀ − s P + (3s/S) x̂ x̂ᵀ], q centered."""
    size = cols.shape[-1]
    alpha = 1 / (size * lv.norm_sigma**2)
    s = (q * lv.xhat).sum(-1)
    xt = torch.einsum("ncs,njs->ncj", lv.xhat, cols)
    qt = torch.einsum("ncs,njs->ncj", q, cols)
    pt2 = (cols * cols).sum(-1) - cols.sum(-1) ** 2 / size
    return alpha[..., None] * (
        -2 * qt * xt - s[..., None] * pt2[:, None] + (3 * s / size)[..., None] * xt * xt
    )
