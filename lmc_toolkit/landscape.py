"""Loss-landscape slices: directions in weight space, lines and planes on the one evaluator.

- `random_direction`: Li et al.'s filter-normalized Gaussian direction (or layer/no
  normalization), with pruned coordinates at zero; `orthogonalize` and `towards` build others.
- `line` → `Curve`; `plane`, `random_plane`, `plane_through` (Garipov et al.) and
  `paper_plane` (the study's plane through four solutions) → `Surface`.

Planes are computed in blocks of points; with `path=` each block is saved, and a surface
interrupted mid-way (or stopped by `max_points`) continues where it stopped. Any `Dataset`
can be the evaluation data, real or synthetic.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lmc_toolkit.batchnorm import BNPolicy, as_policy
from lmc_toolkit.connectivity import Curve
from lmc_toolkit.data import Dataset
from lmc_toolkit.endpoints import (
    Solution,
    apply_mask,
    fingerprint,
    sparsity,
    split_solution,
    template_of,
)
from lmc_toolkit.evaluator import Evaluator, grid_coords
from lmc_toolkit.params import Params, check_mask, dot, sub
from lmc_toolkit.surface import Marker, Surface, empty_surface

NORMS = ("filter", "layer", "none")
Grid = tuple[float, float, int] | Sequence[float] | np.ndarray


def _param_dict(params: nn.Module | Mapping[str, Tensor]) -> Params:
    if isinstance(params, nn.Module):
        return {k: p.detach() for k, p in params.named_parameters()}
    if isinstance(params, Mapping):
        return dict(params)
    raise TypeError(f"expected a model or a parameter dict, got {type(params).__name__}")


def random_direction(
    params: nn.Module | Mapping[str, Tensor],
    seed: int,
    norm: str = "filter",
    ignore_1d: bool = True,
    mask: Mapping[str, Tensor] | None = None,
) -> Params:
    """A Gaussian direction drawn from `seed` alone, normalized to the weights `params`.

    `norm="filter"` rescales each filter (slice along dim 0) to the norm of the matching
    weight filter (Li et al. 2018); `"layer"` rescales each tensor to the weight tensor's norm;
    `"none"` keeps the raw draw. With `ignore_1d` the 1-D tensors (biases, norm parameters) get
    zero; otherwise they are normalized as one filter. Pruned coordinates are zero, and the
    weight filters are measured with them zeroed too.
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int, got {seed!r}")
    weights = _param_dict(params)
    masks = check_mask(weights, mask) or {}
    generator = torch.Generator().manual_seed(int(seed))
    out = {}
    for name, w in weights.items():
        draw = torch.randn(w.shape, generator=generator, dtype=torch.float64)
        w64 = w.detach().to("cpu", torch.float64)
        if name in masks:
            keep = masks[name].cpu()
            draw, w64 = draw * keep, w64 * keep
        if w.dim() <= 1 and ignore_1d:
            d = torch.zeros_like(draw)
        elif norm == "none":
            d = draw
        elif norm == "layer" or w.dim() <= 1:
            d = draw * _ratio(w64.norm(), draw.norm())
        else:
            dims = tuple(range(1, w.dim()))
            scale = _ratio(
                torch.linalg.vector_norm(w64, dim=dims, keepdim=True),
                torch.linalg.vector_norm(draw, dim=dims, keepdim=True),
            )
            d = draw * scale
        out[name] = d.to(device=w.device, dtype=w.dtype)
    return out


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    """num / den, with 0 where den is 0 (an all-pruned filter stays zero)."""
    return torch.where(den > 0, num / den.clamp_min(1e-300), torch.zeros_like(num))


def orthogonalize(d1: Mapping[str, Tensor], d2: Mapping[str, Tensor]) -> Params:
    """d2 minus its projection on d1 (Gram-Schmidt), so that ⟨d1, result⟩ = 0."""
    denom = dot(d1, d1)
    if float(denom) == 0.0:
        raise ValueError("cannot orthogonalize against a zero direction")
    coef = float(dot(d1, d2) / denom)
    return {k: d2[k] - coef * d1[k] for k in d2}


def towards(a: Solution, b: Solution, model: nn.Module | None = None) -> Params:
    """The direction b − a between two solutions (models, state dicts or parameter dicts)."""
    template = template_of([a, b], model)
    pa, _ = split_solution(a, template, "a")
    pb, _ = split_solution(b, template, "b")
    return sub(pb, pa)


