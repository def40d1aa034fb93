"""Datasets as tensors: the `Dataset` type, seeded batching with tensor augmentation, and files.

Everything the toolkit trains on is a `Dataset`: inputs `x` (N×C×H×W normalized images, N×D
features, N×T token ids, or a dict of such tensors: `data.inputs`) and targets `y` (N class labels, long, or float regression targets)
held as tensors, on the CPU or on the device of the model; `data.entrance.as_dataset` turns a
`DataLoader`, an `(X, Y)` pair or a torch `Dataset` into one. Batches are
drawn by an explicit `torch.Generator`, so the data order and the augmentation draw (the "SGD
noise" of instability analysis) are fixed by a seed and nothing else. Named datasets are read
by `lmc_toolkit.data.sources`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

import torch
from torch import Tensor

from lmc_toolkit.data import inputs
from lmc_toolkit.data.inputs import (
    Inputs,
    check_inputs,
    count,
    describe,
    device_of,
    move,
    shape_of,
    take,
)
from lmc_toolkit.store.files import atomic_torch_save, safe_torch_load

Augmentation = Literal["none", "crop", "flip", "crop+flip"]
AUGMENTATIONS: tuple[Augmentation, ...] = get_args(Augmentation)


_FILE_FORMAT = "lmc_toolkit.dataset/1"


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images and labels as tensors, with class names, a name and provenance metadata.

    `meta` is JSON-like: the normalization (`mean`, `std`), the split, and for synthetic sets
    how they were made. Indexing with an int gives one `(x, y)` pair; with a slice, a sequence
    or a tensor of indices it gives a new `Dataset`.
    """

    x: Inputs
    y: Tensor
    classes: tuple[str, ...]
    name: str
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        x, y = check_inputs(self.x), self.y
        object.__setattr__(self, "x", x)
        classification = isinstance(y, Tensor) and y.dim() == 1 and y.dtype == torch.long
        regression = isinstance(y, Tensor) and y.dim() >= 1 and y.is_floating_point()
        if not (classification or regression):
            got = (tuple(y.shape), y.dtype) if isinstance(y, Tensor) else type(y).__name__
            raise ValueError(
                f"Dataset.y must be a 1-D long tensor of class labels or a float tensor N×… of "
                f"regression targets, got {got}"
            )
        if count(x) != len(y):
            raise ValueError(f"Dataset has {count(x)} inputs but {len(y)} targets")
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        if regression and self.classes:
            raise ValueError(
                f"{self.name!r} has float (regression) targets, so it takes no classes; got "
                f"{len(self.classes)}"
            )
        if classification and len(y) and (int(y.min()) < 0 or int(y.max()) >= len(self.classes)):
            raise ValueError(
                f"labels of {self.name!r} must lie in [0, {len(self.classes) - 1}] for "
                f"{len(self.classes)} classes, got range [{int(y.min())}, {int(y.max())}]"
            )

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, n={len(self)}, shape={self.in_shape}, "
            f"classes={self.num_classes}, device={self.device})"
        )

    def __getitem__(self, index: int | slice | Sequence[int] | Tensor) -> Any:
        if isinstance(index, int):
            return take(self.x, index), self.y[index]
        return self.subset(index)

    @property
    def in_shape(self) -> tuple[int, ...] | dict[str, tuple[int, ...]]:
        """The shape of one input: C×H×W for images, D for features, T for token ids (name →
        shape for dict inputs)."""
        return shape_of(self.x)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """C×H×W of one image, the shape a registry model is built for (a `ValueError` for
        feature, token or dict inputs)."""
        return inputs.image_shape(self.in_shape)

    @property
    def num_classes(self) -> int:
        """How many classes the labels name (0 for regression targets)."""
        return len(self.classes)

    @property
    def regression(self) -> bool:
        """True when the targets are float values, not class labels."""
        return self.y.is_floating_point()

    @property
    def device(self) -> torch.device:
        return device_of(self.x)

    def subset(self, index: slice | Sequence[int] | Tensor) -> Dataset:
        """The images at `index` (a slice, indices or a bool mask), as a new `Dataset`."""
        if not isinstance(index, slice):
            index = torch.as_tensor(index, device=self.device)
            if index.dtype != torch.bool:
                index = index.long()
        return replace(self, x=take(self.x, index), y=self.y[index])

    def to(self, device: torch.device | str) -> Dataset:
        """The same data on `device` (no copy when it is already there)."""
        device = torch.device(device)
        if self.device == device:
            return self
        return replace(self, x=move(self.x, device), y=self.y.to(device))

    def class_counts(self) -> Tensor:
        """How many images each class has."""
        if self.regression:
            raise ValueError(f"{self.name!r} has regression targets: it has no classes to count")
        return torch.bincount(self.y.cpu(), minlength=self.num_classes)

    def batches(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        *,
        shuffle: bool = True,
        augment: str = "none",
        drop_last: bool = False,
        start: int = 0,
    ) -> Iterator[tuple[Inputs, Tensor]]:
        """Iterate over `(x, y)` batches; see `batches`."""
        return batches(
            self,
            batch_size,
            generator,
            shuffle=shuffle,
            augment=augment,
            drop_last=drop_last,
            start=start,
        )

    def save(self, path: str | Path) -> Path:
        """Write the dataset to one file (atomically); read it back with `Dataset.load`."""
        return save_dataset(self, path)

    @staticmethod
    def load(path: str | Path) -> Dataset:
        """Read a dataset written by `Dataset.save`, without unpickling arbitrary objects."""
        return load_dataset(path)


