"""CIFAR-10/100 read from torchvision's on-disk folders without running pickled code.

The "python version" of CIFAR is a set of pickles (a dict of a uint8 array and label lists per
file). torchvision reads them with `pickle.load`, which would run any code a tampered file
names, and accepts them only when their MD5 matches the published archive's, so files a user
(or a test) writes in the same format are refused. Here an unpickler that resolves only the
numpy names an array needs reads them; the shapes, dtypes and labels are checked instead of the
digest, with errors naming the file. (`download=True` still goes through torchvision, whose
download checks the archive's MD5.)
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

#: folder and files of each dataset, and the keys of its labels and class names.
CIFAR_FILES = {
    "cifar10": (
        "cifar-10-batches-py",
        (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"),
    ),
    "cifar100": ("cifar-100-python", ("train", "test", "meta")),
}
_LAYOUT = {
    # name: (train files, test files, meta file, label key, class-name key)
    "cifar10": (
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "batches.meta",
        "labels",
        "label_names",
    ),
    "cifar100": (("train",), ("test",), "meta", "fine_labels", "fine_label_names"),
}
#: The only globals a CIFAR pickle may name: how numpy rebuilds an array.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: a CIFAR file holds only arrays and lists"
            )
        return super().find_class(module, name)


def _load(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            out = _ArraysOnly(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable CIFAR batch: {exc}") from exc
    if not isinstance(out, dict):
        raise ValueError(f"{path} is not a CIFAR batch: expected a dict, got {type(out).__name__}")
    return out


def read_cifar(name: str, split: str, root: str | Path) -> tuple[np.ndarray, np.ndarray, tuple]:
    """(images N×3×32×32 uint8, labels N int64, class names) of `split` under `root`."""
    base, _ = CIFAR_FILES[name]
    train, test, meta_file, label_key, names_key = _LAYOUT[name]
    folder = Path(root) / base
    meta = _load(folder / meta_file)
    classes = tuple(str(c) for c in meta.get(names_key, ()))
    if not classes:
        raise ValueError(f"{folder / meta_file} has no {names_key!r}")
    images, labels = [], []
    for file in train if split == "train" else test:
        batch = _load(folder / file)
        data = np.asarray(batch.get("data"))
        ys = np.asarray(batch.get(label_key, []), dtype=np.int64)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise ValueError(
                f"{folder / file}: 'data' must be N×3072 uint8, got {data.shape} {data.dtype}"
            )
        if len(ys) != len(data) or (len(ys) and not 0 <= ys.min() <= ys.max() < len(classes)):
            raise ValueError(
                f"{folder / file}: {len(ys)} labels in [0, {len(classes)}) expected for "
                f"{len(data)} images"
            )
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(ys)
    return np.concatenate(images), np.concatenate(labels), classes
