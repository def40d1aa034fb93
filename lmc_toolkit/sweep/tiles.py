"""A landscape grid as sweep units: tiles of rows, each a `plane(...)` stored under its own key.

`plane_tile_units(center, d1, d2, data, x, y, store, rows=4)` splits the grid `x` × `y` into
tiles of `rows` y values; each unit evaluates its tile with `landscape.plane` over the explicit
x values and its slice of y values and stores the `Surface` (a rerun is a store hit).
`assemble_tiles(units, store)` puts them together: one `Surface` equal, bit for bit on the
CPU, to `plane(center, d1, d2, data, x, y, compile=False, ...)` evaluated at once (every grid
point is evaluated on its own, so where it is evaluated does not change its numbers; tiles run
uncompiled unless `compile=True` is passed, which is then also what the whole grid must use).

The inputs (centre, directions, data) travel with the units, so keep them to what a worker
can receive: a model's state and a subsample of the evaluation data.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import Tensor, nn

from lmc_toolkit.store.runs import Store
from lmc_toolkit.sweep.units import Unit

if TYPE_CHECKING:
    from lmc_toolkit.landscape.surface import Surface

__all__ = ["PlaneTile", "assemble_tiles", "plane_tile_units"]


@dataclass(frozen=True)
class PlaneTile:
    """The store identity of one tile: the whole plane's fingerprint and its rows."""

    plane: str = ""
    start: int = 0
    stop: int = 0

    def run_prefix(self) -> str:
        return "plane-tile"


def _fingerprint(center: Any, d1: Any, d2: Any, data: Any, xs, ys, options) -> str:
    from lmc_toolkit.training.identity import tensors_fingerprint
    from lmc_toolkit.training.params import state_of

    state = state_of(center) if isinstance(center, nn.Module) else dict(center)
    parts = [
        tensors_fingerprint(state),
        tensors_fingerprint(dict(d1)),
        tensors_fingerprint(dict(d2)),
        tensors_fingerprint({"x": data.x, "y": data.y}),
        np.asarray(xs, float).tolist(),
        np.asarray(ys, float).tolist(),
        {k: repr(v) for k, v in sorted(options.items())},
    ]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TileJob:
    """What one tile's worker needs: where the store is (an absolute path and its lock
    staleness), the tile's key, and `plane`'s arguments for the tile's rows `ys`."""

    store_root: str
    lock_stale: float
    key: PlaneTile
    center: Any
    d1: Mapping[str, Tensor]
    d2: Mapping[str, Tensor]
    data: Any
    xs: np.ndarray
    ys: np.ndarray
    options: Mapping[str, Any]


def _tile_unit(job: TileJob) -> dict:
    from lmc_toolkit.landscape.slices import plane
    from lmc_toolkit.landscape.surface import Surface

    store = Store(job.store_root, lock_stale=job.lock_stale)

    def compute() -> Surface:
        return plane(
            job.center, job.d1, job.d2, job.data, x=job.xs, y=job.ys, progress=False, **job.options
        )

    store.cached(job.key, compute, encode=Surface.to_dict, decode=Surface.from_dict)
    return {"plane": job.key.plane, "rows": [job.key.start, job.key.stop]}


def plane_tile_units(
    center: nn.Module | Mapping[str, Tensor],
    d1: Mapping[str, Tensor],
    d2: Mapping[str, Tensor],
    data: Any,
    x: Any,
    y: Any,
    store: Store | str | Path | None = None,
    rows: int = 4,
    *,
    label: str = "plane",
    **options: Any,
) -> list[Unit]:
    """Units evaluating `plane(center, d1, d2, data, x, y, **options)` in tiles of `rows`
    y values (see the module docstring); `assemble_tiles` joins them."""
    from lmc_toolkit.landscape.slices import grid_axis

    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 2:
        raise ValueError(f"rows must be an int ≥ 2 (plane() needs 2 values per axis), got {rows!r}")
    bad = {"path", "max_points", "progress"} & set(options)
    if bad:
        raise ValueError(f"plane option {sorted(bad)[0]!r} is not available for tiles")
    xs, ys = grid_axis(x, "x"), grid_axis(y, "y")
    options.setdefault("compile", False)
    s = store if isinstance(store, Store) else Store(store)
    token = _fingerprint(center, d1, d2, data, xs, ys, options)
    bounds = [*range(0, len(ys), rows), len(ys)]
    if bounds[-1] - bounds[-2] < 2:  # a last tile of one row joins the one before
        del bounds[-2]
    units = []
    for start, stop in itertools.pairwise(bounds):
        tile_ys = ys[start:stop]
        key = PlaneTile(token, start, stop)
        units.append(
            Unit(
                f"{label}-rows{start}-{stop}",
                _tile_unit,
                (
                    TileJob(
                        store_root=os.path.abspath(s.root),
                        lock_stale=s.lock_stale,
                        key=key,
                        center=center,
                        d1=d1,
                        d2=d2,
                        data=data,
                        xs=xs,
                        ys=tile_ys,
                        options=dict(options),
                    ),
                ),
                {"plane": token, "rows": (start, stop), "points": len(xs) * len(tile_ys)},
            )
        )
    return units


def assemble_tiles(units: list[Unit], store: Store | str | Path | None = None) -> Surface:
    """The surface of the whole grid from the stored tiles of `plane_tile_units` (run first)."""
    from lmc_toolkit.landscape.surface import Surface

    s = store if isinstance(store, Store) else Store(store)
    tiles = []
    for unit in sorted(units, key=lambda u: u.config["rows"][0]):
        key = unit.args[0].key
        run = s.run(key)
        if not run.has("result", ".pt"):
            raise FileNotFoundError(f"tile {unit.label} is not in {s.root}: run the units first")
        tiles.append(Surface.from_dict(run.load("result")))
    first = tiles[0]
    meta = dict(first.meta)
    meta["seconds"] = float(sum(t.meta.get("seconds", 0.0) for t in tiles))
    meta["tiles"] = len(tiles)
    return Surface(
        first.x,
        np.concatenate([t.y for t in tiles]),
        np.concatenate([t.loss for t in tiles], axis=0),
        np.concatenate([t.accuracy for t in tiles], axis=0),
        first.markers,
        meta,
    )
