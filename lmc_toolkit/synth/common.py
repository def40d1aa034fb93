"""What every synthetic-data method shares: naming its source, caching its result, recording how.

A synthetic set is a `Dataset` whose `meta` says how it was made (method, ipc, iterations, seeds,
settings) and from what (the source dataset's name, split, size and a fingerprint of its
tensors). Each method describes one run by a frozen config dataclass; `cached_set` stores the
result in the run store under that config, so the same call twice computes once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from lmc_toolkit.data.dataset import Dataset, dataset_from_dict, dataset_to_dict
from lmc_toolkit.data.entrance import DataLike, as_dataset
from lmc_toolkit.store.runs import Store
from lmc_toolkit.training.identity import data_fingerprint, state_hash

#: Keys of the source's `meta` that a synthetic set inherits (its pixels live in the same space).
_INHERITED_META = ("mean", "std")


@dataclasses.dataclass(frozen=True)
class Source:
    """The identity of the real dataset a synthetic set is made from (part of every run key)."""

    name: str
    split: str | None
    n: int
    fingerprint: str

    @staticmethod
    def of(data: Dataset) -> Source:
        split = data.meta.get("split")
        return Source(
            data.name, None if split is None else str(split), len(data), data_fingerprint(data)
        )


def module_fingerprint(module: nn.Module) -> str:
    """A short hash of a network's class and state (for caching results that depend on it)."""
    return hashlib.sha256(f"{type(module).__qualname__}:{state_hash(module)}".encode()).hexdigest()[
        :16
    ]


def check_ipc(data: DataLike, ipc: int, what: str = "ipc") -> Dataset:
    """Raise before any work when `ipc` is not a positive int or a class has fewer images;
    the data as a toolkit `Dataset` (a loader read once)."""
    data = as_dataset(data, "the source data")
    if not isinstance(ipc, int) or isinstance(ipc, bool) or ipc < 1:
        raise ValueError(f"{what} (images per class) must be an int ≥ 1, got {ipc!r}")
    counts = data.class_counts()
    short = [(c, int(n)) for c, n in enumerate(counts) if n < ipc]
    if short:
        c, n = short[0]
        raise ValueError(
            f"{what}={ipc} but class {data.classes[c]!r} of {data.name!r} has only {n} images "
            f"({len(short)} classes have fewer than {ipc}); use ipc ≤ {int(counts.min())}"
        )
    return data


def check_seed(seed: int, what: str = "seed") -> int:
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"{what} must be an int, got {seed!r}")
    return seed


def class_rows(data: Dataset) -> list[Tensor]:
    """For each class, the (CPU) row indices of its images in file order."""
    y = data.y.cpu()
    return [torch.nonzero(y == c).flatten() for c in range(data.num_classes)]


def synthetic_dataset(
    x: Tensor, y: Tensor, source: Dataset, method: str, ipc: int, meta: Mapping[str, Any]
) -> Dataset:
    """Wrap made images as a `Dataset` in the source's pixel space, recording how they were made."""
    record: dict[str, Any] = {k: source.meta[k] for k in _INHERITED_META if k in source.meta}
    record.update(
        method=method,
        ipc=ipc,
        source={
            "name": source.name,
            "split": source.meta.get("split"),
            "n": len(source),
            "fingerprint": data_fingerprint(source),
        },
    )
    record.update(meta)
    # JSON-normalized now (tuples become lists), so a set reloaded from the store is identical;
    # this also fails here, not when saving, if something is not JSON-like.
    record = json.loads(json.dumps(record))
    return Dataset(
        x=x.detach(),
        y=y.detach().long(),
        classes=source.classes,
        name=f"{source.name}-{method}-ipc{ipc}",
        meta=record,
    )


def cached_set(
    config: Any,
    compute: Callable[[], Dataset],
    store: Store | None,
    device: torch.device,
    recompute: bool = False,
) -> Dataset:
    """Compute the set, or load it from `store` under `config`; either way on `device`."""
    if store is None:
        return compute().to(device)
    if not isinstance(store, Store):
        raise TypeError(f"store must be an lmc_toolkit Store or None, got {type(store).__name__}")
    out = store.cached(
        config, compute, encode=dataset_to_dict, decode=dataset_from_dict, recompute=recompute
    )
    return out.to(device)


def generator(seed: int, stream: str) -> torch.Generator:
    """A CPU generator for one named random stream of a run (independent streams per name)."""
    digest = hashlib.sha256(f"lmc_toolkit/synth/{stream}/{int(seed)}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def draw_seed(g: torch.Generator) -> int:
    """A fresh 31-bit seed drawn from `g` (for a network init or an augmentation draw)."""
    return int(torch.randint(0, 2**31 - 1, (1,), generator=g))