def check_nonempty(data: Dataset, what: str = "data") -> None:
    """Raise a clear error for an empty dataset before any work starts."""
    if not isinstance(data, Dataset):
        raise TypeError(f"{what} must be an lmc_toolkit Dataset, got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError(f"{what} ({data.name!r}) is empty: it needs at least one image")


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """How many batches an epoch over `n` images has."""
    check_batch_size(batch_size)
    return n // batch_size if drop_last else math.ceil(n / batch_size)


def check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")


def batches(
    data: Dataset,
    batch_size: int,
    generator: torch.Generator | None = None,
    *,
    shuffle: bool = True,
    augment: str = "none",
    drop_last: bool = False,
    start: int = 0,
) -> Iterator[tuple[Inputs, Tensor]]:
    """Iterate over one epoch of `(x, y)` batches.

    The order (with `shuffle`) and the augmentation draw come only from `generator`: the
    permutation is drawn first, then the per-image augmentation parameters for the whole
    epoch, so `start=k` skips k batches without changing what the later batches are.
    `augment` is one of `AUGMENTATIONS`: random crop with padding (H/8, filled with the
    normalized black) and horizontal flip.
    """
    check_nonempty(data)
    check_batch_size(batch_size)
    if augment not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {augment!r}")
    if (shuffle or augment != "none") and generator is None:
        raise ValueError("shuffling or augmenting needs an explicit torch.Generator (generator=)")
    images = data.x if isinstance(data.x, Tensor) else None
    if augment != "none" and (
        images is None or images.dim() != 4 or not images.is_floating_point()
    ):
        raise ValueError(
            f"augment={augment!r} crops and flips images: it needs float N×C×H×W inputs, got "
            f"{describe(data.x)}; pass augment='none'"
        )
    n = len(data)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    flips = torch.rand(n, generator=generator) < 0.5 if "flip" in augment else None
    crop = images is not None and "crop" in augment
    pad = max(1, round(images.shape[2] / 8)) if crop and images is not None else 0
    shifts = torch.randint(-pad, pad + 1, (n, 2), generator=generator) if crop else None
    fill = _black(data, images.shape[1]) if crop and images is not None else None
    device = data.device
    for b in range(start, num_batches(n, batch_size, drop_last)):
        positions = order[b * batch_size : (b + 1) * batch_size]
        idx = positions.to(device)
        y = data.y[idx]
        if images is None or (shifts is None and flips is None):
            yield take(data.x, idx), y
            continue
        x = images[idx]
        if shifts is not None:
            x = shift_crop(x, shifts[positions].to(device), pad, fill)
        if flips is not None:
            x = torch.where(flips[positions].to(device)[:, None, None, None], x.flip(-1), x)
        yield x, y


def shift_crop(x: Tensor, shifts: Tensor, pad: int, fill: Tensor | None = None) -> Tensor:
    """Random-crop-with-padding as a per-image shift: `shifts[i] = (dy, dx)` in [-pad, pad]."""
    b, c, h, w = x.shape
    fill = torch.zeros(c, device=x.device, dtype=x.dtype) if fill is None else fill
    padded = fill.to(x).view(1, c, 1, 1).repeat(b, 1, h + 2 * pad, w + 2 * pad)
    padded[:, :, pad : pad + h, pad : pad + w] = x
    rows = torch.arange(h, device=x.device) + pad + shifts[:, :1]
    cols = torch.arange(w, device=x.device) + pad + shifts[:, 1:]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chans = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chans, rows[:, None, :, None], cols[:, None, None, :]]


