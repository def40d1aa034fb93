"""The generalized Gauss-Newton and the empirical Fisher: the Hessian's two usual stand-ins,
as operators with the Hessian's constructor (masks, selection, BatchNorm policy: their shared
base `NetworkOperator`) and products.

Both are J^T·M·J over the data, with J the Jacobian of some outputs w.r.t. the kept weights:

- `GGN`: the outputs are the logits z and M is the Hessian of the loss in z, averaged over the
  data. For the cross-entropy, per image, M = (diag(p) − p·pᵀ) / n with p = softmax(z): positive
  semi-definite, so the GGN is too (the Hessian's part that ignores the network's own curvature).
- `EmpiricalFisher`: the outputs are the per-image losses ℓ_i and M = I / n, so
  F·v = (1/n) Σ_i g_i (g_iᵀ v) with g_i the gradient of image i's loss.

A product reuses each chunk's forward graph for Jᵀ·(M·J·v) and takes J·v by forward mode
(`torch.func.jvp`) or, where forward mode measured slow (networks with GroupNorm, LayerNorm or
instance norm), by the double-vjp trick through a kept Jᵀu graph (the measured products are in
`benchmarks/README.md`, "Design measurements"); no per-image gradients are held. Every estimator of
`lmc_toolkit.hessian` takes these operators as it takes a `Hessian`. The diagonal's exact route
for the GGN is the per-class one of `ggn_diagonal`; for the empirical Fisher it is the one-hot
route.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, jvp

from lmc_toolkit.data.dataset import check_batch_size
from lmc_toolkit.hessian.network_operator import NetworkOperator
from lmc_toolkit.hessian.options import has_batch_norm

#: The losses whose GGN and empirical Fisher are implemented (the study's).
CURVATURE_LOSSES = ("cross_entropy",)

#: One chunk's kept graph: the outputs, M's input, the chunk's images and labels, and for the
#: double-vjp route the dummy cotangent u and Jᵀu (linear in u); None for forward mode.
Graph: TypeAlias = tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None, tuple[Tensor, ...] | None]
#: Layers whose forward-mode derivatives measured slow (see the module docstring).
_SLOW_FORWARD_MODE = (nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


def jv_route(net: nn.Module, bn: str) -> str:
    """How J·v is taken for `net`: "jvp" (forward mode), or "double-vjp" where forward mode
    measured slow or where a functional pass would update train-mode BatchNorm statistics."""
    if bn == "batch" and has_batch_norm(net):
        return "double-vjp"
    slow = any(isinstance(m, _SLOW_FORWARD_MODE) for m in net.modules())
    return "double-vjp" if slow else "jvp"


class _OuterProductOperator(NetworkOperator):
    """J^T·M·J, summed over the data in chunks; subclasses say what J differentiates (`_outputs`)
    and what M does (`_middle`)."""

    curvature = "outer product"

    def _setup(self) -> None:
        if self.loss not in CURVATURE_LOSSES:
            raise ValueError(
                f"{type(self).__name__} needs loss in {CURVATURE_LOSSES}, got {self.loss!r}"
            )
        self._kept_graphs: list[tuple[Graph, float]] | None = None  # (graph, weight) per chunk
        self.jv_route = jv_route(self.network(), self.bn)

    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "curvature": self.curvature}

    # what the subclasses define
    def _outputs(self, x: Tensor, y: Tensor, params: tuple[Tensor, ...] | None = None) -> Tensor:
        """The differentiated outputs of a chunk (through `params` in place of the selected
        parameters where given: the functional pass forward mode differentiates)."""
        raise NotImplementedError

    def _aux(self, out: Tensor, y: Tensor) -> Tensor:
        """What M needs of a chunk's outputs."""
        raise NotImplementedError

    def _middle(self, jv: Tensor, aux: Tensor, weight: float, count: int) -> Tensor:
        """M·(J·v) for one chunk of `count` images that is `weight` of the data."""
        raise NotImplementedError

    def _logits(self, x: Tensor, params: tuple[Tensor, ...] | None) -> Tensor:
        if params is None:
            return self._net(x)
        return functional_call(self._net, dict(zip(self.names, params, strict=True)), (x,))

    # the products
    def _graph(self, x: Tensor, y: Tensor) -> Graph:
        out = self._outputs(x, y)
        aux = self._aux(out, y)
        if self.jv_route == "jvp":
            return (out, aux, x, y, None, None)
        u = torch.zeros_like(out, requires_grad=True)
        jtu = torch.autograd.grad(
            out, self._params, grad_outputs=u, create_graph=True, allow_unused=True
        )
        jtu = tuple(
            torch.zeros_like(p) if g is None else g for g, p in zip(jtu, self._params, strict=True)
        )
        return (out, aux, x, y, u, jtu)

    def _jv(self, graph: Graph, parts) -> Tensor:
        _, _, x, y, u, jtu = graph
        if u is None or jtu is None:  # forward mode, through a functional pass
            primals = tuple(p.detach() for p in self._params)
            _, jv = jvp(lambda *ps: self._outputs(x, y, ps), primals, tuple(parts))
            return jv.detach()
        pairs = [(g, p) for g, p in zip(jtu, parts, strict=True) if g.requires_grad]
        (jv,) = torch.autograd.grad(
            [g for g, _ in pairs], u, grad_outputs=[p for _, p in pairs], retain_graph=True
        )
        return jv.detach()

    def _chunk_product(self, graph: Graph, parts, weight: float) -> list[Tensor]:
        out, aux = graph[0], graph[1]
        m = self._middle(self._jv(graph, parts), aux, weight, out.shape[0])
        res = torch.autograd.grad(
            out, self._params, grad_outputs=m, retain_graph=True, allow_unused=True
        )
        return [
            torch.zeros_like(p) if r is None else r.detach()
            for r, p in zip(res, self._params, strict=True)
        ]

    def _graphs_for(self, batch_size: int):
        if self.hvp_method == "reuse" and batch_size == self.batch_size:
            if self._kept_graphs is None:
                self._kept_graphs = [(self._graph(x, y), w) for x, y, w in self._chunks()]
            yield from self._kept_graphs
        else:
            for x, y, w in self._chunks(batch_size):
                yield self._graph(x, y), w

    def hvp(self, v: Tensor) -> Tensor:
        """The operator times `v` (length `dim`, or each row of a k × dim matrix)."""
        if v.dim() == 2:
            return torch.stack([self.hvp(row) for row in v])
        parts = self.unflatten(v)
        total = [torch.zeros_like(p) for p in self._params]
        for graph, w in self._graphs_for(self.batch_size):
            for t, h in zip(total, self._chunk_product(graph, parts, w), strict=True):
                t += h
        self.products += 1
        return self.flatten(total)

    def hvp_many(self, V: Tensor, block: int = 16) -> Tensor:
        """Each row of V times the operator (one product per row)."""
        if V.dim() != 2 or V.shape[1] != self.dim:
            raise ValueError(f"expected a k × {self.dim} block of vectors, got {tuple(V.shape)}")
        return self.hvp(V)

    def hvp_chunks(self, V: Tensor, batch_size: int | None = None) -> Tensor:
        """Row c: chunk c's share of the operator times V[c] (see `Hessian.hvp_chunks`)."""
        bs = self.batch_size if batch_size is None else batch_size
        check_batch_size(bs)
        count = self.chunk_count(bs)
        if V.shape != (count, self.dim):
            raise ValueError(
                f"expected {count} vectors (one per chunk of {bs} images) of length {self.dim}, "
                f"got shape {tuple(V.shape)}"
            )
        rows = [
            self.flatten(self._chunk_product(graph, self.unflatten(v), w))
            for (graph, w), v in zip(self._graphs_for(bs), V, strict=True)
        ]
        self.products += 1
        return torch.stack(rows)

    def release(self) -> None:
        """Free the kept graphs (rebuilt on the next product)."""
        self._kept_graphs = None