def grid_axis(spec: Grid, what: str) -> np.ndarray:
    """A grid axis from (start, stop, n) or explicit values; at least 2 finite points."""
    if (
        isinstance(spec, tuple)
        and len(spec) == 3
        and isinstance(spec[2], int)
        and not isinstance(spec[2], bool)
    ):
        lo, hi, n = spec
        if n < 2:
            raise ValueError(f"the grid {what} needs at least 2 points, got n = {n}")
        values = np.linspace(float(lo), float(hi), n)
    else:
        values = np.asarray(spec, dtype=float).ravel()
        if len(values) < 2:
            raise ValueError(f"the grid {what} needs at least 2 points, got {len(values)}")
    if not np.isfinite(values).all():
        raise ValueError(f"the grid {what} must be finite, got {values}")
    return values


def _check_directions(
    directions: Sequence[Mapping[str, Tensor]], template: nn.Module, mask: Any
) -> list[Params]:
    out = []
    for i, d in enumerate(directions):
        p, _ = split_solution(d, template, f"direction {i + 1}")
        out.append(apply_mask(p, mask))
    return out


def line(
    center: Solution,
    direction: Mapping[str, Tensor],
    data: Dataset,
    span: float | tuple[float, float] = 1.0,
    n: int = 25,
    bn: str | BNPolicy = "recalibrate",
    mask: Mapping[str, Tensor] | None = None,
    *,
    model: nn.Module | None = None,
    bn_data: Dataset | None = None,
    label: str = "",
    progress: bool = True,
    **evaluator_options: Any,
) -> Curve:
    """Loss and accuracy at center + t·direction for `n` values of t in [-span, span] (or in
    `span = (lo, hi)`); `Curve.alphas` holds t."""
    lo, hi = (-float(span), float(span)) if np.isscalar(span) else (float(span[0]), float(span[1]))
    ts = grid_axis((lo, hi, n), "of the line")
    policy = _plane_policy(bn)
    template = template_of([center], model)
    base, buffers = split_solution(center, template, "center")
    base = apply_mask(base, mask)
    (d,) = _check_directions([direction], template, mask)
    start = time.perf_counter()
    evaluator = Evaluator(
        template, data, bn=policy, bn_data=bn_data, progress=progress, **evaluator_options
    )
    result = evaluator(base, [d], ts[:, None], buffers=buffers)
    meta = {
        "dataset": data.name,
        "n": len(data),
        "sparsity": sparsity(base, mask),
        "bn_policy": policy.to_dict(),
        "seconds": time.perf_counter() - start,
        "evaluator": dict(result.details),
    }
    return Curve(ts, result.loss, result.accuracy, policy.mode, "line", label, meta)


def _plane_policy(bn: str | BNPolicy) -> BNPolicy:
    policy = as_policy(bn)
    if policy.mode == "interpolate":
        raise ValueError(
            "bn='interpolate' is for interpolation between two models only; use 'recalibrate' "
            "or 'eval' for lines and planes"
        )
    return policy


