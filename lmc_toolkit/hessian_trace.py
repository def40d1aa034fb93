"""The trace of a `Hessian` operator: Hutchinson's estimator and Hutch++, with standard errors.

Hutch++ (Meyer, Musco, Musco and Woodruff, 2021) takes the trace of H exactly on a sketched
subspace that holds the large eigenvalues and Hutchinson's estimate on the rest, which removes
most of the variance when a few eigenvalues dominate, as they do for trained networks. Probes
are Rademacher vectors from a `torch.Generator` seeded by `seed`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from lmc_toolkit.hessian import Hessian, check_operator

TRACE_METHODS = ("hutchinson", "hutch++")


@dataclass(frozen=True)
class Estimate:
    """A stochastic estimate: its mean, standard error and the per-probe samples it came from
    (for Hutch++, `exact_part` is the sketched trace added to the samples' mean)."""

    mean: float
    stderr: float
    samples: Tensor
    probes: int
    products: int
    method: str
    seed: int
    seconds: float
    exact_part: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "stderr": self.stderr,
            "samples": self.samples.tolist(),
            "probes": self.probes,
            "products": self.products,
            "method": self.method,
            "seed": self.seed,
            "seconds": self.seconds,
            "exact_part": self.exact_part,
            "meta": dict(self.meta),
        }


def trace(
    H: Hessian,
    probes: int = 100,
    method: str = "hutch++",
    seed: int = 0,
    progress: bool = True,
) -> Estimate:
    """tr(H) from `probes` Hessian-vector products (Rademacher probes), with its standard error.

    Hutch++ spends a third of the products on a sketch S, takes the trace of H on
    Q = orth(HS) exactly (a third) and Hutchinson on the complement (the rest), which removes
    the variance of the large eigenvalues.
    """
    check_operator(H)
    if not isinstance(probes, int) or isinstance(probes, bool) or probes <= 0:
        raise ValueError(f"probes must be a positive int, got {probes!r}")
    if method not in TRACE_METHODS:
        raise ValueError(f"method must be one of {TRACE_METHODS}, got {method!r}")
    if method == "hutch++" and probes < 3:
        raise ValueError(f"hutch++ needs probes ≥ 3 (a sketch, its products, probes), got {probes}")
    generator = torch.Generator().manual_seed(int(seed))
    start, before = time.perf_counter(), H.products
    bar = tqdm(total=probes, desc="trace", disable=not progress, leave=False)
    exact = 0.0
    Q = None
    rest = probes
    if method == "hutch++":
        s = min(probes // 3, H.dim)
        sketch = H.random(generator, "rademacher", s)
        HS = []
        for z in sketch:
            HS.append(H.hvp(z))
            bar.update(1)
        Q = torch.linalg.qr(torch.stack(HS).T.double()).Q.to(H.dtype).T  # s × dim
        for q in Q:
            exact += float(q.double() @ H.hvp(q).double())
            bar.update(1)
        rest = probes - 2 * s
    samples = []
    for _ in range(rest):
        z = H.random(generator, "rademacher")
        if Q is not None:
            z = z - Q.T @ (Q @ z)
        samples.append(float(z.double() @ H.hvp(z).double()))
        bar.update(1)
    bar.close()
    values = torch.tensor(samples, dtype=torch.float64)
    mean = exact + (float(values.mean()) if len(values) else 0.0)
    stderr = float(values.std() / math.sqrt(len(values))) if len(values) > 1 else math.nan
    return Estimate(
        mean=mean,
        stderr=stderr,
        samples=values,
        probes=probes,
        products=H.products - before,
        method=method,
        seed=int(seed),
        seconds=time.perf_counter() - start,
        exact_part=exact,
        meta=H.meta(),
    )
