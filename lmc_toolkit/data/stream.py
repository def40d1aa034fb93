"""Data too large to hold: a loader read batch by batch on every pass (`stream`).

A `Stream` wraps a re-iterable source of `(x, y)` batches (a `DataLoader`, a torch `Dataset`
batched in order, or any object whose `iter()` starts a fresh pass) and never keeps more than
one batch. What can stream: `evaluate`, the curvature operators (`Hessian`, `GGN`,
`EmpiricalFisher`: each product is one pass over the loader) and the landscape (`Evaluator`,
`interpolate`, `line`, `plane`: every point is scored on each batch as it arrives). What needs
the examples at random (training, pruning, alignment, BatchNorm recalibration, synthetic
data) refuses a stream by name: pass it a toolkit `Dataset` (`as_dataset`, or a subset).

What a stream needs from its source, since each pass must see the same examples in the same
order: a loader that does not shuffle (refused otherwise), and no random augmentation (which
cannot be seen from outside: it would make every pass, and so every product, differ).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils import data as tud

from lmc_toolkit.data import inputs
from lmc_toolkit.data.dataset import Dataset
from lmc_toolkit.data.inputs import (
    Inputs,
    cat,
    count,
    leaves,
    move,
    shape_of,
    take,
)
from lmc_toolkit.data.loaders import check_ordered, classes_of, read_batch


@dataclass(frozen=True, eq=False)
class Stream:
    """A source of `(x, y)` batches read afresh on every pass (see the module docstring).

    `n` is the number of examples of one pass, `classes` the class names (empty for float
    regression targets), `batch_size` the source's batch size where it has one."""

    source: Iterable[Any]
    n: int
    classes: tuple[str, ...]
    name: str
    regression: bool
    in_shape: tuple[int, ...] | dict[str, tuple[int, ...]]
    batch_size: int | None
    fingerprint: str

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return (
            f"Stream({self.name!r}, n={self.n}, shape={self.in_shape}, "
            f"classes={self.num_classes}, batch_size={self.batch_size})"
        )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """C×H×W of one image, the shape a registry model is built for (a `ValueError` for
        feature, token or dict inputs)."""
        return inputs.image_shape(self.in_shape)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def batches(
        self, device: torch.device | str = "cpu", batch_size: int | None = None
    ) -> Iterator[tuple[Inputs, Tensor]]:
        """One pass on `device`: the source's own batches, or with `batch_size` the same
        examples re-cut into batches of that size (the last one shorter), holding at most
        about two batches at a time. A pass that yields another number of examples than `n`
        (a source that changed) is an error, not a silent mismatch."""
        seen = 0
        pending: list[tuple[Inputs, Tensor]] = []
        held = 0
        for i, batch in enumerate(self.source):
            x, y = _pair(batch, i, self.name)
            seen += len(y)
            if batch_size is None:
                yield move(x, device), y.to(device)
                continue
            pending.append((x, y))
            held += len(y)
            while held >= batch_size:
                x_all, y_all = cat([p[0] for p in pending]), torch.cat([p[1] for p in pending])
                yield move(take(x_all, slice(0, batch_size)), device), y_all[:batch_size].to(device)
                rest = (take(x_all, slice(batch_size, None)), y_all[batch_size:])
                pending, held = ([rest] if held > batch_size else []), held - batch_size
        if pending:
            x_all, y_all = cat([p[0] for p in pending]), torch.cat([p[1] for p in pending])
            yield move(x_all, device), y_all.to(device)
        if seen != self.n:
            raise RuntimeError(
                f"stream {self.name!r} yielded {seen} examples on this pass, not the {self.n} "
                f"it holds: its source must give the same examples on every pass"
            )

    def head(self, k: int = 2) -> Dataset:
        """The first `k` examples (of the first batch), as a `Dataset`: for checking a model
        against the data before any pass."""
        x, y = _pair(next(iter(self.source)), 0, self.name)
        return Dataset(x=take(x, slice(0, k)), y=y[:k], classes=self.classes, name=self.name)


def stream(data: Any, *, classes: Sequence[str] | None = None, name: str | None = None) -> Stream:
    """`data` as a `Stream`, read batch by batch on every pass and never held whole.

    Args:
        data: A non-shuffling `DataLoader`, a torch `Dataset` (batched by 256 in index order) or
            a re-iterable of `(x, y)` batches (not a one-shot iterator or generator).
        classes: The class names (default: the source's `classes` attribute).
        name: The stream's name in reprs and records.

    Returns:
        A `Stream`; its length comes from the source's dataset where it has one, else from one
        counting pass.
    """
    if isinstance(data, Stream):
        return data
    loader: Iterable[Any]
    dataset: Any
    if isinstance(data, tud.DataLoader):
        check_ordered(data, "a streamed DataLoader")
        loader, dataset = data, data.dataset
    elif isinstance(data, tud.Dataset):
        loader, dataset = tud.DataLoader(data, batch_size=256, shuffle=False), data
    elif isinstance(data, Iterable) and not isinstance(data, str | bytes | Tensor | dict):
        if iter(data) is data:
            raise TypeError(
                f"a stream is read on every pass, so it needs a re-iterable source (a "
                f"DataLoader, a list of batches); got the one-shot {type(data).__name__}"
            )
        loader, dataset = data, None
    else:
        raise TypeError(
            f"stream takes a DataLoader, a torch Dataset or a re-iterable of (x, y) batches; "
            f"got {type(data).__name__}"
        )
    label = name or type(dataset if dataset is not None else data).__name__
    x, y = _pair(next(iter(loader)), 0, label)
    n = _length(loader, dataset)
    regression = y.is_floating_point()
    names = list(classes) if classes is not None else classes_of(dataset)
    if n is None or (names is None and not regression):
        n, top = _count(loader, label)
        names = names if names is not None else [str(c) for c in range(top + 1)]
    return Stream(
        source=loader,
        n=int(n),
        classes=() if regression else tuple(str(c) for c in names or ()),
        name=label,
        regression=regression,
        in_shape=shape_of(x),
        batch_size=getattr(loader, "batch_size", None) or count(x),
        fingerprint=_first_batch_hash(x, y, int(n), label),
    )


def _length(loader: Iterable[Any], dataset: Any) -> int | None:
    """The examples of one pass where the source says it without a pass, else None."""
    if not isinstance(dataset, Sized) or isinstance(dataset, tud.IterableDataset):
        return None
    if isinstance(loader, tud.DataLoader) and loader.drop_last:
        if loader.batch_size is None:
            return None  # a custom batch sampler: count
        return len(loader) * loader.batch_size  # the short last batch is dropped
    return len(dataset)


def _pair(batch: Any, i: int, name: str) -> tuple[Inputs, Tensor]:
    return read_batch(batch, i, f"stream {name!r}")


def _count(loader: Iterable[Any], name: str) -> tuple[int, int]:
    """(examples, largest label) of one pass."""
    n, top = 0, -1
    for i, batch in enumerate(loader):
        _, y = _pair(batch, i, name)
        n += len(y)
        if len(y) and not y.is_floating_point():
            top = max(top, int(y.max()))
    return n, top


def _first_batch_hash(x: Inputs, y: Tensor, n: int, name: str) -> str:
    """What names a stream in store keys: its name, length and first batch (reading all of
    it for a hash would cost a pass)."""
    h = hashlib.sha256(f"stream|{name}|{n}|".encode())
    for k, t in sorted({**leaves(x), "y": y}.items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{k}|{tuple(t.shape)}|{t.dtype}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]
