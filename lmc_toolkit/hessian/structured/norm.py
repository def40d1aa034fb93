"""The exact Hessian diagonal of instance-norm ConvNets (`convnet3`) in closed form.

The network must be a chain [Conv2d → norm → ReLU → pool]×D → Flatten → Linear (norm: instance
norm `GroupNorm(C, C)`, BatchNorm2d in eval mode or, under `bn="batch"`, in train mode, or none;
pool: AvgPool2d, MaxPool2d or none) with cross-entropy or MSE. Per sample, a parameter θ that a
module output v depends on linearly has
d²ℓ/dθ² = tᵀ[∇²_v ℓ]t with t = ∂v/∂θ, and a conv weight's tangent lives in one output channel,
so only the channel-diagonal blocks of the Hessian w.r.t. conv outputs are needed. ReLU
(a.e.), pooling, conv and linear layers have no curvature, so with U Uᵀ the output curvature:

- at the last conv output z_D: [∇²_z]_cc = V_c V_cᵀ + R_c, V = the backward pass of U (K columns)
  and R_c the instance norm's own curvature. For one channel u with x̂ = P u/σ (P centers,
  σ² = |Pu|²/S + eps), q = ∂ℓ/∂x̂ centered, s = qᵀx̂:
  R = (1/(Sσ²)) [−q x̂ᵀ − x̂ qᵀ − s P + (3s/S) x̂ x̂ᵀ];
- at the input of the last conv h: [∇²_h]_cc = V_c V_cᵀ + Σ_o C_ocᵀ R_o C_oc, with C_oc the conv
  from input channel c to output channel o; R's P term gives Σ_kk' G_kk' E_kᵀ P E_k' over the
  kernel's shift matrices E_k, the rest is rank two per o. Tangents of the previous block are
  pushed through its norm, ReLU mask and pool into h (plus their own R term).

So the last two blocks and the linear layer cost batched small matmuls per sample. Earlier
blocks, whose Hessian blocks would be dense, get their (few) coordinates from forward tangents
(`hessian.structured.early`: one linearized forward pass per coordinate, no products); a conv bias
right before instance norm has exactly zero curvature.

Train-mode BatchNorm (`Hessian(..., bn="batch")`) normalizes over samples too, so the per-sample
closed forms do not hold: there every conv block goes by forward tangents over the whole batch
(R over samples and positions), the linear layer stays closed form, and a conv bias right before
the norm is zero again.

Masks: the operator's network is already masked, so the kept entries of this diagonal are the
diagonal of the kept submatrix.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from lmc_toolkit.hessian.operator import Hessian
from lmc_toolkit.hessian.structured.chain import (
    Block,
    Chain,
    Level,
    backward_columns,
    centered_q,
    coupled,
    factor,
    forward,
    loss_sum,
    parse_chain,
    push,
    r_quad,
    shifts,
)
from lmc_toolkit.hessian.structured.early import early_diagonal

_BUDGET = 256 * 2**20  # bytes of the largest per-chunk tensor (×16 on a GPU)


class _Closed:
    """Per-chunk closed forms for the last two blocks and the linear layer."""

    def __init__(self, chain: Chain, H: Hessian, wanted: set[str]):
        self.chain, self.H, self.wanted = chain, H, wanted
        self.total: dict[str, Tensor] = {}
        self._taps: tuple[Tensor, Tensor] | None = None

    def add(self, name: str, value: Tensor) -> None:
        if name in self.wanted:
            self.total[name] = self.total.get(name, 0) + value.detach()

    def want(self, module: str | None) -> bool:
        """Whether any selected parameter belongs to `module` (a module name, or None)."""
        return module is not None and any(w.startswith(module + ".") for w in self.wanted)

    def chunk(self, x: Tensor, y: Tensor) -> None:
        ch, H = self.chain, self.H
        levels, logits, pooled = forward(ch, x)
        last = len(ch.blocks) - 1
        bl, lv = ch.blocks[last], levels[last]
        if self.want(ch.fc):
            hin = pooled[-1].detach().flatten(1)
            p = torch.softmax(logits.detach(), -1)
            curv = p * (1 - p) if H.loss == "cross_entropy" else torch.full_like(p, 2 / p.shape[1])
            self.add(f"{ch.fc}.weight", curv.T @ (hin * hin))
            self.add(f"{ch.fc}.bias", curv.sum(0))
        before = ch.blocks[last - 1] if last >= 1 else None
        prev = last - 1 if before and (self.want(before.conv) or self.want(before.norm)) else None
        if not (self.want(bl.conv) or self.want(bl.norm) or prev is not None):
            return
        taps = [lv.a, lv.z] + ([lv.h_in] if prev is not None else [])
        cols_v = backward_columns(logits, taps, factor(H.loss, logits))
        ga = torch.autograd.grad(
            loss_sum(H.loss, logits, y), [lv.a] + ([levels[prev].a] if prev is not None else [])
        )
        q = centered_q(bl, ga[0])
        self._last(bl, lv, cols_v[0], cols_v[1], q)
        if prev is not None:
            qp = centered_q(ch.blocks[prev], ga[1])
            self._previous(ch.blocks[prev], levels[prev], bl, lv, cols_v[2], q, qp)

    def _affine(self, b: Block, tw: Tensor, tb: Tensor) -> None:
        if b.norm_m is not None and b.norm_m.weight is not None:
            self.add(f"{b.norm}.weight", tw.sum(0))
            self.add(f"{b.norm}.bias", tb.sum(0))

    def _conv(self, b: Block, quad: Tensor) -> None:
        """quad: n × C × (J+1) per-sample second derivatives of the conv's weights and bias."""
        total = quad.sum(0)
        self.add(f"{b.conv}.weight", total[:, :-1].reshape(b.conv_m.weight.shape))
        if b.conv_m.bias is not None:
            self.add(f"{b.conv}.bias", total[:, -1])

    def _last(self, b: Block, lv: Level, va: Tensor, vz: Tensor, q: Tensor | None) -> None:
        self._affine(
            b,
            (torch.einsum("ncs,ncsk->nck", lv.xhat, va) ** 2).sum(-1),
            (va.sum(2) ** 2).sum(-1),
        )
        if self.want(b.conv):
            quad = (torch.einsum("njs,ncsk->ncjk", lv.cols, vz) ** 2).sum(-1)
            if q is not None:
                quad = quad + r_quad(lv, q, lv.cols)
            self._conv(b, quad)

    def _hess_h(self, b: Block, lv: Level, vh: Tensor, q: Tensor | None) -> Tensor:
        """[∇²_h ℓ]_cc at the input h of the last conv: n × C' × S' × S'."""
        x = vh @ vh.transpose(-1, -2)
        if q is None:
            return x
        conv = b.conv_m
        if self._taps is None:
            e = shifts(conv, tuple(lv.h_in.shape[2:]), x.dtype, x.device)
            ones = e.sum(1)  # k² × S' : E_kᵀ 1
            tp = (
                torch.einsum("ksu,lsv->kluv", e, e)
                - ones[:, None, :, None] * ones[None, :, None, :] / e.shape[1]
            )
            self._taps = (e, tp)
        e, tp = self._taps
        size = lv.xhat.shape[-1]
        alpha = 1 / (size * lv.norm_sigma**2)
        s = (q * lv.xhat).sum(-1)
        w = conv.weight.detach().flatten(2)  # O × C' × k²
        xi = torch.einsum("noku,ock->nocu", torch.einsum("ksu,nos->noku", e, lv.xhat), w)
        eta = torch.einsum("noku,ock->nocu", torch.einsum("ksu,nos->noku", e, q), w)
        rho = (1.5 * s / size)[..., None, None] * xi - eta
        half = torch.einsum("nocu,nocv->ncuv", alpha[..., None, None] * xi, rho)
        g = torch.einsum("no,ockl->nckl", alpha * s, w[..., :, None] * w[..., None, :])
        return x + half + half.transpose(-1, -2) - torch.einsum("nckl,kluv->ncuv", g, tp)

    def _previous(
        self,
        b: Block,
        lv: Level,
        bl: Block,
        lvl: Level,
        vh: Tensor,
        q: Tensor | None,
        qp: Tensor | None,
    ) -> None:
        """The block before the last: its tangents pushed into h, the last conv's input."""
        xh = self._hess_h(bl, lvl, vh, q)
        if self.want(b.norm):
            tw = lv.pooled["mx"][:, :, None]  # γ: the tangent x̂ of a, masked and pooled
            tb = lv.pooled["m"][:, :, None]  # β: ones
            self._affine(b, ((tw @ xh) * tw).sum((-1, -2)), ((tb @ xh) * tb).sum((-1, -2)))
        if not self.want(b.conv):
            return
        cols = lv.cols[:, None]  # n × 1 × (J+1) × S, the same for every channel
        xt = torch.einsum("ncs,njs->ncj", lv.xhat, lv.cols) if b.kind == "in" else None
        u = push(b, lv, cols, cols.sum(-1), xt, at=lambda v: v[:, :, None])
        quad = ((u @ xh) * u).sum(-1)
        if qp is not None:
            quad = quad + r_quad(lv, qp, lv.cols)
        self._conv(b, quad)


