"""The one data entrance: whatever data a user has, as the toolkit's `Dataset`.

Every function that takes data (training, evaluation, interpolation, the slices, the
curvature operators, alignment, pruning) passes it through `as_dataset` first, so each accepts

- a toolkit `Dataset` (the fast path: returned as it is);
- an `(X, Y)` pair of tensors (X may be a dict of tensors: `data.inputs`);
- a torch `Dataset` (map-style, indexed 0..len-1, or iterable) yielding `(x, y)` examples;
- a `DataLoader` or any other iterable of `(x, y)` batches.

Inputs may have any shape (N×D features, N×C×H×W images, N×T token ids) and may be dicts of
tensors, for models whose `forward` takes a dict; targets are class
labels (long) or regression values (float). The batches are read once, in order, into tensors
on the CPU: the toolkit then batches them itself with its seeded generator. What it needs from
a loader where results must be reproducible (`ordered=True`: training and pruning): the same
examples in the same order on every pass, so a loader that shuffles is refused there (the
toolkit shuffles by `data_seed` itself). A loader's random augmentations cannot be seen from
outside: they are read once, as the examples of that pass.

Data too large to hold goes in as a `Stream` (`data.stream`), which `as_data` lets through to
the functions that read batch by batch and `as_dataset` refuses by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias

import torch
from torch import Tensor
from torch.utils import data as tud

from lmc_toolkit.data.dataset import Dataset
from lmc_toolkit.data.inputs import Inputs, cat, check_inputs, count, move, shape_of
from lmc_toolkit.data.loaders import as_targets, check_ordered, classes_of, read_batch
from lmc_toolkit.data.stream import Stream

#: the functions that read a `Stream` batch by batch (the others need a `Dataset`)
STREAMING = "evaluate, Hessian, GGN, EmpiricalFisher, Evaluator, interpolate, line and plane"

#: what `as_dataset` accepts, for type hints
DataLike: TypeAlias = (
    Dataset | Stream | tuple[Inputs, Tensor] | tud.Dataset | tud.DataLoader | Iterable[Any]
)


def as_dataset(
    data: Any, what: str = "data", *, ordered: bool = False, classes: Sequence[str] | None = None
) -> Dataset:
    """`data` (any of the module docstring's kinds) as a non-empty toolkit `Dataset`.

    Args:
        data: A `Dataset`, a `DataLoader`, an iterable of `(x, y)` batches, an `(X, Y)` pair or
            a torch `Dataset`.
        what: Names the argument in errors.
        ordered: Refuse a loader that shuffles (where results must be reproducible).
        classes: The class names of integer labels (default: the source's `classes` attribute,
            else "0".."K-1").

    Returns:
        A `Dataset` held in memory.
    """
    if isinstance(data, Dataset):
        result = data
    elif isinstance(data, Stream):
        raise TypeError(
            f"{what} is a Stream ({data.name!r}, {data.n} examples), read batch by batch; this "
            f"needs its examples at random, so pass a toolkit Dataset (as_dataset(loader), or "
            f"a subset that fits in memory). Streams go to {STREAMING}"
        )
    elif (
        isinstance(data, tuple | list)
        and len(data) == 2
        and isinstance(data[0], Tensor | Mapping)
        and isinstance(data[1], Tensor)
    ):
        result = _from_tensors(data[0], data[1], "tensors", classes, what)
    elif isinstance(data, tud.DataLoader):
        if ordered:
            check_ordered(data, what)
        source = data.dataset
        result = _from_batches(data, type(source).__name__, classes or classes_of(source), what)
    elif isinstance(data, tud.Dataset):
        loader = tud.DataLoader(data, batch_size=256, shuffle=False)
        result = _from_batches(loader, type(data).__name__, classes or classes_of(data), what)
    elif isinstance(data, str | bytes | Tensor | dict) or not isinstance(data, Iterable):
        raise TypeError(
            f"{what} must be a toolkit Dataset, an (X, Y) pair of tensors, a torch Dataset, a "
            f"DataLoader or an iterable of (x, y) batches; got {_kind(data)}"
        )
    else:
        result = _from_batches(data, "batches", classes, what)
    if len(result) == 0:
        raise ValueError(f"{what} ({result.name!r}) is empty: it needs at least one example")
    return result


def as_data(data: Any, what: str = "data") -> Dataset | Stream:
    """`data` as a toolkit `Dataset`, or a `Stream` left as it is: the entrance of the
    functions that can read their data batch by batch (`STREAMING`)."""
    return data if isinstance(data, Stream) else as_dataset(data, what)


def _from_batches(
    batches: Iterable[Any], name: str, classes: Sequence[str] | None, what: str
) -> Dataset:
    xs, ys = [], []
    for i, batch in enumerate(batches):
        x, y = read_batch(batch, i, what)
        xs.append(move(x, "cpu"))
        ys.append(y.detach().cpu())
    if not xs:
        raise ValueError(f"{what} ({name!r}) is empty: it yielded no batch")
    shapes = {repr(shape_of(x)) for x in xs}
    if len(shapes) > 1:
        raise ValueError(f"{what}: the batches' inputs differ in shape: {sorted(shapes)}")
    return _from_tensors(cat(xs), torch.cat(ys), name, classes, what)


def _from_tensors(
    x: Inputs, y: Tensor, name: str, classes: Sequence[str] | None, what: str
) -> Dataset:
    x = check_inputs(x, f"{what}'s inputs")
    if count(x) != len(y):
        raise ValueError(f"{what} has {count(x)} inputs but {len(y)} targets")
    y = as_targets(y)
    if y.dtype == torch.long and y.dim() == 1:
        if classes is None:
            classes = [str(c) for c in range(int(y.max()) + 1 if len(y) else 0)]
        return Dataset(x=x, y=y, classes=tuple(classes), name=name)
    if y.is_floating_point():
        return Dataset(x=x, y=y, classes=(), name=name)
    raise ValueError(
        f"{what}: targets must be integer class labels (N) or float regression values (N×…), "
        f"got {tuple(y.shape)} {y.dtype}"
    )


def _kind(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return type(value).__name__
