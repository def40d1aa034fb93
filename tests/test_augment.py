"""Differentiable siamese augmentation: shared draws, exact operations, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from lmc_toolkit.synth import SiameseAugment, default_augment
from lmc_toolkit.synth.augment import OPERATIONS, Transform


def _batch(n: int = 6, c: int = 3, size: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, c, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("op", OPERATIONS)
def test_one_seed_gives_both_batches_the_same_transform(op):
    aug = SiameseAugment(always=(op,), one_of=())
    real = _batch(16)
    syn = real[:3].clone().requires_grad_(True)
    for seed in range(4):
        assert aug.draw(seed, (8, 8)) == aug.draw(seed, (8, 8))
        out_real, out_syn = aug(real, seed), aug(syn, seed)
        torch.testing.assert_close(out_syn, out_real[:3], rtol=0, atol=1e-6)


def test_the_default_policy_picks_one_geometric_transform_per_draw():
    aug = SiameseAugment()
    drawn = [aug.draw(seed, (8, 8)).ops for seed in range(40)]
    assert all(ops[:2] == ("flip", "color") and len(ops) == 3 for ops in drawn)
    assert {ops[2] for ops in drawn} == {"crop", "scale", "rotate"}
    assert len({aug.draw(seed, (8, 8)) for seed in range(40)}) == 40


def test_gradient_reaches_the_synthetic_images():
    aug = SiameseAugment(always=("flip", "color", "cutout"), one_of=("crop", "scale", "rotate"))
    for seed in range(6):
        syn = _batch(4).requires_grad_(True)
        weights = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(seed))
        (aug(syn, seed) * weights).sum().backward()
        assert syn.grad is not None and torch.isfinite(syn.grad).all()
        assert syn.grad.abs().sum() > 0


@pytest.mark.parametrize("op", OPERATIONS)
def test_each_operation_has_the_gradient_finite_differences_give(op):
    aug = SiameseAugment(always=(op,), one_of=())
    x = torch.randn(2, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    for seed in (0, 1):
        transform = aug.draw(seed, (5, 5))
        assert torch.autograd.gradcheck(transform.apply, (x,), eps=1e-6, atol=1e-6)


def test_crop_is_a_whole_pixel_shift_with_zero_fill():
    x = _batch(2, 1, 6)
    out = Transform(ops=("crop",), shift=(1, -2)).apply(x)
    expected = torch.zeros_like(x)
    expected[:, :, :-1, 2:] = x[:, :, 1:, :-2]  # out[i, j] = x[i + dy, j + dx]
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


def test_flip_rotate_and_scale_against_their_definitions():
    x = _batch(2, 2, 6)
    torch.testing.assert_close(Transform(ops=("flip",), flip=True).apply(x), x.flip(-1))
    assert torch.equal(Transform(ops=("flip",), flip=False).apply(x), x)
    quarter = Transform(ops=("rotate",), angle=math.pi / 2).apply(x)
    rotations = [torch.rot90(x, k, dims=(-2, -1)) for k in (1, 3)]
    assert any(torch.allclose(quarter, r, atol=1e-5) for r in rotations)
    torch.testing.assert_close(Transform(ops=("rotate",), angle=0.0).apply(x), x)
    torch.testing.assert_close(Transform(ops=("scale",), scale=(1.0, 1.0)).apply(x), x)
    # Sampling a 2×2-pixel block per output pixel at scale 1/2 about the centre: the centre
    # 3×3 of a 6×6 image is magnified, so a constant image stays constant inside.
    const = torch.full((1, 1, 6, 6), 2.5)
    torch.testing.assert_close(Transform(ops=("scale",), scale=(0.5, 0.5)).apply(const), const)


def test_color_is_brightness_saturation_contrast():
    x = _batch(3, 3, 4)
    shifted = Transform(ops=("color",), brightness=0.3).apply(x)
    torch.testing.assert_close(shifted, x + 0.3)
    grey = Transform(ops=("color",), saturation=0.0).apply(x)
    torch.testing.assert_close(grey, x.mean(1, keepdim=True).expand_as(x))
    contrast = Transform(ops=("color",), contrast=2.0).apply(x)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(contrast, (x - mean) * 2.0 + mean)


def test_cutout_zeros_one_square_and_keeps_the_rest():
    x = torch.ones(2, 1, 8, 8)
    out = Transform(ops=("cutout",), cutout=(0.5, 0.5, 0.5)).apply(x)
    zeros = out[0, 0] == 0
    assert int(zeros.sum()) == 16 and torch.equal(out[0], out[1])
    rows, cols = torch.nonzero(zeros, as_tuple=True)
    assert int(rows.max() - rows.min()) == 3 and int(cols.max() - cols.min()) == 3


def test_bad_policies_and_inputs_are_refused():
    with pytest.raises(ValueError, match="unknown augmentation 'blur'"):
        SiameseAugment(always=("blur",))
    with pytest.raises(ValueError, match="scale"):
        SiameseAugment(scale=0.5)
    with pytest.raises(ValueError, match="N×C×H×W"):
        SiameseAugment()(torch.zeros(3, 8, 8), 0)


def test_digit_datasets_are_not_flipped_by_default():
    assert "flip" not in default_augment("mnist").always + default_augment("mnist").one_of
    assert "flip" in default_augment("cifar10").always
