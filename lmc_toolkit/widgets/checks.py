"""The explorer's argument checks, run before any widget is built."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from lmc_toolkit.data.dataset import Dataset


def check_choices(networks: Mapping[str, Any], datasets: Mapping[str, Any], pick: Any) -> None:
    if not isinstance(networks, Mapping) or len(networks) < 2:
        have = list(networks) if isinstance(networks, Mapping) else networks
        raise ValueError(f"the explorer needs at least two networks to pick from, got {have!r}")
    for label, entry in networks.items():
        ok = callable(entry) or (
            isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], nn.Module)
        )
        if not ok:
            raise TypeError(
                f"network {label!r} must be (model, mask) or a loader, got {type(entry).__name__}"
            )
    if not isinstance(datasets, Mapping) or not datasets:
        raise ValueError("the explorer needs at least one evaluation Dataset")
    for label, d in datasets.items():
        if not isinstance(d, Dataset):
            raise TypeError(
                f"data {label!r} must be an lmc_toolkit Dataset, got {type(d).__name__}"
            )
    if pick is not None:
        bad = [p for p in pick if p not in networks]
        if len(pick) != 2 or bad:
            raise ValueError(f"pick must name two of {list(networks)}, got {pick!r}")
