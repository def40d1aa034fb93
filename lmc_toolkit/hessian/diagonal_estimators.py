"""The diagonal of a `Hessian` operator: exact, or estimated by Hutchinson's method.

Exact routes (`diagonal(H, "exact")` picks the fastest one that is exact for the model):

- `"ggn"` (`ggn_diagonal`): where the network is piecewise linear in each parameter (Linear, Conv, ReLU, pooling,
  eval-mode BatchNorm, flattening, with cross-entropy or MSE on top), every second derivative
  of the network output along one coordinate vanishes, so the Hessian diagonal equals the
  generalized Gauss–Newton diagonal (1/N) Σ_n Σ_c (J_nᵀ a_nc)², where a_nc are the columns of a
  factor of the output curvature (√p_c (e_c − p) for cross-entropy). It costs one backward pass
  per class over per-sample factors, plus per-sample squared weight gradients per layer.
- `"structured"` (`lmc_toolkit.hessian.structured`): chains [Conv2d → instance norm
  (`GroupNorm(C, C)`), BatchNorm or none → ReLU → avg/max pool]×D → Flatten → Linear, such
  as `convnet3`, with cross-entropy or MSE. Instance norm adds curvature the GGN misses; this
  route adds it in closed form for the last two blocks and the linear layer, and computes the
  few coordinates of earlier blocks (conv1 and its norm in `convnet3`: 704 of ~85k) by one
  linearized forward pass each (`structured.early`); it needs no Hessian-vector products.
  Train-mode BatchNorm (`bn="batch"`) couples the samples: there every conv block goes by
  forward tangents over the whole batch, still exact and without products.
- `"onehot"`: one exact Hessian-vector product per coordinate. It is the exact route for
  everything else (other normalizations, residual networks with train-mode BatchNorm, custom
  losses); it costs `dim` products.

Which route `"exact"` takes: piecewise-linear networks (MLPs, LeNet, eval-mode BN ResNets
without other norms) → `"ggn"`; `convnet3` and similar conv chains with instance norm or
BatchNorm (either mode) → `"structured"`; the rest (e.g. a ResNet under bn="batch") →
`"onehot"`. All three are exact (`exact=True`).

`"ggn"` can also be asked for explicitly on other networks: it is then the Gauss–Newton
approximation, and the result says `exact=False`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import singledispatch
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from lmc_toolkit.hessian.curvature_operators import GGN
from lmc_toolkit.hessian.ggn_diagonal import ggn_diagonal
from lmc_toolkit.hessian.linear_map import LinearMap, OperatorLike, as_operator
from lmc_toolkit.hessian.network_operator import NetworkOperator
from lmc_toolkit.hessian.operator import Hessian
from lmc_toolkit.hessian.structured import chain
from lmc_toolkit.hessian.structured import norm as structured

DiagonalMethod = Literal["exact", "ggn", "structured", "onehot", "hutchinson"]
DIAG_METHODS: tuple[DiagonalMethod, ...] = get_args(DiagonalMethod)


_PIECEWISE_LINEAR = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ReLU,
    nn.LeakyReLU,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.Flatten,
    nn.Identity,
)


@dataclass(frozen=True)
class Diagonal:
    """The Hessian diagonal as per-parameter tensors (`values`, zero at pruned coordinates),
    which coordinates are in the operator's space (`kept`), and for estimates the standard
    error per coordinate. Summaries use kept coordinates only."""

    values: dict[str, Tensor]
    kept: dict[str, Tensor]
    method: str
    route: str
    exact: bool
    seconds: float
    products: int
    stderr: dict[str, Tensor] | None = None
    probes: int | None = None
    seed: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def flat(self, name: str | None = None) -> Tensor:
        """The kept coordinates' values, of one parameter or of all (1-D, float64)."""
        names = [name] if name is not None else list(self.values)
        return torch.cat([self.values[k][self.kept[k]].double().reshape(-1) for k in names])

    def summary(self, name: str | None = None) -> dict[str, float]:
        """Statistics over the kept coordinates (of one parameter, or of all)."""
        v = self.flat(name)
        q = (
            torch.quantile(v, torch.tensor([0.05, 0.5, 0.95], dtype=torch.float64))
            if len(v) <= 16_000_000
            else torch.full((3,), math.nan)
        )
        return {
            "count": len(v),
            "sum": float(v.sum()),
            "mean": float(v.mean()),
            "std": float(v.std()) if len(v) > 1 else 0.0,
            "abs_mean": float(v.abs().mean()),
            "min": float(v.min()),
            "q05": float(q[0]),
            "median": float(q[1]),
            "q95": float(q[2]),
            "max": float(v.max()),
            "negative_fraction": float((v < 0).double().mean()),
        }

    def per_layer(self) -> dict[str, dict[str, float]]:
        return {k: self.summary(k) for k in self.values if bool(self.kept[k].any())}

    def to_dict(self) -> dict[str, Any]:
        return {
            "values": {k: v.cpu() for k, v in self.values.items()},
            "kept": {k: v.cpu() for k, v in self.kept.items()},
            "stderr": None if self.stderr is None else {k: v.cpu() for k, v in self.stderr.items()},
            "method": self.method,
            "route": self.route,
            "exact": self.exact,
            "seconds": self.seconds,
            "products": self.products,
            "probes": self.probes,
            "seed": self.seed,
            "summary": self.summary(),
            "meta": dict(self.meta),
        }

    def plot(self, kind: str = "hist", **kw: Any):
        from lmc_toolkit.plots.hessian import plot_diagonal_hist, plot_diagonal_sorted

        if kind not in ("hist", "sorted"):
            raise ValueError(f"kind must be 'hist' or 'sorted', got {kind!r}")
        return (plot_diagonal_hist if kind == "hist" else plot_diagonal_sorted)(self, **kw)