def _black(data: Dataset, c: int) -> Tensor:
    """The normalized value of a black pixel in each of the `c` channels (0 when no
    normalization is known)."""
    mean, std = data.meta.get("mean"), data.meta.get("std")
    if mean is None or std is None or len(mean) != c:
        return torch.zeros(c, device=data.device)
    return -torch.tensor(mean, device=data.device) / torch.tensor(std, device=data.device)


def dataset_to_dict(data: Dataset) -> dict[str, Any]:
    """`data` as CPU tensors and primitives (metadata as JSON): what files and the run store hold."""
    return {
        "x": _to_file(data.x),
        "y": data.y.detach().cpu().contiguous(),
        "classes": list(data.classes),
        "name": data.name,
        "meta": json.dumps(dict(data.meta), sort_keys=True),
    }


def _to_file(x: Inputs) -> Inputs:
    if isinstance(x, Mapping):
        return {k: t.detach().cpu().contiguous() for k, t in x.items()}
    return x.detach().cpu().contiguous()


def dataset_from_dict(d: Mapping[str, Any]) -> Dataset:
    """The `Dataset` of a `dataset_to_dict` record."""
    return Dataset(
        x=d["x"],
        y=d["y"],
        classes=tuple(d["classes"]),
        name=d["name"],
        meta=json.loads(d["meta"]),
    )


def save_dataset(data: Dataset, path: str | Path) -> Path:
    """Write `data` to `path` as tensors plus JSON metadata, atomically."""
    return atomic_torch_save({"format": _FILE_FORMAT, **dataset_to_dict(data)}, path)


def load_dataset(path: str | Path) -> Dataset:
    """Read a dataset written by `save_dataset` (weights-only loading: no pickled code)."""
    payload = safe_torch_load(path)
    if not isinstance(payload, dict) or payload.get("format") != _FILE_FORMAT:
        raise ValueError(f"{path} is not an lmc_toolkit dataset file (format {_FILE_FORMAT!r})")
    return dataset_from_dict(payload)


def normalize(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """Per-channel `(images - mean) / std` for an N×C×H×W float tensor in [0, 1]."""
    m = torch.tensor(mean, dtype=images.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=images.dtype).view(1, -1, 1, 1)
    return (images - m) / s


def stratified_split(
    y: Tensor, test_per_class: Sequence[int], seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Train and test indices: per class, a seeded permutation of that class's rows (in file
    order) gives its first `test_per_class[c]` rows to test and the rest to train; both index
    lists are returned sorted, so each split keeps the file order."""
    g = torch.Generator().manual_seed(seed)
    train, test = [], []
    for c, n_test in enumerate(test_per_class):
        rows = torch.nonzero(y == c).flatten()
        perm = rows[torch.randperm(len(rows), generator=g)]
        test.append(perm[:n_test])
        train.append(perm[n_test:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values
