"""Any symmetric linear map as an operator for the toolkit's estimators.

`top_eigenvalues`, `density`, `trace` and `diagonal` take a `Hessian` (or `GGN`,
`EmpiricalFisher`), and through `as_operator` also a scipy `LinearOperator`, a curvlinops
operator (anything with a square `shape` that multiplies torch tensors with `@`), a dense
matrix (torch or numpy) or a function with its dimension (`LinearMap(f, dim=n)`). Such a map is
a plain matrix to the estimators: no data strata (the trace's `"stratified"` method), no
parameter layout (its diagonal is one vector named `"diagonal"`), no structured exact routes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from lmc_toolkit.hessian.network_operator import NetworkOperator
from lmc_toolkit.hessian.options import random_vectors

#: The name of a `LinearMap`'s single "parameter" (its diagonal's key).
FLAT = "diagonal"
#: What the estimators take: a toolkit operator or anything `as_operator` wraps (a scipy
#: `LinearOperator`, a curvlinops operator, a matrix, a function with `dim=`).
OperatorLike = Any


@runtime_checkable
class CurvatureOperator(Protocol):
    """What the estimators use of an operator (`Hessian`, `GGN`, `EmpiricalFisher` and
    `LinearMap` have it): its dimension, dtype and device, a product count, what it multiplies
    by (`curvature`), the product, seeded random probes and the parameter layout."""

    dim: int
    dtype: torch.dtype
    device: torch.device
    products: int
    curvature: str

    def hvp(self, v: Tensor) -> Tensor: ...
    def random(
        self, generator: torch.Generator, kind: str = "rademacher", k: int | None = None
    ) -> Tensor: ...
    def to_params(self, v: Tensor) -> dict[str, Tensor]: ...
    def flatten(self, tensors: Sequence[Tensor] | Mapping[str, Tensor]) -> Tensor: ...
    def kept(self) -> dict[str, Tensor]: ...
    def meta(self) -> dict[str, Any]: ...


class LinearMap:
    """A symmetric map v ↦ Av with the operator interface the estimators use (`hvp`, `random`,
    `dim`, `dtype`, `device`, `products`, `meta`). `A` is multiplied as it is: symmetry is the
    caller's promise (check it on a small case with `dense()`).

    Args:
        A: A matrix (torch, numpy or scipy sparse), a scipy `LinearOperator`, a curvlinops
            operator, an object with `matvec` or `@`, or a function v ↦ Av (with `dim`).
        dim: The dimension, where `A` does not say it (a function).
        dtype: The dtype vectors are made and multiplied in (default: `A`'s; float32 for a
            function).
        device: Where vectors are made (default: `A`'s; the CPU for a function or a scipy
            operator).
        name: The map's name in errors and records (default: `A`'s type).
    """

    curvature = "operator"

    def __init__(
        self,
        A: Any,
        dim: int | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        name: str | None = None,
    ) -> None:
        self.source = A
        self.name = name or type(A).__name__
        self._apply, shape, own_dtype, own_device = _adapter(A, dim)
        if shape[0] != shape[1] or shape[0] < 1:
            raise ValueError(f"a linear map needs a square, non-empty shape, got {shape}")
        self.dim = int(shape[0])
        self.dtype = dtype or own_dtype
        if self.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {self.dtype}")
        self.device = torch.device(device) if device is not None else own_device
        self.products = 0

    def __repr__(self) -> str:
        return f"LinearMap({self.name}, dim={self.dim}, dtype={self.dtype}, device={self.device})"

    @property
    def shape(self) -> tuple[int, int]:
        return (self.dim, self.dim)

    def meta(self) -> dict[str, Any]:
        return {"dim": self.dim, "operator": self.name, "curvature": self.curvature}

    def hvp(self, v: Tensor) -> Tensor:
        """A·v for a vector, or A·vᵢ for each row of a block (named as `Hessian.hvp`)."""
        if v.shape[-1] != self.dim or v.dim() > 2:
            raise ValueError(f"expected vectors of length {self.dim}, got shape {tuple(v.shape)}")
        rows = v.reshape(-1, self.dim).to(device=self.device, dtype=self.dtype)
        out = self._apply(rows.T).T  # maps multiply columns
        self.products += len(rows)
        return out.reshape(v.shape).to(device=self.device, dtype=self.dtype)

    matvec = hvp

    def random(self, generator: torch.Generator, kind: str = "rademacher", k: int | None = None):
        """Random vector(s), drawn on the CPU from `generator` as `Hessian.random` draws them."""
        shape = (self.dim,) if k is None else (k, self.dim)
        return random_vectors(generator, kind, shape, self.dtype, self.device)

    # The parameter layout of a plain map: one flat "parameter".
    def to_params(self, v: Tensor) -> dict[str, Tensor]:
        return {FLAT: v}

    def flatten(self, tensors: Sequence[Tensor] | Mapping[str, Tensor]) -> Tensor:
        return tensors[FLAT] if isinstance(tensors, Mapping) else torch.cat(list(tensors))

    def kept(self) -> dict[str, Tensor]:
        return {FLAT: torch.ones(self.dim, dtype=torch.bool)}

    def dense(self, max_dim: int = 20_000) -> Tensor:
        """The map as a dense matrix (dim products), for checks on small maps."""
        if self.dim > max_dim:
            raise ValueError(f"dim {self.dim} > max_dim {max_dim}: too large to materialize")
        return self.hvp(torch.eye(self.dim, device=self.device, dtype=self.dtype))


def _adapter(A: Any, dim: int | None):
    """(apply to a dim × m block of columns, shape, dtype, device) for a supported map."""
    if isinstance(A, np.ndarray):
        A = torch.from_numpy(A)
    if isinstance(A, Tensor):
        if A.dim() != 2:
            raise ValueError(f"a dense matrix must be 2-D, got shape {tuple(A.shape)}")
        dtype = A.dtype if A.dtype in (torch.float32, torch.float64) else torch.float64
        M = A.to(dtype)
        return (lambda V: M @ V.to(M.dtype)), tuple(M.shape), dtype, M.device
    if callable(A) and not hasattr(A, "shape"):
        if dim is None:
            raise ValueError("a function as a linear map needs its dimension: LinearMap(f, dim=n)")
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise ValueError(f"dim must be a positive int, got {dim!r}")
        return (lambda V: torch.stack([A(c) for c in V.T], 1)), (dim, dim), torch.float32, _cpu()
    shape = tuple(getattr(A, "shape", ()))
    if len(shape) != 2:
        raise TypeError(
            f"cannot use a {type(A).__name__} as a linear map: expected a Hessian/GGN/"
            "EmpiricalFisher, a scipy LinearOperator, an operator with a 2-D `shape` that "
            "multiplies torch tensors (curvlinops), a matrix, or LinearMap(f, dim=n)"
        )
    if _is_scipy_operator(A):
        dtype = torch.float64 if np.dtype(A.dtype) == np.float64 else torch.float32
        return _scipy_apply(A), shape, dtype, _cpu()
    dtype = getattr(A, "dtype", torch.float32)
    dtype = dtype if isinstance(dtype, torch.dtype) else torch.float32
    device = getattr(A, "device", None)
    device = device if isinstance(device, torch.device) else _cpu()
    return (lambda V: A @ V), shape, dtype, device


def _cpu() -> torch.device:
    return torch.device("cpu")


def _is_scipy_operator(A: Any) -> bool:
    from scipy.sparse import issparse
    from scipy.sparse.linalg import LinearOperator

    return isinstance(A, LinearOperator) or issparse(A)


def _scipy_apply(A: Any) -> Callable[[Tensor], Tensor]:
    def apply(V: Tensor) -> Tensor:
        out = A @ V.detach().cpu().numpy()
        return torch.as_tensor(np.asarray(out), device=V.device).reshape(V.shape)

    return apply


def as_operator(H: OperatorLike) -> NetworkOperator | LinearMap:
    """`H` itself where it is a toolkit operator (`Hessian`, `GGN`, `EmpiricalFisher`,
    `LinearMap`), else `LinearMap(H)`."""
    if isinstance(H, NetworkOperator | LinearMap):
        return H
    return LinearMap(H)