def _chunk_size(chain: Chain, H: Hessian, x: Tensor) -> int:
    """Samples per chunk so that the largest per-sample tensor stays within the budget."""
    with torch.no_grad():
        levels, _, _ = forward(chain, x[:1])
    biggest = 0
    for lv in levels[-2:]:
        c, j, s = lv.xhat.shape[1], lv.cols.shape[1], lv.cols.shape[2]
        s_in = lv.h_in[0, 0].numel()
        biggest = max(biggest, c * j * s, lv.h_in.shape[1] * s_in * s_in, 81 * s_in * s_in)
    budget = _BUDGET * (1 if x.device.type == "cpu" else 16)
    return max(1, min(H.n, budget // (4 * biggest * x.element_size())))


@dataclass(frozen=True)
class StructuredResult:
    values: dict[str, Tensor]  # every selected parameter, NaN where a `limit` prefix stops
    closed_seconds: float
    early_seconds: float
    early_coordinates: int
    early_done: int
    chunk: int


def structured_diagonal(
    H: Hessian, progress: bool = True, limit: int | None = None, chunk: int | None = None
) -> StructuredResult:
    """The exact diagonal of `H` by the structured route (see the module docstring). `limit`:
    only the first `limit` early-block coordinates (the rest NaN), to time a prefix; `chunk`:
    samples per closed-form step (default: sized to a memory budget). On a GPU, convolutions
    run without TF32 (their ~1e-3 rounding would show in the diagonal)."""
    if H.device.type != "cuda":
        return _structured(H, progress, limit, chunk)
    cudnn = torch.backends.cudnn
    before = cudnn.allow_tf32
    cudnn.allow_tf32 = False
    try:
        return _structured(H, progress, limit, chunk)
    finally:
        cudnn.allow_tf32 = before


def _structured(
    H: Hessian, progress: bool, limit: int | None, chunk: int | None
) -> StructuredResult:
    chain = parse_chain(H)
    names = set(H.names)
    closed = {f"{chain.fc}.weight", f"{chain.fc}.bias"}
    together = coupled(chain)  # train-mode BatchNorm: all blocks by tangents, all data at once
    for b in [] if together else chain.blocks[-2:]:
        closed |= {f"{b.conv}.weight", f"{b.conv}.bias", f"{b.norm}.weight", f"{b.norm}.bias"}
    zero = {f"{b.conv}.bias" for b in chain.blocks if b.kind == "bt"}
    zero |= {f"{b.conv}.bias" for b in chain.blocks[:-2] if b.kind == "in"}
    early = [k for k in H.names if k not in closed and k not in zero]
    start = time.perf_counter()
    worker = _Closed(chain, H, names & closed)
    if together:
        chunk = H.n
    if names & closed:
        chunk = chunk or _chunk_size(chain, H, next(iter(H.chunks(1)))[0])
        for x, y, _ in tqdm(
            list(H.chunks(chunk)), desc="structured diagonal", disable=not progress, leave=False
        ):
            worker.chunk(x, y)
    closed_s = time.perf_counter() - start
    values = {k: v / H.n for k, v in worker.total.items()}
    params = dict(zip(H.names, H.parameters(), strict=True))
    for k in names & zero:  # a bias right before a norm's mean does not change the function
        values[k] = torch.zeros_like(params[k])
    start = time.perf_counter()
    found, total, done = early_diagonal(H, chain, early, limit, progress)
    values.update(found)
    values = {k: values[k].detach().to(H.dtype) for k in H.names}
    return StructuredResult(values, closed_s, time.perf_counter() - start, total, done, chunk or 0)
