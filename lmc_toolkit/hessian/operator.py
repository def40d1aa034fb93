"""The Hessian of a model's loss over a dataset, as a linear operator on flat vectors.

`Hessian(model, data)` never materializes the matrix: `H.hvp(v)` returns the exact product of
the Hessian of the mean loss over all of `data` (batches weighted by their size) with `v`. The
space can be restricted twice:

- `mask` (name → bool tensor, True = kept): the operator is the submatrix of the dense Hessian
  on the kept coordinates, taken at the masked weights θ⊙m (a no-op for a pruned model, whose
  pruned weights are already zero);
- `select` (names or regular expressions): only the matching parameters, so per-layer and
  per-block Hessians are diagonal blocks of the full one.

Vectors are 1-D tensors of length `H.dim` on the model's device, ordered parameter by
parameter (as `named_parameters`) and, within one, by flat index over the kept coordinates.
`bn` says which function is differentiated: `"eval"` uses BatchNorm's running statistics,
`"batch"` the train-mode network with batch statistics (which needs all data in one batch).
`data` may be a `Stream` (`lmc_toolkit.data.stream`): then every product is one pass over its
source, re-cut into chunks of `batch_size`, and no chunk's graph is kept between products.
The estimators that use this operator live beside it in `lmc_toolkit.hessian`: `spectrum`
(eigenvalues, density), `trace_estimators` and `diagonal_estimators`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from lmc_toolkit.checks import check_choice
from lmc_toolkit.data.dataset import check_batch_size
from lmc_toolkit.data.entrance import DataLike, as_data
from lmc_toolkit.data.stream import Stream
from lmc_toolkit.hessian.options import (
    CURVATURE_BN,
    CurvatureBN,
    default_batch_size,
    has_batch_norm,
    random_vectors,
    select_names,
)
from lmc_toolkit.training.loop import check_classes
from lmc_toolkit.training.losses import LossFn, LossName, check_loss, loss_function, loss_name
from lmc_toolkit.training.params import check_mask
from lmc_toolkit.training.probe import check_model_input

HvpMethod = Literal["auto", "reuse", "fresh"]
HVP_METHODS: tuple[HvpMethod, ...] = get_args(HvpMethod)


# Above this many images the graphs of all chunks are not kept between products by default.
_REUSE_LIMIT_CPU = 1024


_REUSE_LIMIT_CUDA = 50_000


class Hessian:
    """The Hessian of the mean loss of `model` over `data` w.r.t. the selected, kept weights.

    `hvp_method`: `"reuse"` keeps one differentiable gradient per chunk and reuses its graph for
    every product (fastest, memory grows with the data); `"fresh"` runs a double backward per
    chunk and product; `"auto"` reuses while the data is small enough (see `reuse_limit`).

    Why chunks: on the CPU one graph over 1000 MNIST images does not fit the caches. For
    `convnet3` (width 64) a product over one reused 1000-image graph cost 4.1× a gradient (CPU
    time), over reused 100-image graphs 2.5× (fresh double backward per chunk: 3.7×); replacing
    the native GroupNorm by elementwise ops made products slower, so the native op is kept.
    """

    def __init__(
        self,
        model: nn.Module,
        data: DataLike,
        loss: LossName | LossFn = "cross_entropy",
        *,
        mask: Mapping[str, Tensor] | None = None,
        bn: CurvatureBN = "eval",
        select: str | Sequence[str] | None = None,
        batch_size: int | None = None,
        hvp_method: HvpMethod = "auto",
        reuse_limit: int | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
        data = as_data(data, "Hessian data")
        check_model_input(model, data, "Hessian data")
        check_classes(model, data)
        check_choice("bn", bn, CURVATURE_BN)
        check_choice("hvp_method", hvp_method, HVP_METHODS)
        check_loss(loss, data.regression, "Hessian data", type(self).__name__)
        self.loss_fn = loss_function(loss)
        self.loss = loss_name(loss)
        self.bn = bn
        named_all = dict(model.named_parameters())
        if not named_all:
            raise ValueError("the model has no parameters")
        self.device = next(iter(named_all.values())).device
        self.n = len(data)
        self.batch_size = batch_size or default_batch_size(self.device, self.n)
        check_batch_size(self.batch_size)
        if bn == "batch" and has_batch_norm(model) and self.batch_size < self.n:
            raise ValueError(
                f"bn='batch' uses the statistics of the whole batch, so micro-batching "
                f"{self.n} images in batches of {self.batch_size} would change the function; "
                f"pass batch_size >= {self.n} (one batch) or use bn='eval'"
            )
        self.names = tuple(select_names(list(named_all), select))
        self.select = select
        masks = check_mask(named_all, mask) or {}
        self.mask = {k: m for k, m in masks.items() if k in self.names}

        self._net = copy.deepcopy(model)
        self._net.train(bn == "batch")
        named = dict(self._net.named_parameters())
        with torch.no_grad():
            for k, m in masks.items():
                named[k].mul_(m)
        for k, p in named.items():
            p.requires_grad_(k in self.names)
        self._params = [named[k] for k in self.names]
        self.shapes = tuple(tuple(p.shape) for p in self._params)
        self.dtype = self._params[0].dtype
        self._sizes = [p.numel() for p in self._params]
        self.total = sum(self._sizes)
        keep = [
            (self.mask[k] if k in self.mask else torch.ones_like(p, dtype=torch.bool)).reshape(-1)
            for k, p in zip(self.names, self._params, strict=True)
        ]
        flat_keep = torch.cat(keep)
        self._keep = None if bool(flat_keep.all()) else flat_keep.nonzero().flatten()
        self.dim = self.total if self._keep is None else len(self._keep)
        if self.dim == 0:
            raise ValueError("the mask keeps no coordinate of the selected parameters")
        # a stream stays a stream: every pass reads its source again (`data.stream`)
        self._data = data if isinstance(data, Stream) else data.to(self.device)
        limit = reuse_limit
        if limit is None:
            limit = _REUSE_LIMIT_CPU if self.device.type == "cpu" else _REUSE_LIMIT_CUDA
        self.hvp_method = hvp_method
        if hvp_method == "auto":
            small = self.n <= limit and not isinstance(data, Stream)
            self.hvp_method = "reuse" if small else "fresh"
        self._graphs: list[tuple[Tensor, ...]] | None = None
        self._other_graphs: tuple[int, list[tuple[Tensor, ...]]] | None = None
        self.products = 0

    # ----- layout -----
    def __repr__(self) -> str:
        return (
            f"Hessian(dim={self.dim}, params={len(self.names)}, n={self.n}, loss={self.loss!r}, "
            f"bn={self.bn!r}, hvp={self.hvp_method!r}, batch_size={self.batch_size})"
        )

    @property
    def shape(self) -> tuple[int, int]:
        return (self.dim, self.dim)

    #: Which curvature matrix this operator multiplies by (`GGN`, `EmpiricalFisher`: others).
    curvature = "hessian"

    def meta(self) -> dict[str, Any]:
        """What this operator is, for the results that use it."""
        return {
            "dim": self.dim,
            "params": list(self.names),
            "n": self.n,
            "loss": self.loss,
            "bn": self.bn,
            "select": self.select
            if self.select is None or isinstance(self.select, str)
            else list(self.select),
            "masked": bool(self.mask),
        }

    def unflatten(self, v: Tensor) -> list[Tensor]:
        """A flat vector as one tensor per selected parameter (zeros at pruned coordinates)."""
        if v.shape != (self.dim,):
            raise ValueError(f"expected a vector of length {self.dim}, got shape {tuple(v.shape)}")
        v = v.to(device=self.device, dtype=self.dtype)
        if self._keep is not None:
            v = torch.zeros(self.total, device=self.device, dtype=self.dtype).index_copy_(
                0, self._keep, v
            )
        return [t.view(s) for t, s in zip(v.split(self._sizes), self.shapes, strict=True)]

    def flatten(self, tensors: Sequence[Tensor] | Mapping[str, Tensor]) -> Tensor:
        """Per-parameter tensors (a list in `names` order or a name → tensor dict) as a flat
        vector over the kept coordinates."""
        if isinstance(tensors, Mapping):
            tensors = [tensors[k] for k in self.names]
        flat = torch.cat([t.reshape(-1) for t in tensors])
        return flat if self._keep is None else flat[self._keep]

    def to_params(self, v: Tensor) -> dict[str, Tensor]:
        """A flat vector as a name → tensor dict in the parameters' shapes."""
        return dict(zip(self.names, self.unflatten(v), strict=True))

    def kept(self) -> dict[str, Tensor]:
        """name → bool tensor of the coordinates in the operator's space."""
        return {
            k: self.mask[k]
            if k in self.mask
            else torch.ones(s, dtype=torch.bool, device=self.device)
            for k, s in zip(self.names, self.shapes, strict=True)
        }

    def random(self, generator: torch.Generator, kind: str = "rademacher", k: int | None = None):
        """Random vector(s) in this space, drawn on the CPU from `generator` (so the same seed gives
        the same probes on every device): `kind` is "rademacher" or "gaussian"."""
        shape = (self.dim,) if k is None else (k, self.dim)
        return random_vectors(generator, kind, shape, self.dtype, self.device)

    # ----- products -----
    def _chunks(self, batch_size: int | None = None):
        bs = batch_size or self.batch_size
        if isinstance(self._data, Stream):
            chunks = self._data.batches(self.device, bs)
        else:
            chunks = self._data.batches(bs, shuffle=False)
        for x, y in chunks:
            yield x, y, len(y) / self.n

    def _grad(self, x: Tensor, y: Tensor, weight: float, create_graph: bool) -> tuple[Tensor, ...]:
        loss = self.loss_fn(self._net(x), y) * weight
        return torch.autograd.grad(loss, self._params, create_graph=create_graph)

    def gradient(self) -> Tensor:
        """The gradient of the mean loss, as a flat vector."""
        total = [torch.zeros_like(p) for p in self._params]
        for x, y, w in self._chunks():
            for t, g in zip(total, self._grad(x, y, w, False), strict=True):
                t += g
        return self.flatten(total)

    def value(self) -> float:
        """The mean loss over the data."""
        with torch.no_grad():
            return float(
                sum(float(self.loss_fn(self._net(x), y)) * w for x, y, w in self._chunks())
            )

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

    __matmul__ = hvp

    def hvp_many(self, V: Tensor, block: int = 16) -> Tensor:
        """H·v for every row of the k × dim block V, `block` rows at a time in one batched
        forward-over-reverse pass per chunk (`torch.func.vmap` over `jvp` of `grad`).

        Measured on convnet3 (250 MNIST images): on an H200, 16 rows at once cost 3.6 ms per
        product against 6.5 ms for `hvp` (64 rows: 3.3 ms); on the CPU (one thread) batching
        was 2.3-3.6× slower per product than `hvp`, so the estimators batch on CUDA only.
        Results equal `hvp`'s to float precision on the CPU; on CUDA they differed by 4e-4
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
    def chunk_count(self, batch_size: int | None = None) -> int:
        """How many chunks of `batch_size` images (the operator's own by default) the data has."""
        return math.ceil(self.n / (batch_size or self.batch_size))

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

    def as_linear_operator(self):
        """This operator as a `scipy.sparse.linalg.LinearOperator` (`eigsh`, curvlinops'
        estimators); see `lmc_toolkit.hessian.linear_operator`."""
        from lmc_toolkit.hessian.linear_operator import as_linear_operator

        return as_linear_operator(self)

    def dense(self, max_dim: int = 20_000) -> Tensor:
        """The whole dim×dim matrix, one product per column (for small models and tests)."""
        if self.dim > max_dim:
            raise ValueError(f"the operator has dimension {self.dim} > max_dim={max_dim}")
        eye = torch.eye(self.dim, device=self.device, dtype=self.dtype)
        return torch.stack([self.hvp(e) for e in eye], dim=1)

    def network(self) -> nn.Module:
        """The operator's own copy of the network (masked, in the mode `bn` asks for)."""
        return self._net

    def parameters(self) -> list[Tensor]:
        """The operator's selected parameter tensors (leaves of its own network copy)."""
        return list(self._params)

    def chunks(self, batch_size: int | None = None):
        """(x, y, weight) batches over the data; the weights (batch size / n) sum to 1."""
        return self._chunks(batch_size)