def plane(
    center: Solution,
    d1: Mapping[str, Tensor],
    d2: Mapping[str, Tensor],
    data: Dataset,
    x: Grid = (-1.0, 1.0, 25),
    y: Grid = (-1.0, 1.0, 25),
    bn: str | BNPolicy = "recalibrate",
    mask: Mapping[str, Tensor] | None = None,
    *,
    model: nn.Module | None = None,
    bn_data: Dataset | None = None,
    markers: Sequence[Marker] = (),
    meta: Mapping[str, Any] | None = None,
    path: str | Path | None = None,
    max_points: int | None = None,
    block: int = 64,
    progress: bool = True,
    **evaluator_options: Any,
) -> Surface:
    """Loss and accuracy at center + x·d1 + y·d2 over the grid `x` × `y`.

    Grids are (start, stop, n) or explicit values. With `path`, the surface is saved after
    every `block` points and an existing file of the same plane is resumed; `max_points`
    stops after that many new points (the rest stay NaN). `meta` is recorded (e.g. direction
    seeds); the centre is marked at (0, 0) unless `markers` are given.
    """
    xs, ys = grid_axis(x, "x"), grid_axis(y, "y")
    policy = _plane_policy(bn)
    template = template_of([center], model)
    base, buffers = split_solution(center, template, "center")
    base = apply_mask(base, mask)
    dirs = _check_directions([d1, d2], template, mask)
    if max_points is not None and (not isinstance(max_points, int) or max_points < 0):
        raise ValueError(f"max_points must be an int ≥ 0 or None, got {max_points!r}")
    if not isinstance(block, int) or block < 1:
        raise ValueError(f"block must be a positive int, got {block!r}")
    record = {
        "kind": "plane",
        "dataset": data.name,
        "n": len(data),
        "bn": policy.mode,
        "bn_policy": policy.to_dict(),
        "sparsity": sparsity(base, mask),
        "fingerprint": fingerprint(
            {"base": _flatten(base), "d1": _flatten(dirs[0]), "d2": _flatten(dirs[1])}
        ),
        "data_fingerprint": fingerprint({"x": data.x, "y": data.y}),
        **dict(meta or {}),
    }
    markers = tuple(markers) or (Marker("center", 0.0, 0.0),)
    surface = _resume(path, xs, ys, markers, record)
    todo = np.flatnonzero(np.isnan(surface.loss.ravel()))
    if max_points is not None:
        todo = todo[:max_points]
    if len(todo) == 0:
        return surface
    coords = grid_coords(xs, ys)
    evaluator = Evaluator(
        template, data, bn=policy, bn_data=bn_data, progress=progress, **evaluator_options
    )
    evaluator.expect(len(todo))
    loss, accuracy = surface.loss.reshape(-1), surface.accuracy.reshape(-1)
    start = time.perf_counter()
    for i in range(0, len(todo), block):
        idx = todo[i : i + block]
        result = evaluator(base, dirs, coords[idx], buffers=buffers)
        loss[idx], accuracy[idx] = result.loss, result.accuracy
        if path is not None:
            surface.save(path)
    seconds = float(surface.meta.get("seconds", 0.0)) + time.perf_counter() - start
    new_meta = {**surface.meta, "seconds": seconds, "evaluator": dict(result.details)}
    out = Surface(surface.x, surface.y, surface.loss, surface.accuracy, surface.markers, new_meta)
    if path is not None:
        out.save(path)
    return out


def _flatten(params: Params) -> Tensor:
    return torch.cat([v.detach().reshape(-1).cpu().float() for v in params.values()])


def _resume(
    path: str | Path | None,
    xs: np.ndarray,
    ys: np.ndarray,
    markers: Sequence[Marker],
    record: Mapping[str, Any],
) -> Surface:
    """The stored surface of this plane at `path`, or a new empty one."""
    if path is None or not Path(path).exists():
        return empty_surface(xs, ys, markers, record)
    stored = Surface.load(path)
    same_grid = (
        stored.x.shape == xs.shape
        and stored.y.shape == ys.shape
        and np.allclose(stored.x, xs)
        and np.allclose(stored.y, ys)
    )
    same_plane = all(
        stored.meta.get(k) == record.get(k) for k in ("fingerprint", "data_fingerprint", "bn")
    )
    if not (same_grid and same_plane):
        raise ValueError(
            f"{path} holds another plane or grid (different centre, directions, data, BN policy "
            "or grid); delete it or choose another path"
        )
    meta = {**record, "seconds": float(stored.meta.get("seconds", 0.0))}
    return Surface(stored.x, stored.y, stored.loss, stored.accuracy, tuple(markers), meta)


def random_plane(
    center: Solution,
    data: Dataset,
    seeds: tuple[int, int] = (0, 1),
    norm: str = "filter",
    ignore_1d: bool = True,
    x: Grid = (-1.0, 1.0, 25),
    y: Grid = (-1.0, 1.0, 25),
    mask: Mapping[str, Tensor] | None = None,
    *,
    model: nn.Module | None = None,
    **options: Any,
) -> Surface:
    """The plane through `center` spanned by two random directions (Li et al.'s figures)."""
    template = template_of([center], model)
    params, _ = split_solution(center, template, "center")
    params = apply_mask(params, mask)
    d1 = random_direction(params, seeds[0], norm, ignore_1d, mask)
    d2 = random_direction(params, seeds[1], norm, ignore_1d, mask)
    meta = {"kind": "random", "seeds": list(seeds), "norm": norm, "ignore_1d": ignore_1d}
    return plane(center, d1, d2, data, x, y, mask=mask, model=template, meta=meta, **options)


