"""The last block of a train-mode BatchNorm chain for one-channel tangents, without convolving.

`hessian.structured.early` pushes each coordinate's tangent through the network. A tangent v of the
last conv's input that lives in one channel o (every coordinate of the block before the last)
would become a full tangent u = C_o v of the last conv output (C_o: the conv from input channel
o), costly to form and to push on for ~C·J·k² coordinates. Everything the diagonal needs from u
is linear or quadratic in v, with per-channel batch statistics (α_c = 1/(Mσ_c²), s_c = q_cᵀx̂_c,
M = samples × positions):

- su_c, xt_c, qt_c = ⟨1, x̂_c, q_c⟩ · C_co v: one product with the adjoint maps C_coᵀ[1, x̂_c, q_c];
- Σ_c α_c s_c |C_co v_n|² = v_nᵀ G_o v_n with G_o = Σ_kl (Σ_c α_c s_c w_cok w_col) E_kᵀE_l
  (E_k: the conv's tap shifts), one S'×S' matrix per o since the statistics are per channel;
- the norm's curvature then is Σ_c α_c (−2 qt_c xt_c + s_c su_c²/M + 3 s_c xt_c²/M) − Σ_n v_nᵀG_ov_n;
- the output tangent's projections on the loss curvature factor U (K columns per sample):
  U_knᵀ δy_n = ⟨b_kn, v_n⟩ − Σ_c su_c e_knc − Σ_c xt_c f_knc, with b the backward pass of U
  through the block without its batch statistics and e, f the statistics' share (pooled
  ms and ms⊙x̂ through the linear layer, over M).

So a coordinate costs a few small matrix products instead of a convolution over all samples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lmc_toolkit.hessian.structured.chain import Block, Level, backward_columns, pool_map, shifts


class LastBatchNorm:
    """The last block's share of the diagonal for one-channel tangents of its conv input.

    `curv` holds the block's [1, x̂, q] basis (n × C × S × 3) and its per-channel α and s (1 × C);
    `U` is the loss curvature factor (K × n × K); `w_fc` the linear layer's weight."""

    def __init__(self, b: Block, lv: Level, basis: Tensor, alpha: Tensor, s: Tensor, U: Tensor,
                 w_fc: Tensor):  # fmt: skip
        self.b, self.lv = b, lv
        self.w = b.conv_m.weight.detach()
        self.alpha, self.s = alpha[0], s[0]  # C
        self.basis = basis
        n, c = lv.xhat.shape[:2]
        self.size = n * lv.xhat.shape[-1]  # M
        hw = tuple(lv.z.shape[2:])
        # b: the backward pass of U through conv → ms ⊙ → pool → linear, per sample
        h = torch.zeros_like(lv.h_in).requires_grad_(True)
        conv = b.conv_m
        z = F.conv2d(h, self.w, None, conv.stride, conv.padding, conv.dilation)
        out = pool_map(b, lv.pool_idx, hw, z.flatten(2) * lv.ms).flatten(1) @ w_fc.T
        self.back = backward_columns(out, [h], U)[0].permute(1, 3, 0, 2)  # C' × K × n × S'
        fc = w_fc.view(w_fc.shape[0], c, -1)  # K × C × S''
        stats = [torch.einsum("ncs,kcs->nck", lv.pooled[m], fc) / self.size for m in ("ms", "msx")]
        self.e, self.f = (torch.einsum("jnk,nck->jnc", U, t) for t in stats)  # K × n × C
        e = shifts(conv, tuple(lv.h_in.shape[2:]), self.w.dtype, self.w.device)
        self.ee = torch.einsum("ksu,lsv->kluv", e, e)  # k² × k² × S' × S'
        self._o: int | None = None

    def _prepare(self, o: int) -> None:
        """The adjoint maps and G for input channel o."""
        lv, conv = self.lv, self.b.conv_m
        n, c = lv.xhat.shape[:2]
        fields = self.basis.permute(3, 0, 1, 2).reshape(3 * n, c, *lv.z.shape[2:])
        h = torch.zeros(3 * n, c, *lv.h_in.shape[2:], dtype=fields.dtype, device=fields.device)
        h.requires_grad_(True)
        depthwise = self.w[:, o : o + 1]  # C × 1 × kh × kw: output channel c from input o
        z = F.conv2d(h, depthwise, None, conv.stride, conv.padding, conv.dilation, groups=c)
        (adj,) = torch.autograd.grad(z, h, fields)  # 3n × C × H' × W': C_coᵀ field_c
        self.adj = adj.view(3, n, c, -1).permute(1, 3, 0, 2).reshape(-1, 3 * c)  # (n·S') × 3C
        w_o = self.w[:, o].flatten(1)  # C × k²
        g = torch.einsum("c,ck,cl->kl", self.alpha * self.s, w_o, w_o)
        self.g = torch.einsum("kl,kluv->uv", g, self.ee)
        self._o = o

    def apply(self, v: Tensor, o: int) -> Tensor:
        """Σ over samples of the block's curvature and the output term, per tangent: v is
        B × n × S' (input channel o)."""
        if self._o != o:
            self._prepare(o)
        bsz = v.shape[0]
        su, xt, qt = (v.reshape(bsz, -1) @ self.adj).view(bsz, 3, -1).unbind(1)  # B × C
        quad = ((v @ self.g) * v).sum((1, 2))
        m, a, s = self.size, self.alpha, self.s
        r = (a * (-2 * qt * xt + s * su * su / m + (3 / m) * s * xt * xt)).sum(-1) - quad
        proj = torch.einsum("bns,kns->bkn", v, self.back[o])
        proj = proj - torch.einsum("bc,knc->bkn", su, self.e)
        proj = proj - torch.einsum("bc,knc->bkn", xt, self.f)
        return r + proj.square().sum((1, 2))
