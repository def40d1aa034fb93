"""The Hessian of a model's loss over a dataset, as a linear operator on flat vectors.

`Hessian(model, data)` never materializes the matrix: `H.hvp(v)` returns the exact product of
the Hessian of the mean loss over all of `data` (batches weighted by their size) with `v`. The
space can be restricted twice:

- `mask` (name → bool tensor, True = kept): the operator is the submatrix of the dense Hessian
  on the kept coordinates, taken at the masked weights θ⊙m (a no-op for a pruned model, whose
  pruned weights are already zero);
- `select` (names or regular expressions): only the matching parameters, so per-layer and
  per-block Hessians are diagonal blocks of the full one.

The constructor, the layout of vectors and the data's chunks are `NetworkOperator`'s
(`lmc_toolkit.hessian.network_operator`), shared with `GGN` and `EmpiricalFisher`.
`data` may be a `Stream` (`lmc_toolkit.data.stream`): then every product is one pass over its
source, re-cut into chunks of `batch_size`, and no chunk's graph is kept between products.
The estimators that use this operator live beside it in `lmc_toolkit.hessian`: `spectrum`
(eigenvalues, density), `trace_estimators` and `diagonal_estimators`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lmc_toolkit.data.dataset import check_batch_size
from lmc_toolkit.hessian.network_operator import HVP_METHODS, HvpMethod, NetworkOperator
from lmc_toolkit.hessian.options import has_batch_norm

__all__ = ["HVP_METHODS", "Hessian", "HvpMethod"]


class Hessian(NetworkOperator):
    """The Hessian of the mean loss of `model` over `data` w.r.t. the selected, kept weights
    (the arguments are `NetworkOperator`'s).

    Products run over cache-sized chunks on the CPU, each chunk's differentiable gradient kept
    and its graph reused for every product while the data is small enough (`hvp_method`); the
    chunk sizes and the native GroupNorm kept are measured choices (`benchmarks/README.md`,
    "Design measurements").
    """

    curvature = "hessian"

    def _setup(self) -> None:
        self._graphs: list[tuple[Tensor, ...]] | None = None
        self._other_graphs: tuple[int, list[tuple[Tensor, ...]]] | None = None

    def _back(self, g: tuple[Tensor, ...], v: list[Tensor], retain: bool) -> list[Tensor]:
        pairs = [
            (gi, vi, i) for i, (gi, vi) in enumerate(zip(g, v, strict=True)) if gi.requires_grad
        ]
        out = [torch.zeros_like(p) for p in self._params]
        if not pairs:
            return out
        res = torch.autograd.grad(
            [p[0] for p in pairs],
            self._params,
            grad_outputs=[p[1] for p in pairs],
            retain_graph=retain,
            allow_unused=True,
        )
        return [o if r is None else r for o, r in zip(out, res, strict=True)]

    def hvp(self, v: Tensor) -> Tensor:
        """H·v for a flat vector `v` of length `dim` (or each row of a k×dim matrix)."""
        if v.dim() == 2:
            return torch.stack([self.hvp(row) for row in v])
        parts = self.unflatten(v)
        total = [torch.zeros_like(p) for p in self._params]
        if self.hvp_method == "reuse":
            if self._graphs is None:
                self._graphs = [self._grad(x, y, w, True) for x, y, w in self._chunks()]
            for g in self._graphs:
                for t, h in zip(total, self._back(g, parts, True), strict=True):
                    t += h
        else:
            for x, y, w in self._chunks():
                g = self._grad(x, y, w, True)
                for t, h in zip(total, self._back(g, parts, False), strict=True):
                    t += h
        self.products += 1
        return self.flatten([t.detach() for t in total])

    def hvp_many(self, V: Tensor, block: int = 16) -> Tensor:
        """H·v for every row of the k × dim block V, `block` rows at a time in one batched
        forward-over-reverse pass per chunk (`torch.func.vmap` over `jvp` of `grad`).

        Batching measured faster than `hvp` on a GPU and slower on the CPU, so the estimators
        batch on CUDA only (`benchmarks/README.md`, "Design measurements"). Results equal `hvp`'s to float precision on the CPU; on CUDA they differed by 4e-4
        (relative norm; cuDNN's TF32 convolutions round differently on the two paths). Under
        bn='batch' with BatchNorm (whose running statistics the functional pass would update)
        it loops over `hvp` instead."""
        if V.dim() != 2 or V.shape[1] != self.dim:
            raise ValueError(f"expected a k × {self.dim} block of vectors, got {tuple(V.shape)}")
        if not isinstance(block, int) or isinstance(block, bool) or block <= 0:
            raise ValueError(f"block must be a positive int, got {block!r}")
        if self.bn == "batch" and has_batch_norm(self._net):
            return torch.stack([self.hvp(v) for v in V])
        from torch.func import functional_call, grad, jvp, vmap

        primal = {k: p.detach() for k, p in zip(self.names, self._params, strict=True)}

        def loss(p: dict[str, Tensor], x: Tensor, y: Tensor, w: float) -> Tensor:
            return self.loss_fn(functional_call(self._net, p, (x,)), y) * w

        def product(tangent: dict[str, Tensor], x: Tensor, y: Tensor, w: float):
            return jvp(lambda p: grad(loss)(p, x, y, w), (primal,), (tangent,))[1]

        out = []
        for rows in V.split(block):
            parts = [self.unflatten(v) for v in rows]
            tangents = {k: torch.stack([p[i] for p in parts]) for i, k in enumerate(self.names)}
            total: dict[str, Tensor] | None = None
            for x, y, w in self._chunks():
                h = vmap(product, in_dims=(0, None, None, None))(tangents, x, y, w)
                total = h if total is None else {k: total[k] + h[k] for k in total}
            assert total is not None
            out += [self.flatten([total[k][i] for k in self.names]) for i in range(len(rows))]
        self.products += len(V)
        return torch.stack(out).detach()

    # ----- products per data chunk (stratified estimators) -----
    def hvp_chunks(self, V: Tensor, batch_size: int | None = None) -> Tensor:
        """Row c is w_c·H_c·V[c]: the Hessian of the mean loss over data chunk c (chunks of
        `batch_size` images in data order, the operator's own by default), weighted by the
        chunk's share w_c of the data, times that chunk's own vector. Σ_c w_c·H_c = H, so one
        call costs about one `hvp`; independent probes per chunk give stratified trace
        estimates (`lmc_toolkit.hessian.trace_estimators`). Graphs kept for another chunk size are freed by
        `release` or by asking for yet another size."""
        bs = self.batch_size if batch_size is None else batch_size
        check_batch_size(bs)
        if self.bn == "batch" and has_batch_norm(self._net) and bs < self.n:
            raise ValueError(
                f"bn='batch' uses the statistics of the whole batch, so chunks of {bs} of the "
                f"{self.n} images would change the function; pass batch_size >= {self.n}"
            )
        count = self.chunk_count(bs)
        if V.shape != (count, self.dim):
            raise ValueError(
                f"expected {count} vectors (one per chunk of {bs} images) of length {self.dim}, "
                f"got shape {tuple(V.shape)}"
            )
        out = []
        if self.hvp_method == "reuse":
            if bs == self.batch_size:
                if self._graphs is None:
                    self._graphs = [self._grad(x, y, w, True) for x, y, w in self._chunks()]
                graphs = self._graphs
            else:
                if self._other_graphs is None or self._other_graphs[0] != bs:
                    self._other_graphs = None  # free the old ones first
                    built = [self._grad(x, y, w, True) for x, y, w in self._chunks(bs)]
                    self._other_graphs = (bs, built)
                graphs = self._other_graphs[1]
            for g, v in zip(graphs, V, strict=True):
                out.append(self.flatten(self._back(g, self.unflatten(v), True)))
        else:
            for (x, y, w), v in zip(self._chunks(bs), V, strict=True):
                g = self._grad(x, y, w, True)
                out.append(self.flatten(self._back(g, self.unflatten(v), False)))
        self.products += 1
        return torch.stack([o.detach() for o in out])

    def release_other_chunks(self) -> None:
        """Free the graphs `hvp_chunks` kept for a chunk size other than the operator's own."""
        self._other_graphs = None

    def release(self) -> None:
        """Free the kept gradient graphs (they are rebuilt on the next product)."""
        self._graphs = None
        self._other_graphs = None