@singledispatch
def exact_route(H: Any) -> DiagonalMethod:
    """The fastest exact route to `H`'s diagonal: for any operator, one product per coordinate."""
    return "onehot"


@exact_route.register
def _hessian_route(H: Hessian) -> DiagonalMethod:
    """A network's Hessian: the GGN's per-class route where the two diagonals agree (piecewise
    linear networks), the structured route where it applies, else one product per coordinate."""
    if is_piecewise_linear(H):
        return "ggn"
    return "structured" if chain.applies(H) else "onehot"


@exact_route.register
def _ggn_route(H: GGN) -> DiagonalMethod:
    """The GGN's own diagonal is the per-class route's."""
    return "ggn"


@singledispatch
def own_routes(H: Any) -> tuple[DiagonalMethod, ...]:
    """The network routes ("ggn", "structured") that compute a diagonal of `H`'s matrix: none
    for a plain linear map or the empirical Fisher."""
    return ()


@own_routes.register
def _hessian_routes(H: Hessian) -> tuple[DiagonalMethod, ...]:
    return ("ggn", "structured")  # the GGN's diagonal approximates the Hessian's


@own_routes.register
def _ggn_routes(H: GGN) -> tuple[DiagonalMethod, ...]:
    return ("ggn",)


def is_piecewise_linear(H: NetworkOperator) -> bool:
    """Whether the GGN diagonal is the Hessian diagonal: built-in loss, and every leaf module
    piecewise linear in its input and parameters (BatchNorm only with bn="eval")."""
    if H.loss not in ("cross_entropy", "mse"):
        return False
    for m in H.network().modules():
        if next(m.children(), None) is not None:
            continue
        if isinstance(m, nn.Sequential):  # an empty Sequential is the identity (a shortcut)
            continue
        if isinstance(m, _PIECEWISE_LINEAR):
            continue
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and H.bn == "eval":
            continue
        if isinstance(m, nn.Dropout) and H.bn == "eval":
            continue
        return False
    return True


