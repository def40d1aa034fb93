"""Every dataset path, on small files written in each dataset's real on-disk format.

Nothing is downloaded: torchvision reads the files we write. CIFAR's loader checks the MD5 sums
of the official archives, which small test files cannot match, so those tests replace only the
checksum function with an existence check; the parsing is torchvision's own.
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from helpers import write_idx

from lmc_toolkit import data as D
from lmc_toolkit.data import sources


def _mnist_files(folder, rng, n_train=30, n_test=20, gz=False):
    ext = ".gz" if gz else ""
    images = {
        s: rng.integers(0, 256, (n, 28, 28)) for s, n in (("train", n_train), ("t10k", n_test))
    }
    labels = {s: np.arange(len(v)) % 10 for s, v in images.items()}
    for s in ("train", "t10k"):
        write_idx(folder / f"{s}-images-idx3-ubyte{ext}", images[s], gz)
        write_idx(folder / f"{s}-labels-idx1-ubyte{ext}", labels[s], gz)
    return images, labels


@pytest.mark.parametrize(
    ("name", "folder"), [("mnist-full", "MNIST"), ("fashion-mnist", "FashionMNIST")]
)
def test_torchvision_mnist_formats(tmp_path, rng, name, folder):
    images, labels = _mnist_files(tmp_path / folder / "raw", rng)
    for split, key in (("train", "train"), ("test", "t10k")):
        ds = D.load(name, split, root=tmp_path)
        assert ds.name == name and ds.in_shape == (1, 28, 28) and ds.num_classes == 10
        assert ds.y.tolist() == labels[key].tolist()
        mean, std = ds.meta["mean"][0], ds.meta["std"][0]
        pixels = ds.x[:, 0] * std + mean
        assert torch.allclose(pixels * 255, torch.from_numpy(images[key]).float(), atol=1e-3)


def test_debian_fashion_mnist_layout(tmp_path, rng, monkeypatch):
    _, labels = _mnist_files(tmp_path, rng, gz=True)
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", tmp_path)
    ds = D.load("fashion-mnist", "test")
    assert ds.meta["source"] == str(tmp_path) and len(ds) == 20
    assert ds.y.tolist() == labels["t10k"].tolist()
    assert ds.classes[0] == "T-shirt/top"


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        D.load("fashion-mnist")


@pytest.mark.skipif(
    not sources.DEBIAN_FASHION_MNIST.is_dir(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_real_debian_fashion_mnist():
    test = D.load("fashion-mnist", "test")
    assert len(test) == 10_000 and test.class_counts().tolist() == [1000] * 10


def test_truncated_idx_is_refused(tmp_path, rng):
    write_idx(tmp_path / "x", rng.integers(0, 256, (3, 4, 4)))
    (tmp_path / "x").write_bytes((tmp_path / "x").read_bytes()[:-5])
    with pytest.raises(ValueError, match="truncated"):
        sources.read_idx(tmp_path / "x")


def _pickle(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def test_cifar10_format(tmp_path, rng):
    base = tmp_path / "cifar-10-batches-py"
    names = [f"c{i}" for i in range(10)]
    batches = {}
    for file in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        data = rng.integers(0, 256, (4, 3072)).astype(np.uint8)
        batches[file] = (data, [int(v) for v in rng.integers(0, 10, 4)])
        _pickle(base / file, {"data": data, "labels": batches[file][1]})
    _pickle(base / "batches.meta", {"label_names": names})
    train, test = (
        D.load("cifar10", "train", root=tmp_path),
        D.load("cifar10", "test", root=tmp_path),
    )
    assert len(train) == 20 and len(test) == 4 and train.in_shape == (3, 32, 32)
    assert train.classes == tuple(names)
    assert test.y.tolist() == batches["test_batch"][1]
    mean = torch.tensor(train.meta["mean"]).view(3, 1, 1)
    std = torch.tensor(train.meta["std"]).view(3, 1, 1)
    expected = torch.from_numpy(batches["test_batch"][0][1].reshape(3, 32, 32)).float()
    assert torch.allclose((test.x[1] * std + mean) * 255, expected, atol=1e-3)


def test_cifar100_format(tmp_path, rng):
    base = tmp_path / "cifar-100-python"
    names = [f"f{i}" for i in range(100)]
    for file, n in (("train", 6), ("test", 3)):
        labels = [int(v) for v in rng.integers(0, 100, n)]
        _pickle(
            base / file,
            {"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8), "fine_labels": labels},
        )
    _pickle(base / "meta", {"fine_label_names": names})
    ds = D.load("cifar100", "test", root=tmp_path)
    assert len(ds) == 3 and ds.num_classes == 100 and ds.classes[7] == "f7"


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar_files_that_name_code_or_have_the_wrong_shape_are_refused(tmp_path, rng):
    base = tmp_path / "cifar-10-batches-py"
    for file in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        data = rng.integers(0, 256, (2, 3072)).astype(np.uint8)
        _pickle(base / file, {"data": data, "labels": [0, 1]})
    _pickle(base / "batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
    assert len(D.load("cifar10", "test", root=tmp_path)) == 2
    _pickle(base / "test_batch", {"data": _RunsCode(), "labels": [0]})
    with pytest.raises(ValueError, match="refusing to load .*system"):
        D.load("cifar10", "test", root=tmp_path)
    _pickle(base / "test_batch", {"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]})
    with pytest.raises(ValueError, match="N×3072 uint8"):
        D.load("cifar10", "test", root=tmp_path)
    _pickle(base / "test_batch", {"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]})
    with pytest.raises(ValueError, match=r"labels in \[0, 10\)"):
        D.load("cifar10", "test", root=tmp_path)


def test_torchvision_sets_need_a_root():
    with pytest.raises(ValueError, match="pass root="):
        D.load("cifar10")


@pytest.mark.parametrize("n", [10, 100])
def test_imagenet_subsets_have_the_study_synsets(n):
    synsets = sources.imagenet_subset(n)
    assert len(synsets) == len(set(synsets)) == n
    assert synsets[0] == "n02869837" and all(s.startswith("n") and len(s) == 9 for s in synsets)


def test_imagenet10_folder(tmp_path, rng):
    from PIL import Image

    synsets = sources.imagenet_subset(10)
    for split in ("train", "val"):
        for s in synsets:
            folder = tmp_path / split / s
            folder.mkdir(parents=True)
            for j in range(2):
                pixels = rng.integers(0, 256, (30 + j, 40, 3)).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{s}_{j}.JPEG")
        (tmp_path / split / "n99999999").mkdir()  # a class outside the subset is ignored
        Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(
            tmp_path / split / "n99999999" / "a.png"
        )
    ds = D.load("imagenet10", "test", root=tmp_path, size=16, progress=False, in_memory=True)
    assert len(ds) == 20 and ds.in_shape == (3, 16, 16) and ds.classes == synsets
    assert ds.y.tolist() == [i // 2 for i in range(20)]
    # by default the folders are read lazily, batch by batch, as the same normalized images
    lazy = D.load("imagenet10", "test", root=tmp_path, size=16, batch_size=6)
    assert isinstance(lazy, D.Stream) and len(lazy) == 20 and lazy.classes == synsets
    assert lazy.in_shape == (3, 16, 16) and lazy.batch_size == 6
    parts = list(lazy.batches())
    assert [len(y) for _, y in parts] == [6, 6, 6, 2]
    assert torch.equal(torch.cat([x for x, _ in parts]), ds.x)
    assert torch.equal(torch.cat([y for _, y in parts]), ds.y)
    with pytest.raises(TypeError, match="is a Stream .* needs its examples at random"):
        D.as_dataset(lazy, "training data")


def test_imagenet_missing_class_folders_are_named(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(FileNotFoundError, match="lacks 10 of the 10 class folders, e.g. n02869837"):
        D.load("imagenet10", root=tmp_path, progress=False)


def test_options_are_checked():
    with pytest.raises(TypeError, match="takes no options"):
        D.load("digits", size=3)


def test_cifar_file_lists_match_torchvision(tmp_path):
    import torchvision.datasets as tvd

    from lmc_toolkit.data.sources import CIFAR_FILES, check_root

    for name, cls in (("cifar10", tvd.CIFAR10), ("cifar100", tvd.CIFAR100)):
        base, files = CIFAR_FILES[name]
        assert base == cls.base_folder
        expected = {f for f, _ in (*cls.train_list, *cls.test_list)} | {cls.meta["filename"]}
        assert set(files) == expected
        for f in files[:-1]:
            (tmp_path / base).mkdir(exist_ok=True)
            (tmp_path / base / f).write_bytes(b"")
        with pytest.raises(FileNotFoundError, match=files[-1]):
            check_root(name, tmp_path)
        (tmp_path / base / files[-1]).write_bytes(b"")
        check_root(name, tmp_path)  # every file there: accepted


def test_fashion_without_the_debian_package_is_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        sources.check_root("fashion-mnist", None)
    sources.check_root("fashion-mnist", tmp_path)  # a torchvision folder: checked on load
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", tmp_path)
    sources.check_root("fashion-mnist", None)  # the package is there