class GGN(_OuterProductOperator):
    """The generalized Gauss-Newton matrix Jᵀ·H_loss·J of the mean cross-entropy over `data`
    (J: the logits' Jacobian), with `Hessian`'s constructor and products."""

    curvature = "ggn"

    def _outputs(self, x: Tensor, y: Tensor, params: tuple[Tensor, ...] | None = None) -> Tensor:
        return self._logits(x, params)

    def _aux(self, out: Tensor, y: Tensor) -> Tensor:
        return torch.softmax(out.detach().double(), -1)

    def _middle(self, jv: Tensor, aux: Tensor, weight: float, count: int) -> Tensor:
        p, jv64 = aux, jv.double()
        hz = p * jv64 - p * (p * jv64).sum(-1, keepdim=True)
        return (hz * (weight / count)).to(jv.dtype)


class EmpiricalFisher(_OuterProductOperator):
    """The empirical Fisher (1/n) Σ_i g_i g_iᵀ of the cross-entropy over `data` (g_i: image
    i's loss gradient at its true label), with `Hessian`'s constructor and products."""

    curvature = "empirical_fisher"

    def _outputs(self, x: Tensor, y: Tensor, params: tuple[Tensor, ...] | None = None) -> Tensor:
        return F.cross_entropy(self._logits(x, params), y, reduction="none")

    def _aux(self, out: Tensor, y: Tensor) -> Tensor:
        return y

    def _middle(self, jv: Tensor, aux: Tensor, weight: float, count: int) -> Tensor:
        return jv * (weight / count)
