"""What every curvature operator over a network and its data shares: the checked inputs, the
parameter space (selection, mask, flat layout), the data in weighted chunks, and the products'
bookkeeping. `Hessian` (`lmc_toolkit.hessian.operator`), `GGN` and `EmpiricalFisher`
(`lmc_toolkit.hessian.curvature_operators`) each add their own products on top.

Vectors are 1-D tensors of length `dim` on the model's device, ordered parameter by parameter
(as `named_parameters`) and, within one, by flat index over the kept coordinates.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
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


class NetworkOperator(ABC):
    """The curvature matrix of the mean loss of `model` over `data` w.r.t. the selected, kept
    weights, as a linear operator (the subclasses say which matrix: `curvature`, `hvp`).

    Args:
        model: The network (copied: the caller's is never changed).
        data: The examples the mean loss is over (a `Stream` is read again for every product).
        loss: `"cross_entropy"`, `"mse"` or a callable `loss(out, y)` giving a batch's mean
            (`GGN` and `EmpiricalFisher` implement cross-entropy only).
        mask: Name → bool tensor (True = kept): the space is the kept coordinates, taken at the
            masked weights θ⊙m.
        bn: Which function is differentiated: `"eval"` uses BatchNorm's running statistics,
            `"batch"` the train-mode network with batch statistics (all data in one batch).
        select: Names or regular expressions: only the matching parameters (per-layer and
            per-block operators are diagonal blocks of the full one).
        batch_size: Images per chunk of a product (default: cache-sized on the CPU, all on a
            GPU).
        hvp_method: `"reuse"` keeps each chunk's graph for every product (fastest, memory grows
            with the data); `"fresh"` rebuilds it per product; `"auto"` reuses while the data
            has at most `reuse_limit` images (and is not a `Stream`).
        reuse_limit: `"auto"`'s limit (default: 1024 images on the CPU, 50,000 on a GPU).
    """

    #: Which curvature matrix the operator multiplies by (recorded in its `meta`).
    curvature: str

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
        what = f"{type(self).__name__} data"
        data = as_data(data, what)
        check_model_input(model, data, what)
        check_classes(model, data)
        check_choice("bn", bn, CURVATURE_BN)
        check_choice("hvp_method", hvp_method, HVP_METHODS)
        check_loss(loss, data.regression, what, type(self).__name__)
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
        self._space(model, check_mask(named_all, mask) or {})
        # a stream stays a stream: every pass reads its source again (`data.stream`)
        self._data = data if isinstance(data, Stream) else data.to(self.device)
        limit = reuse_limit
        if limit is None:
            limit = _REUSE_LIMIT_CPU if self.device.type == "cpu" else _REUSE_LIMIT_CUDA
        self.hvp_method = hvp_method
        if hvp_method == "auto":
            small = self.n <= limit and not isinstance(data, Stream)
            self.hvp_method = "reuse" if small else "fresh"
        self.products = 0
        self._setup()

    def _space(self, model: nn.Module, masks: Mapping[str, Tensor]) -> None:
        """The operator's own masked copy of `model` and the flat layout of its kept
        coordinates over the selected parameters."""
        self.mask = {k: m for k, m in masks.items() if k in self.names}
        self._net = copy.deepcopy(model)
        self._net.train(self.bn == "batch")
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

    # ----- layout -----
    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(dim={self.dim}, params={len(self.names)}, n={self.n}, loss={self.loss!r}, "
            f"bn={self.bn!r}, hvp={self.hvp_method!r}, batch_size={self.batch_size})"
        )

    @property
    def shape(self) -> tuple[int, int]:
        return (self.dim, self.dim)

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

    # ----- the data and the loss -----
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

    def chunk_count(self, batch_size: int | None = None) -> int:
        """How many chunks of `batch_size` images (the operator's own by default) the data has."""
        return math.ceil(self.n / (batch_size or self.batch_size))

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

    # ----- what each operator defines -----
    @abstractmethod
    def hvp(self, v: Tensor) -> Tensor:
        """The operator times `v` (length `dim`, or each row of a k × dim matrix)."""

    def __matmul__(self, v: Tensor) -> Tensor:
        return self.hvp(v)

    @abstractmethod
    def hvp_many(self, V: Tensor, block: int = 16) -> Tensor:
        """The operator times each row of the k × dim block `V`."""

    @abstractmethod
    def hvp_chunks(self, V: Tensor, batch_size: int | None = None) -> Tensor:
        """Row c: data chunk c's share of the operator (chunks of `batch_size` images in data
        order) times V[c]; the rows sum to the operator's product when every V[c] is one v."""

    @abstractmethod
    def release(self) -> None:
        """Free whatever the products keep between calls (rebuilt on the next product)."""

    @abstractmethod
    def _setup(self) -> None:
        """What an operator adds to the checked inputs (its own checks, its kept state)."""
