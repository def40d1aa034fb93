"""Read distilled sets published by the public distillation code bases, safely.

The formats, as their code saves them (images N×C×H×W, labels N integers):

- IDC (snu-mllab/Efficient-Dataset-Condensation): `data.pt` holding `[images, labels]`, pixels
  in [0, 1] (pass `file_stats="raw"`), multi-formation with `factor` f;
- DC/DSA/DM (VICO-UoE/DatasetCondensation): `res_<method>_<data>_<model>_<ipc>ipc.pt` holding
  `{"data": [[images, labels], ...one per experiment], "accs_all_exps": ...}`, normalized;
- MTT (GeorgeCazenavette/mtt-distillation): `images_best.pt` and `labels_best.pt` (or any
  `images_*.pt` with its `labels_*.pt` twin, or their folder), normalized;
- an `lmc_toolkit` dataset file written by `Dataset.save`.

Every file is opened with weights-only loading: a payload with pickled objects is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lmc_toolkit.data.dataset import Dataset, load_dataset
from lmc_toolkit.store.files import StoreError, safe_torch_load
from lmc_toolkit.synth import multiformation

Stats = tuple[Sequence[float], Sequence[float]]


def load_distilled(
    path: str | Path,
    factor: int = 1,
    *,
    target: Dataset | None = None,
    classes: Sequence[str] | None = None,
    labels: str | Path | None = None,
    experiment: int = 0,
    file_stats: Stats | str | None = None,
) -> Dataset:
    """A distilled set from `path` as a `Dataset` (decoded when `factor` > 1).

    Args:
        path: A file of DC/DSA/DM, MTT, IDC or this toolkit's own format.
        factor: The multi-formation factor the images were stored with (IDC).
        target: The real dataset the set distills: the images must have its shape, the labels
            must cover exactly its classes, and the set inherits its class names and
            normalization.
        classes: The class names without `target` (default: "0" ... "k-1").
        labels: The label file, when `path` holds only images (MTT).
        experiment: Which of the sets in a DC/DSA/DM file.
        file_stats: The pixels' normalization in the file: `(mean, std)`, or "raw" for pixels in
            [0, 1] (default: already in the target's normalized space).

    Returns:
        The synthetic `Dataset`.
    """
    multiformation.check_factor(factor)
    if target is not None and not isinstance(target, Dataset):
        raise TypeError(f"target must be a Dataset or None, got {type(target).__name__}")
    if target is not None and classes is not None:
        raise ValueError("give target= or classes=, not both (the target names the classes)")
    path = Path(path)
    x, y, fmt = _read(path, labels, experiment)
    x, y = _check_tensors(path, x, y)
    names = _class_names(path, y, target, classes)
    if file_stats is not None:
        x = _renormalize(x, file_stats, target)
    stored = len(x)
    x, y = multiformation.decode_by_class(x, y, factor)
    if target is not None and tuple(x.shape[1:]) != target.in_shape:
        raise ValueError(
            f"{path} holds images of shape {tuple(x.shape[1:])} but {target.name!r} has "
            f"{target.in_shape}"
        )
    meta: dict[str, Any] = {}
    if target is not None:
        meta.update({k: target.meta[k] for k in ("mean", "std") if k in target.meta})
    per_class = torch.bincount(y, minlength=len(names))
    meta.update(
        method="loaded",
        format=fmt,
        path=str(path),
        factor=factor,
        stored_images=stored,
        ipc=int(per_class.max()) // (factor * factor),
        experiment=experiment if fmt == "dc" else None,
        source={"name": None if target is None else target.name},
    )
    name = f"{target.name}-distilled" if target is not None else path.stem
    return Dataset(x=x.float(), y=y, classes=names, name=name, meta=meta)


def _load(path: Path) -> Any:
    try:
        return safe_torch_load(path)
    except StoreError as exc:
        raise ValueError(
            f"refusing to load {path}: it is not a tensors-only file (it may hold pickled Python "
            f"objects, which are never unpickled here, or be corrupted); cause: {exc.__cause__}"
        ) from exc


def _read(path: Path, labels: str | Path | None, experiment: int) -> tuple[Any, Any, str]:
    """The raw images and labels of any supported format, and the format's name."""
    if path.is_dir():
        images = path / "images_best.pt"
        if not images.exists():
            raise FileNotFoundError(f"{path} is a folder without images_best.pt (MTT layout)")
        path = images
    payload = _load(path)
    if labels is not None:
        return payload, _load(Path(labels)), "images+labels"
    if isinstance(payload, Tensor):
        twin = path.with_name(path.name.replace("images", "labels", 1))
        if "images" not in path.name or not twin.exists():
            raise ValueError(
                f"{path} holds only images; pass labels=<file> (MTT saves labels_best.pt "
                "next to images_best.pt)"
            )
        return payload, _load(twin), "mtt"
    if isinstance(payload, Mapping) and payload.get("format") == "lmc_toolkit.dataset/1":
        data = load_dataset(path)
        return data.x, data.y, "lmc_toolkit"
    if isinstance(payload, Mapping) and "data" in payload:
        sets = payload["data"]
        if not isinstance(sets, Sequence) or not sets:
            raise ValueError(f"{path}: 'data' should be a list of [images, labels] sets")
        if not -len(sets) <= experiment < len(sets):
            raise ValueError(f"experiment={experiment} but {path} holds {len(sets)} sets")
        pair = sets[experiment]
        if not isinstance(pair, Sequence) or len(pair) < 2:
            raise ValueError(f"{path}: set {experiment} is not an [images, labels] pair")
        return pair[0], pair[1], "dc"
    if isinstance(payload, Sequence) and len(payload) == 2:
        return payload[0], payload[1], "idc"
    raise ValueError(
        f"{path} is not a known distilled-set format: expected [images, labels] (IDC), "
        "{'data': [[images, labels], ...]} (DC/DSA/DM), an images tensor with a labels file "
        f"(MTT) or an lmc_toolkit dataset; got {type(payload).__name__}"
    )


def _check_tensors(path: Path, x: Any, y: Any) -> tuple[Tensor, Tensor]:
    if not isinstance(x, Tensor) or x.dim() != 4 or not x.is_floating_point():
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{path}: the images must be a float tensor N×C×H×W, got {got}")
    if not isinstance(y, Tensor):
        raise ValueError(f"{path}: the labels must be a tensor, got {type(y).__name__}")
    if y.dim() != 1:
        raise ValueError(
            f"{path}: the labels must be one class index per image (shape (N,)), got shape "
            f"{tuple(y.shape)}; soft labels are not supported"
        )
    if y.is_floating_point() and not bool((y == y.round()).all()):
        raise ValueError(f"{path}: the labels are not whole numbers (dtype {y.dtype})")
    if len(y) != len(x):
        raise ValueError(f"{path} holds {len(x)} images but {len(y)} labels")
    if len(y) == 0:
        raise ValueError(f"{path} holds no images")
    return x.detach().cpu(), y.detach().cpu().long()


def _class_names(
    path: Path, y: Tensor, target: Dataset | None, classes: Sequence[str] | None
) -> tuple[str, ...]:
    """The class names, after checking the labels against them."""
    low, high = int(y.min()), int(y.max())
    if target is not None:
        names = target.classes
    elif classes is not None:
        names = tuple(str(c) for c in classes)
    else:
        names = tuple(str(c) for c in range(high + 1))
    if low < 0 or high >= len(names):
        raise ValueError(
            f"{path} has labels in [{low}, {high}] but the target has {len(names)} classes "
            f"(labels 0 to {len(names) - 1})"
        )
    present = torch.bincount(y, minlength=len(names))
    missing = [names[c] for c in range(len(names)) if present[c] == 0]
    if missing:
        raise ValueError(
            f"the classes of {path} do not match the target: {len(missing)} of its "
            f"{len(names)} classes have no image (e.g. {missing[:3]}); the file has "
            f"{int((present > 0).sum())} classes"
        )
    return names


def _renormalize(x: Tensor, file_stats: Stats | str, target: Dataset | None) -> Tensor:
    """Pixels normalized with `file_stats` → pixels normalized with the target's statistics."""
    c = x.shape[1]
    if file_stats == "raw":
        file_stats = ((0.0,) * c, (1.0,) * c)
    if isinstance(file_stats, str) or len(file_stats) != 2:
        raise ValueError(f"file_stats must be (mean, std) or 'raw', got {file_stats!r}")
    if target is None or "mean" not in target.meta or "std" not in target.meta:
        raise ValueError("file_stats needs a target= whose meta has its mean and std")
    src_mean, src_std = (torch.tensor(v, dtype=x.dtype).view(1, -1, 1, 1) for v in file_stats)
    dst_mean, dst_std = (
        torch.tensor(target.meta[k], dtype=x.dtype).view(1, -1, 1, 1) for k in ("mean", "std")
    )
    for t in (src_mean, src_std, dst_mean, dst_std):
        if t.shape[1] != c:
            raise ValueError(f"normalization statistics have {t.shape[1]} channels, images {c}")
    return (x * src_std + src_mean - dst_mean) / dst_std
