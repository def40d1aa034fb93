"""F4: loss-landscape planes through trained tickets, real or synthetic evaluation data."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lmc_toolkit.landscape.planes import paper_plane, random_plane
from lmc_toolkit.landscape.surface import Surface
from lmc_toolkit.study.analyses.cache import cached, study_data
from lmc_toolkit.study.runs import Study, subsample


def paper_surface(
    study: Study,
    method: str,
    round: int,
    seeds: Sequence[int] = (0, 1, 2, 3),
    data: str = "train",
    resolution: int = 21,
    images: int | None = 1000,
) -> Surface:
    """The study's plane through four copies of one ticket trained with four data seeds,
    evaluated on real (`data="train"`/"test") or synthetic (`data="synthetic-<source>"`) data."""
    if data.startswith("synthetic-"):
        points = study.synthetic(data.removeprefix("synthetic-"))
    else:
        points = study_data(study, data)
    points = subsample(points, images)
    grid = (-2.0, 2.0, resolution)

    def compute() -> Surface:
        nets = [study.network(method, round, s) for s in seeds]
        return paper_plane(nets, points, x=grid, y=grid, **_ticket_options(study, method, round))

    args = {"seeds": tuple(seeds), "data": data, "n": resolution, "images": images}
    return _cached_surface(study, "paper-plane", method, round, args, compute)


def random_surface(
    study: Study,
    method: str,
    round: int,
    data_seed: int = 0,
    span: float = 1.0,
    resolution: int = 21,
    images: int | None = 1000,
) -> Surface:
    """A filter-normalized random plane around one trained ticket (Li et al.)."""
    points = subsample(study.test_data, images)
    grid = (-span, span, resolution)

    def compute() -> Surface:
        net = study.network(method, round, data_seed)
        options = _ticket_options(study, method, round)
        return random_plane(net, points, seeds=(0, 1), norm="filter", x=grid, y=grid, **options)

    args = {"data_seed": data_seed, "span": span, "n": resolution, "images": images}
    return _cached_surface(study, "random-plane", method, round, args, compute)


def _ticket_options(study: Study, method: str, round: int) -> dict[str, Any]:
    """What every plane of a ticket is computed with: its mask, BatchNorm statistics
    re-estimated on the training data, and the study's progress setting."""
    return {
        "mask": study.mask(method, round),
        "bn_data": study.train_data,
        "progress": study.progress,
    }


def _cached_surface(
    study: Study,
    kind: str,
    method: str,
    round: int,
    args: Mapping[str, Any],
    compute: Callable[[], Surface],
) -> Surface:
    """The plane `compute()` gives, kept under (kind, method, round, args) in the study's store."""
    key = {"method": method, "round": round, **args}
    return cached(study, kind, key, compute, Surface.to_dict, Surface.from_dict)
