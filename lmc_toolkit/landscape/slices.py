"""Loss-landscape slices on the one evaluator: `line` → `Curve`, `plane` → `Surface`.

Planes are computed in blocks of points; with `path=` each block is saved, and a surface
interrupted mid-way (or stopped by `max_points`) continues where it stopped. Any `Dataset`
can be the evaluation data, real or synthetic.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import torch
from torch import Tensor, nn

from lmc_toolkit.data.dataset import Dataset
from lmc_toolkit.data.entrance import DataLike, as_data
from lmc_toolkit.data.stream import Stream
from lmc_toolkit.landscape.curve import Curve
from lmc_toolkit.landscape.evaluator.core import Evaluator
from lmc_toolkit.landscape.evaluator.points import grid_coords
from lmc_toolkit.landscape.evaluator.precision import check_precision
from lmc_toolkit.landscape.solutions import (
    Solution,
    apply_mask,
    sparsity,
    split_solution,
    template_of,
)
from lmc_toolkit.landscape.surface import Marker, Surface, empty_surface
from lmc_toolkit.training.batchnorm import BNMode, BNPolicy, as_policy
from lmc_toolkit.training.identity import tensors_fingerprint
from lmc_toolkit.training.losses import loss_name
from lmc_toolkit.training.params import Params

Grid: TypeAlias = tuple[float, float, int] | Sequence[float] | np.ndarray


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
        values = np.linspace(float(lo), float(hi), int(n))
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
    data: DataLike,
    span: float | tuple[float, float] = 1.0,
    n: int = 25,
    bn: BNMode | BNPolicy = "recalibrate",
    mask: Mapping[str, Tensor] | None = None,
    *,
    model: nn.Module | None = None,
    bn_data: DataLike | None = None,
    label: str = "",
    progress: bool = True,
    **evaluator_options: Any,
) -> Curve:
    """Loss and accuracy at center + t·direction for `n` values of t.

    Args:
        center: The solution at t = 0.
        direction: Name → tensor, e.g. `random_direction` or `towards`.
        data: What every point is scored on.
        span: t runs over [-span, span], or over (lo, hi).
        n: How many points.
        bn: The BatchNorm policy.
        mask: Pruned coordinates are zero along the line.
        model: The architecture, where `center` is not a model.
        bn_data: The batches `"recalibrate"` uses (default: `data`).
        label: The curve's name in plots.
        progress: Show a progress bar.
        **evaluator_options: Passed to the `Evaluator`.

    Returns:
        A `Curve` whose `alphas` hold t.
    """
    if isinstance(span, Sequence):
        lo, hi = float(span[0]), float(span[1])
    else:
        lo, hi = -float(span), float(span)
    ts = grid_axis((lo, hi, n), "of the line")
    policy = _plane_policy(bn)
    data = as_data(data, "evaluation data")
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
        "precision": result.details["precision"],
        "seconds": time.perf_counter() - start,
        "evaluator": dict(result.details),
    }
    return Curve(ts, result.loss, result.accuracy, policy.mode, "line", label, meta)


def _plane_policy(bn: BNMode | BNPolicy) -> BNPolicy:
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
    data: DataLike,
    x: Grid = (-1.0, 1.0, 25),
    y: Grid = (-1.0, 1.0, 25),
    bn: BNMode | BNPolicy = "recalibrate",
    mask: Mapping[str, Tensor] | None = None,
    *,
    model: nn.Module | None = None,
    bn_data: DataLike | None = None,
    markers: Sequence[Marker] = (),
    meta: Mapping[str, Any] | None = None,
    path: str | Path | None = None,
    max_points: int | None = None,
    block: int = 64,
    progress: bool = True,
    **evaluator_options: Any,
) -> Surface:
    """Loss and accuracy at center + x·d1 + y·d2 over the grid `x` × `y`.

    Args:
        center: The solution at (0, 0).
        d1: The first direction (name → tensor).
        d2: The second direction.
        data: What every point is scored on (a `Stream` is read batch by batch).
        x: The grid along d1: (start, stop, n) or explicit values.
        y: The grid along d2.
        bn: The BatchNorm policy.
        mask: Pruned coordinates are zero on the whole plane.
        model: The architecture, where `center` is not a model.
        bn_data: The batches `"recalibrate"` uses (default: `data`).
        markers: Points to mark (default: the centre at (0, 0)).
        meta: Recorded with the surface (e.g. the directions' seeds).
        path: Save the surface here after every `block` points, and resume an existing file of
            the same plane.
        max_points: Stop after this many new points (the rest stay NaN).
        block: Points between saves.
        progress: Show a progress bar.
        **evaluator_options: Passed to the `Evaluator`.

    Returns:
        A `Surface`: loss and accuracy on the grid, with its markers and record.
    """
    xs, ys = grid_axis(x, "x"), grid_axis(y, "y")
    policy = _plane_policy(bn)
    data = as_data(data, "evaluation data")
    template = template_of([center], model)
    base, buffers = split_solution(center, template, "center")
    base = apply_mask(base, mask)
    dirs = _check_directions([d1, d2], template, mask)
    if max_points is not None and (not isinstance(max_points, int) or max_points < 0):
        raise ValueError(f"max_points must be an int ≥ 0 or None, got {max_points!r}")
    if not isinstance(block, int) or block < 1:
        raise ValueError(f"block must be a positive int, got {block!r}")
    record = _record(
        data, template, base, dirs, mask=mask, policy=policy, meta=meta, options=evaluator_options
    )
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


def _record(
    data: Dataset | Stream,
    template: nn.Module,
    base: Params,
    dirs: Sequence[Params],
    *,
    mask: Mapping[str, Tensor] | None,
    policy: BNPolicy,
    meta: Mapping[str, Any] | None,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """What a plane's surface records: the data, policy, precision and loss, and fingerprints
    of its centre, directions and data (a resumed file must match them), then `meta`."""
    return {
        "kind": "plane",
        "dataset": data.name,
        "n": len(data),
        "bn": policy.mode,
        "bn_policy": policy.to_dict(),
        "precision": _precision(template, options),
        "loss": loss_name(options.get("loss", "cross_entropy")),
        "sparsity": sparsity(base, mask),
        "fingerprint": tensors_fingerprint(
            {"base": _flatten(base), "d1": _flatten(dirs[0]), "d2": _flatten(dirs[1])}
        ),
        "data_fingerprint": data.fingerprint
        if isinstance(data, Stream)
        else tensors_fingerprint({"x": data.x, "y": data.y}),
        **dict(meta or {}),
    }


def _precision(template: nn.Module, options: Mapping[str, Any]) -> str:
    """The precision asked for, checked before a stored surface is read or any work starts."""
    device = next((p.device for p in template.parameters()), torch.device("cpu"))
    return check_precision(options.get("precision", "float32"), device)


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
    stored_precision = stored.meta.get("precision", "float32")
    if stored_precision != record["precision"]:
        raise ValueError(
            f"{path} was computed at precision {stored_precision!r}, not "
            f"{record['precision']!r}: one surface never mixes precisions; delete it, choose "
            "another path or ask for the stored precision"
        )
    meta = {**record, "seconds": float(stored.meta.get("seconds", 0.0))}
    return Surface(stored.x, stored.y, stored.loss, stored.accuracy, tuple(markers), meta)