def plane_through(
    a: Solution,
    b: Solution,
    c: Solution,
    data: Dataset,
    x: Grid = (-0.5, 1.5, 21),
    y: Grid = (-0.5, 1.5, 21),
    mask: Mapping[str, Tensor] | None = None,
    *,
    labels: Sequence[str] = ("a", "b", "c"),
    model: nn.Module | None = None,
    **options: Any,
) -> Surface:
    """Garipov et al.'s plane through three solutions: origin a, x along b − a (b at (1, 0)),
    y along c − a orthogonalized against b − a (c at (⟨c−a, b−a⟩/‖b−a‖², 1))."""
    template = template_of([a, b, c], model)
    pa, _ = split_solution(a, template, labels[0])
    pb, _ = split_solution(b, template, labels[1])
    pc, _ = split_solution(c, template, labels[2])
    pa, pb, pc = (apply_mask(p, mask) for p in (pa, pb, pc))
    u = sub(pb, pa)
    w = sub(pc, pa)
    if float(dot(u, u)) == 0.0:
        raise ValueError(f"{labels[0]} and {labels[1]} are the same point: no plane through them")
    xc = float(dot(w, u) / dot(u, u))
    v = orthogonalize(u, w)
    if float(dot(v, v)) == 0.0:
        raise ValueError("the three solutions lie on one line: no plane through them")
    markers = (
        Marker(labels[0], 0.0, 0.0),
        Marker(labels[1], 1.0, 0.0),
        Marker(labels[2], xc, 1.0),
    )
    meta = {"kind": "through", "labels": list(labels)}
    return plane(
        a, u, v, data, x, y, mask=mask, model=template, markers=markers, meta=meta, **options
    )


def paper_plane(
    models4: Sequence[Solution],
    data: Dataset,
    x: Grid = (-2.0, 2.0, 21),
    y: Grid = (-2.0, 2.0, 21),
    mask: Mapping[str, Tensor] | None = None,
    *,
    labels: Sequence[str] = ("θ0", "θ1", "θ2", "θ3"),
    model: nn.Module | None = None,
    **options: Any,
) -> Surface:
    """The study's plane through four solutions: centre (θ0+θ1)/2, directions (θ0−θ1)/2 and
    (θ3−θ2)/2. θ0 and θ1 sit at (±1, 0); θ2 and θ3 are marked at their projections onto the
    plane, with their distance from it in `Marker.off_plane`. The centre's running statistics
    (for `bn="eval"`) are the mean of θ0's and θ1's."""
    models4 = list(models4)
    if len(models4) != 4:
        raise ValueError(f"paper_plane needs exactly 4 solutions, got {len(models4)}")
    template = template_of(models4, model)
    split = [split_solution(m, template, labels[i]) for i, m in enumerate(models4)]
    thetas = [apply_mask(p, mask) for p, _ in split]
    center = {k: (thetas[0][k] + thetas[1][k]) / 2 for k in thetas[0]}
    buffers = {k: (split[0][1][k] + split[1][1][k]) / 2 for k in split[0][1]}
    d1 = {k: (thetas[0][k] - thetas[1][k]) / 2 for k in center}
    d2 = {k: (thetas[3][k] - thetas[2][k]) / 2 for k in center}
    gram = np.array(
        [[float(dot(d1, d1)), float(dot(d1, d2))], [float(dot(d1, d2)), float(dot(d2, d2))]]
    )
    if abs(np.linalg.det(gram)) <= 1e-12 * max(gram[0, 0] * gram[1, 1], 1e-300):
        raise ValueError("the four solutions do not span a plane ((θ0−θ1) ∥ (θ3−θ2))")
    markers = []
    for label, theta in zip(labels, thetas, strict=True):
        r = sub(theta, center)
        cx, cy = np.linalg.solve(gram, [float(dot(r, d1)), float(dot(r, d2))])
        proj = {k: cx * d1[k] + cy * d2[k] for k in r}
        off = float(dot(sub(r, proj), sub(r, proj)).sqrt())
        markers.append(Marker(label, float(cx), float(cy), off))
    state = {**center, **buffers}
    meta = {"kind": "paper", "labels": list(labels)}
    return plane(
        state, d1, d2, data, x, y, mask=mask, model=template, markers=markers, meta=meta, **options
    )
