"""A curvature operator as a `scipy.sparse.linalg.LinearOperator`, for scipy's solvers
(`eigsh`, `cg`, ...) and for libraries built on them (curvlinops' trace and diagonal
estimators): vectors travel as numpy arrays, products run on the operator's device."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def as_linear_operator(H: Any):
    """`H` (a `Hessian`, `GGN` or `EmpiricalFisher`) as a symmetric scipy `LinearOperator` of
    shape (dim, dim) in the operator's float dtype."""
    from scipy.sparse.linalg import LinearOperator

    dtype = np.float64 if H.dtype == torch.float64 else np.float32

    def to_torch(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=H.dtype, device=H.device)

    def matvec(v: np.ndarray) -> np.ndarray:
        return H.hvp(to_torch(np.asarray(v).reshape(-1))).cpu().numpy().astype(dtype, copy=False)

    def matmat(V: np.ndarray) -> np.ndarray:
        rows = H.hvp(to_torch(np.asarray(V).T))
        return rows.T.cpu().numpy().astype(dtype, copy=False)

    return LinearOperator(
        H.shape, matvec=matvec, rmatvec=matvec, matmat=matmat, rmatmat=matmat, dtype=dtype
    )
