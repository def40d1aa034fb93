"""The planes of the study's figures: random planes around a solution (Li et al.), the plane
through three solutions (Garipov et al.), and the study's plane through four solutions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from torch import Tensor, nn

from lmc_toolkit.data.entrance import DataLike
from lmc_toolkit.landscape.directions import DirectionNorm, orthogonalize, random_direction
from lmc_toolkit.landscape.slices import Grid, plane
from lmc_toolkit.landscape.solutions import (
    Solution,
    apply_mask,
    split_solution,
    template_of,
)
from lmc_toolkit.landscape.surface import Marker, Surface
from lmc_toolkit.training.params import dot, sub


def random_plane(
    center: Solution,
    data: DataLike,
    seeds: tuple[int, int] = (0, 1),
    norm: DirectionNorm = "filter",
    ignore_1d: bool = True,
    x: Grid = (-1.0, 1.0, 25),
    y: Grid = (-1.0, 1.0, 25),
    mask: Mapping[str, Tensor] | None = None,
    *,
    model: nn.Module | None = None,
    **options: Any,
) -> Surface:
    """The plane through `center` spanned by two random directions (Li et al.'s figures).

    Args:
        center: The solution at (0, 0).
        data: What every point is scored on.
        seeds: The two directions' seeds.
        norm: The directions' normalization (`random_direction`'s).
        ignore_1d: Zero the directions on 1-D tensors.
        x: The grid along the first direction: (start, stop, n) or the values.
        y: The grid along the second.
        mask: Pruned coordinates are zero on the whole plane.
        model: The architecture, where `center` is not a model.
        **options: Passed to `plane`.

    Returns:
        A `Surface`, its direction seeds in its `meta`.
    """
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
    data: DataLike,
    x: Grid = (-0.5, 1.5, 21),
    y: Grid = (-0.5, 1.5, 21),
    mask: Mapping[str, Tensor] | None = None,
    *,
    labels: Sequence[str] = ("a", "b", "c"),
    model: nn.Module | None = None,
    **options: Any,
) -> Surface:
    """Garipov et al.'s plane through three solutions: origin a, x along b − a (b at (1, 0)),
    y along c − a orthogonalized against b − a (c at (⟨c−a, b−a⟩/‖b−a‖², 1)).

    Args:
        a: The origin (a model, state dict or parameter dict).
        b: The solution at (1, 0).
        c: The third solution.
        data: What every point is scored on.
        x: The grid along b − a: (start, stop, n) or the values.
        y: The grid along the orthogonalized c − a.
        mask: Pruned coordinates are zero on the whole plane.
        labels: The three markers' names.
        model: The architecture, where no solution is a model.
        **options: Passed to `plane`.

    Returns:
        A `Surface` with the three markers.
    """
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
    data: DataLike,
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
    (for `bn="eval"`) are the mean of θ0's and θ1's.

    Args:
        models4: The four solutions θ0..θ3 (models, state or parameter dicts).
        data: What every point is scored on.
        x: The grid along the first direction: (start, stop, n) or the values.
        y: The grid along the second.
        mask: Pruned coordinates are zero on the whole plane.
        labels: The four markers' names.
        model: The architecture, where no solution is a model.
        **options: Passed to `plane` (bn, bn_data, path, progress, evaluator options).

    Returns:
        A `Surface` with the four markers.
    """
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
