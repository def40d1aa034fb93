"""The diagonal of a `Hessian` operator: exact, or estimated by Hutchinson's method.

Exact routes (`diagonal(H, "exact")` picks the fastest one that is exact for the model):

- `"ggn"`: where the network is piecewise linear in each parameter (Linear, Conv, ReLU, pooling,
  eval-mode BatchNorm, flattening, with cross-entropy or MSE on top), every second derivative
  of the network output along one coordinate vanishes, so the Hessian diagonal equals the
  generalized Gauss–Newton diagonal (1/N) Σ_n Σ_c (J_nᵀ a_nc)², where a_nc are the columns of a
  factor of the output curvature (√p_c (e_c − p) for cross-entropy). It costs one backward pass
  per class over per-sample factors, plus per-sample squared weight gradients per layer.
- `"structured"` (`lmc_toolkit.hessian_diag_norm`): chains [Conv2d → instance norm
  (`GroupNorm(C, C)`), BatchNorm or none → ReLU → avg/max pool]×D → Flatten → Linear, such
  as `convnet3`, with cross-entropy or MSE. Instance norm adds curvature the GGN misses; this
  route adds it in closed form for the last two blocks and the linear layer, and computes the
  few coordinates of earlier blocks (conv1 and its norm in `convnet3`: 704 of ~85k) by one
  linearized forward pass each (`hessian_diag_early`); it needs no Hessian-vector products.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from lmc_toolkit import hessian_diag_chain as chain
from lmc_toolkit import hessian_diag_norm as structured
from lmc_toolkit.hessian import Hessian, check_operator

DIAG_METHODS = ("exact", "ggn", "structured", "onehot", "hutchinson")

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


def is_piecewise_linear(H: Hessian) -> bool:
    """Whether the GGN diagonal is the Hessian diagonal: built-in loss, and every leaf module
    piecewise linear in its input and parameters (BatchNorm only with bn="eval")."""
    if H.loss not in ("cross_entropy", "mse"):
        return False
    for m in H.network().modules():
        if next(m.children(), None) is not None:
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
    H: Hessian,
    method: str = "exact",
    probes: int = 100,
    seed: int = 0,
    progress: bool = True,
    limit: int | None = None,
    ggn_batch: int | None = None,
) -> Diagonal:
    """The diagonal of `H` as per-parameter tensors.

    `method`: `"exact"` (the fastest exact route, see the module docstring), `"ggn"`,
    `"structured"`, `"onehot"`, or `"hutchinson"` (mean of z⊙Hz over `probes` Rademacher
    probes, with standard errors). `limit` computes only the first `limit` coordinates that
    need products (one-hot route; early blocks of the structured route; the rest NaN), to
    time a prefix. `ggn_batch` is the GGN and structured routes' chunk of images (default: up
    to 512 for the GGN, sized to a memory budget for the structured route; both are per
    sample, so they need not match the operator's batches).
    """
    check_operator(H)
    if method not in DIAG_METHODS:
        raise ValueError(f"method must be one of {DIAG_METHODS}, got {method!r}")
    if method == "hutchinson" and (not isinstance(probes, int) or probes <= 0):
        raise ValueError(f"probes must be a positive int, got {probes!r}")
    if limit is not None and (not isinstance(limit, int) or limit <= 0):
        raise ValueError(f"limit must be a positive int or None, got {limit!r}")
    pl = is_piecewise_linear(H)
    route = method
    if method == "exact":
        route = "ggn" if pl else "structured" if chain.applies(H) else "onehot"
    if route == "ggn" and H.loss not in ("cross_entropy", "mse"):
        raise ValueError(f"the GGN route needs loss 'cross_entropy' or 'mse', got {H.loss!r}")
    if route == "structured":
        chain.parse_chain(H)  # a clear error where the route does not apply
    start, before = time.perf_counter(), H.products
    stderr, extra = None, {}
    if route == "ggn":
        flat = H.flatten(_ggn_diagonal(H, progress, ggn_batch or min(H.n, 512)))
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
        exact=route in ("onehot", "structured") or (route == "ggn" and pl),
        seconds=time.perf_counter() - start,
        products=H.products - before,
        stderr=stderr,
        probes=probes if route == "hutchinson" else None,
        seed=int(seed) if route == "hutchinson" else None,
        meta={**H.meta(), "piecewise_linear": pl, **extra},
    )


def _as_params(H: Hessian, flat: Tensor) -> dict[str, Tensor]:
    return {k: v.detach().cpu() for k, v in H.to_params(flat).items()}


def _onehot_diagonal(H: Hessian, progress: bool, limit: int | None) -> Tensor:
    n = H.dim if limit is None else min(limit, H.dim)
    out = torch.full((H.dim,), math.nan, device=H.device, dtype=H.dtype)
    e = torch.zeros(H.dim, device=H.device, dtype=H.dtype)
    for i in tqdm(range(n), desc="diagonal", disable=not progress, leave=False):
        e[i] = 1
        out[i] = H.hvp(e)[i]
        e[i] = 0
    return out


def _hutchinson_diagonal(
    H: Hessian, probes: int, seed: int, progress: bool
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


# ----- the GGN route: per-sample squared gradients, layer by layer -----

Handler = Callable[[nn.Module, Tensor, Tensor], dict[str, Tensor]]


def _linear(m: nn.Linear, a: Tensor, g: Tensor) -> dict[str, Tensor]:
    """g: classes × N × ... × out. Without shared positions the squares factor per sample."""
    if a.dim() == 2:
        g2 = (g * g).sum(0)  # N × out, summed over the factor's columns
        return {"weight": g2.T @ (a * a), "bias": g2.sum(0)}
    weight = torch.zeros_like(m.weight)
    for gc in g:  # shared over positions: materialize each per-sample gradient, then square
        per = torch.einsum("n...o,n...i->noi", gc, a)
        weight += (per * per).sum(0)
    gb = g.reshape(g.shape[0], g.shape[1], -1, g.shape[-1]).sum(2)
    return {"weight": weight, "bias": (gb * gb).sum((0, 1))}


def _conv2d(m: nn.Conv2d, a: Tensor, g: Tensor) -> dict[str, Tensor]:
    if m.groups != 1 or m.padding_mode != "zeros" or isinstance(m.padding, str):
        raise ValueError(
            "the GGN diagonal supports Conv2d with groups=1, zero padding given as numbers; "
            "use method='onehot' or 'hutchinson' for this model"
        )
    cols = F.unfold(a, m.kernel_size, m.dilation, m.padding, m.stride)  # N × Cin·k·k × L
    gg = g.reshape(g.shape[0], g.shape[1], g.shape[2], -1)  # classes × N × O × L
    weight = torch.zeros(m.weight.shape[0], cols.shape[1], device=a.device, dtype=a.dtype)
    for gc in gg:
        per = torch.bmm(gc, cols.transpose(1, 2))  # N × O × Cin·k·k
        weight += (per * per).sum(0)
    gb = gg.sum(3)
    return {"weight": weight.view_as(m.weight), "bias": (gb * gb).sum((0, 1))}


def _affine(normalized: Tensor, g: Tensor) -> dict[str, Tensor]:
    k, n, c = g.shape[:3]
    gw = (g * normalized).reshape(k, n, c, -1).sum(3)
    gb = g.reshape(k, n, c, -1).sum(3)
    return {"weight": (gw * gw).sum((0, 1)), "bias": (gb * gb).sum((0, 1))}


def _batchnorm(m: nn.modules.batchnorm._BatchNorm, a: Tensor, g: Tensor) -> dict[str, Tensor]:
    if m.training or m.running_mean is None:
        raise ValueError(
            "the GGN diagonal of train-mode BatchNorm is not per-sample; use bn='eval'"
        )
    shape = (1, -1) + (1,) * (a.dim() - 2)
    xhat = (a - m.running_mean.view(shape)) / (m.running_var.view(shape) + m.eps).sqrt()
    return _affine(xhat, g)


def _groupnorm(m: nn.GroupNorm, a: Tensor, g: Tensor) -> dict[str, Tensor]:
    return _affine(F.group_norm(a, m.num_groups, eps=m.eps), g)


_HANDLERS: dict[type, Handler] = {
    nn.Linear: _linear,
    nn.Conv2d: _conv2d,
    nn.BatchNorm1d: _batchnorm,
    nn.BatchNorm2d: _batchnorm,
    nn.GroupNorm: _groupnorm,
}


def _owners(H: Hessian) -> dict[str, tuple[str, nn.Module, str]]:
    """selected parameter name → (module name, module, attribute)."""
    out = {}
    for mname, module in H.network().named_modules():
        for attr, _ in module.named_parameters(recurse=False):
            full = f"{mname}.{attr}" if mname else attr
            if full in H.names:
                if type(module) not in _HANDLERS:
                    raise ValueError(
                        f"the GGN diagonal has no rule for {type(module).__name__} (parameter "
                        f"{full!r}); use method='onehot' or 'hutchinson'"
                    )
                out[full] = (mname, module, attr)
    return out


def _output_factor(H: Hessian, out: Tensor) -> Tensor:
    """Columns a_c (stacked: C × N × C) with Σ_c a_c a_cᵀ = the per-sample Hessian of the loss
    w.r.t. the outputs."""
    n, c = out.shape
    if H.loss == "mse":
        eye = torch.eye(c, device=out.device, dtype=out.dtype) * math.sqrt(2.0 / c)
        return eye[:, None, :].expand(c, n, c)
    p = torch.softmax(out.detach().double(), dim=-1)  # N × C
    sq = p.sqrt()
    eye = torch.eye(c, device=out.device, dtype=torch.float64)
    # a_k[n] = √p_nk (e_k − p_n)
    factors = sq.T[:, :, None] * (eye[:, None, :] - p[None, :, :])
    return factors.to(out.dtype)


def _output_grads(out: Tensor, outputs: list[Tensor], factors: Tensor) -> list[Tensor]:
    """The gradients of Σ_n a_c[n]·out[n] w.r.t. each tapped output, for every column c at once
    (a vmapped backward pass), or column by column where the batched pass is not supported."""
    try:
        grads = torch.autograd.grad(out, outputs, grad_outputs=factors, is_grads_batched=True)
        return [g.detach() for g in grads]
    except RuntimeError:
        cols = [
            torch.autograd.grad(out, outputs, grad_outputs=f, retain_graph=True) for f in factors
        ]
        return [torch.stack([c[i] for c in cols]).detach() for i in range(len(outputs))]


def _ggn_diagonal(H: Hessian, progress: bool, batch_size: int) -> list[Tensor]:
    owners = _owners(H)
    modules = {mname: module for mname, module, _ in owners.values()}
    net = H.network()
    totals = {
        k: torch.zeros(s, device=H.device, dtype=H.dtype)
        for k, s in zip(H.names, H.shapes, strict=True)
    }
    chunks = list(H.chunks(batch_size))
    for x, _, _ in tqdm(chunks, desc="ggn diagonal", disable=not progress, leave=False):
        seen: dict[str, list[tuple[Tensor, Tensor]]] = {m: [] for m in modules}

        def hook(mname, seen=seen):
            def fn(module, inputs, output):
                seen[mname].append((inputs[0].detach(), output))

            return fn

        handles = [mod.register_forward_hook(hook(mname)) for mname, mod in modules.items()]
        try:
            out = net(x)
        finally:
            for h in handles:
                h.remove()
        for mname, calls in seen.items():
            if len(calls) != 1:
                raise ValueError(f"module {mname!r} ran {len(calls)} times in one forward pass")
        names = list(modules)
        outputs = [seen[m][0][1] for m in names]
        scale = 1.0 / H.n  # per-sample sums, averaged over all data
        grads = _output_grads(out, outputs, _output_factor(H, out))
        per_module = {
            m: _HANDLERS[type(modules[m])](modules[m], seen[m][0][0], g)
            for m, g in zip(names, grads, strict=True)
        }
        for full, (mname, _, attr) in owners.items():
            totals[full] += per_module[mname][attr].view_as(totals[full]) * scale
    return [totals[k] for k in H.names]