def diagonal(
    H: OperatorLike,
    method: DiagonalMethod = "exact",
    probes: int = 100,
    seed: int = 0,
    progress: bool = True,
    limit: int | None = None,
    ggn_batch: int | None = None,
) -> Diagonal:
    """The diagonal of `H` as per-parameter tensors.

    Args:
        H: A `Hessian`, `GGN`, `EmpiricalFisher` or any symmetric map `as_operator` takes.
        method: `"exact"` (the fastest exact route for `H`'s kind, see the module docstring),
            `"ggn"` (the GGN's diagonal: exact for piecewise-linear networks), `"structured"`,
            `"onehot"` (one product per coordinate) or `"hutchinson"` (the mean of z⊙Hz over
            Rademacher probes, with standard errors).
        probes: Hutchinson's probes.
        seed: Seeds Hutchinson's probes.
        progress: Show a progress bar.
        limit: Compute only the first `limit` coordinates that need products (one-hot route;
            early blocks of the structured route; the rest NaN), to time a prefix.
        ggn_batch: The GGN and structured routes' chunk of images (default: up to 512 for the
            GGN, sized to a memory budget for the structured route; both are per sample, so
            they need not match the operator's batches).

    Returns:
        A `Diagonal`: name → tensor of the diagonal (with standard errors for Hutchinson), the
        route taken and whether it is exact.
    """
    H = as_operator(H)
    if method not in DIAG_METHODS:
        raise ValueError(f"method must be one of {DIAG_METHODS}, got {method!r}")
    if method == "hutchinson" and (not isinstance(probes, int) or probes <= 0):
        raise ValueError(f"probes must be a positive int, got {probes!r}")
    if limit is not None and (not isinstance(limit, int) or limit <= 0):
        raise ValueError(f"limit must be a positive int or None, got {limit!r}")
    route = _route(H, method)
    pl = isinstance(H, NetworkOperator) and is_piecewise_linear(H)
    start, before = time.perf_counter(), H.products
    stderr, extra = None, {}
    if route == "ggn":
        flat = H.flatten(ggn_diagonal(H, progress, ggn_batch or min(H.n, 512)))
    elif route == "structured":
        res = structured.structured_diagonal(H, progress, limit, ggn_batch)
        flat = H.flatten(res.values)
        extra = {
            "closed_form_seconds": res.closed_seconds,
            "early_seconds": res.early_seconds,
            "early_coordinates": res.early_coordinates,
            "early_done": res.early_done,
            "chunk": res.chunk,
        }
    elif route == "onehot":
        flat = _onehot_diagonal(H, progress, limit)
    else:
        flat, err = _hutchinson_diagonal(H, probes, seed, progress)
        stderr = _as_params(H, err)
    return Diagonal(
        values=_as_params(H, flat),
        kept={k: v.cpu() for k, v in H.kept().items()},
        method=method,
        route=route,
        exact=route in ("onehot", "structured") or (route == "ggn" and (pl or isinstance(H, GGN))),
        seconds=time.perf_counter() - start,
        products=H.products - before,
        stderr=stderr,
        probes=probes if route == "hutchinson" else None,
        seed=int(seed) if route == "hutchinson" else None,
        meta={**H.meta(), "piecewise_linear": pl, **extra},
    )


def _route(H: NetworkOperator | LinearMap, method: DiagonalMethod) -> DiagonalMethod:
    """The route `method` takes for `H`, checked to compute `H`'s own diagonal."""
    route = exact_route(H) if method == "exact" else method
    if route in ("ggn", "structured") and route not in own_routes(H):
        what = f"a {H.name} is a plain linear map" if isinstance(H, LinearMap) else "not of this"
        raise ValueError(
            f"method {method!r} computes a diagonal of a network's Hessian or GGN, {what} "
            f"{type(H).__name__}; use 'exact' (one product per coordinate), 'onehot' or "
            "'hutchinson'"
        )
    if route == "ggn" and isinstance(H, NetworkOperator) and H.loss not in ("cross_entropy", "mse"):
        raise ValueError(f"the GGN route needs loss 'cross_entropy' or 'mse', got {H.loss!r}")
    if route == "structured" and isinstance(H, Hessian):
        chain.parse_chain(H)  # a clear error where the route does not apply
    return route


def _as_params(H: NetworkOperator | LinearMap, flat: Tensor) -> dict[str, Tensor]:
    return {k: v.detach().cpu() for k, v in H.to_params(flat).items()}


def _onehot_diagonal(H: NetworkOperator | LinearMap, progress: bool, limit: int | None) -> Tensor:
    n = H.dim if limit is None else min(limit, H.dim)
    out = torch.full((H.dim,), math.nan, device=H.device, dtype=H.dtype)
    if isinstance(H, LinearMap):  # a plain map multiplies blocks of 64 unit vectors at once
        for i in tqdm(range(0, n, 64), desc="diagonal", disable=not progress, leave=False):
            j = min(i + 64, n)
            block = torch.zeros(j - i, H.dim, device=H.device, dtype=H.dtype)
            block[torch.arange(j - i), torch.arange(i, j)] = 1
            out[i:j] = H.hvp(block).diagonal(offset=i)
        return out
    e = torch.zeros(H.dim, device=H.device, dtype=H.dtype)
    for i in tqdm(range(n), desc="diagonal", disable=not progress, leave=False):
        e[i] = 1
        out[i] = H.hvp(e)[i]
        e[i] = 0
    return out


def _hutchinson_diagonal(
    H: NetworkOperator | LinearMap, probes: int, seed: int, progress: bool
) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(int(seed))
    total = torch.zeros(H.dim, dtype=torch.float64, device=H.device)
    squares = torch.zeros_like(total)
    for _ in tqdm(range(probes), desc="diagonal", disable=not progress, leave=False):
        z = H.random(generator, "rademacher")
        s = (z * H.hvp(z)).double()
        total += s
        squares += s * s
    mean = total / probes
    var = (squares - probes * mean**2).clamp_min(0) / max(probes - 1, 1)
    err = (var / probes).sqrt() if probes > 1 else torch.full_like(mean, math.nan)
    return mean.to(H.dtype), err.to(H.dtype)
