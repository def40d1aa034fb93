"""What a curvature operator differentiates: the selected parameters, the BatchNorm mode, and
the chunk size over the data (the loss is `training.losses`'s).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal, get_args

import torch
from torch import nn

#: the curvature operators' BatchNorm modes (`bn=` of `Hessian`): the running statistics, or
#: the statistics of the batch (not the landscape's policies, `training.batchnorm.BN_POLICIES`)
CurvatureBN = Literal["eval", "batch"]
CURVATURE_BN: tuple[CurvatureBN, ...] = get_args(CurvatureBN)


def default_batch_size(device: torch.device, n: int) -> int:
    """Cache-sized chunks on the CPU (measured faster than one big batch), everything on a GPU."""
    return min(n, 100) if device.type == "cpu" else min(n, 4096)


def select_names(names: Sequence[str], select: str | Sequence[str] | None) -> list[str]:
    """The names matching `select`: each entry is an exact name or a regular expression that
    must match the whole name (e.g. ``"0\\..*"`` for the first block). None selects all."""
    if select is None:
        return list(names)
    patterns = [select] if isinstance(select, str) else list(select)
    if not patterns or not all(isinstance(p, str) for p in patterns):
        raise TypeError(f"select takes a name, a regex or a list of them, got {select!r}")
    compiled = []
    for p in patterns:
        try:
            compiled.append(re.compile(p))
        except re.error as exc:
            raise ValueError(
                f"select pattern {p!r} is not a valid regular expression: {exc}"
            ) from exc
    chosen = [
        n
        for n in names
        if any(n == p or c.fullmatch(n) for p, c in zip(patterns, compiled, strict=True))
    ]
    if not chosen:
        shown = ", ".join(list(names)[:8])
        raise ValueError(f"select={select!r} matches no parameter; the model has {shown}, ...")
    return chosen


def has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def random_vectors(
    generator: torch.Generator,
    kind: str,
    shape: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """Rademacher or Gaussian vectors of `shape`, drawn on the CPU from `generator` (so one seed
    gives the same probes on every device), then moved to `device` in `dtype`."""
    if kind == "rademacher":
        out = torch.randint(0, 2, shape, generator=generator, dtype=torch.int8) * 2 - 1
    elif kind == "gaussian":
        out = torch.randn(shape, generator=generator, dtype=torch.float64)
    else:
        raise ValueError(f"kind must be 'rademacher' or 'gaussian', got {kind!r}")
    return out.to(device=device, dtype=dtype)
