"""The model registry: shapes, the paper's initialization, seeding and errors."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import tensors_equal
from torch import nn

from lmc_toolkit import models
from lmc_toolkit.training.params import params_of

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]
SMALL = {"convnet3": {"width": 8}, "resnet10": {"width": 4}, "resnet18": {"width": 4}}


@pytest.mark.parametrize("name", ["mlp", "lenet", "convnet3", "resnet10", "resnet18"])
@pytest.mark.parametrize("shape", SHAPES)
def test_every_model_fits_every_small_input(name, shape):
    model = models.build(name, 10, shape, init_seed=0, **SMALL.get(name, {}))
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, 10)
    assert model.spec.in_shape == shape and model.spec.name == name


def test_imagenet_resnet_on_224():
    model = models.build("resnet10_imagenet", 10, (3, 224, 224), width=8)
    assert model(torch.randn(1, 3, 224, 224)).shape == (1, 10)
    with pytest.raises(ValueError, match="at least 32×32"):
        models.build("resnet10_imagenet", 10, (1, 8, 8))


def test_convnet3_is_the_papers_architecture():
    model = models.build("convnet3", 10, (3, 32, 32))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in model.modules() if isinstance(m, nn.GroupNorm)]
    assert [c.out_channels for c in convs] == [128] * 3 and all(
        c.kernel_size == (3, 3) for c in convs
    )
    assert all(n.num_groups == n.num_channels == 128 and n.affine for n in norms)  # instance norm
    assert sum(isinstance(m, nn.AvgPool2d) for m in model.modules()) == 3
    assert model[-1].in_features == 128 * 4 * 4
    # 1×28×28 is padded to 32×32 in the first conv, as DC's ConvNet does
    assert models.build("convnet3", 10, (1, 28, 28))[-1].in_features == 128 * 4 * 4


def test_narrow_resnet18_has_about_2_8m_prunable_weights():
    model = models.build("resnet18", 10, (3, 32, 32))
    prunable = sum(
        m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)
    )
    assert 2.7e6 < prunable < 2.9e6
    widths = sorted({m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)})
    assert widths == [32, 64, 128, 256]


def test_paper_initialization():
    model = models.build("resnet18", 10, (3, 32, 32), init_seed=3)
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.weight.numel() > 10_000:
            k, out = m.kernel_size[0], m.out_channels
            assert m.weight.std().item() == pytest.approx(math.sqrt(2 / (k * k * out)), rel=0.05)
            assert abs(m.weight.mean().item()) < 0.1 * m.weight.std().item()
        if isinstance(m, nn.BatchNorm2d):
            assert (m.weight == 1).all() and (m.bias == 0).all()


def test_init_seed_alone_decides_the_weights():
    torch.manual_seed(123)
    a = params_of(models.build("convnet3", 10, (1, 8, 8), init_seed=7, width=8))
    torch.manual_seed(999)
    state = torch.random.get_rng_state()
    b = params_of(models.build("convnet3", 10, (1, 8, 8), init_seed=7, width=8))
    c = params_of(models.build("convnet3", 10, (1, 8, 8), init_seed=8, width=8))
    assert tensors_equal(a, b) and not tensors_equal(a, c)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is untouched


def test_spec_rebuilds_the_same_model():
    model = models.build("mlp", 10, (1, 8, 8), init_seed=4, hidden=(32, 16))
    again = model.spec.build()
    assert tensors_equal(params_of(model), params_of(again))


def test_unknown_model_lists_known_names():
    with pytest.raises(ValueError, match="unknown model 'resnet50'; known models: .*convnet3"):
        models.build("resnet50")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"in_shape": (28, 28)}, "in_shape must be three positive ints"),
        ({"in_shape": (1, 0, 28)}, "in_shape must be three positive ints"),
        ({"num_classes": 1}, "num_classes must be an int ≥ 2"),
        ({"width": 0}, "width must be an int ≥ 1"),
    ],
)
def test_bad_build_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.build("convnet3", **{"num_classes": 10, "in_shape": (1, 8, 8), **kwargs})


def test_too_deep_convnet_for_a_small_input():
    with pytest.raises(ValueError, match="depth 4 pools a 8×8 input below 1×1; use depth ≤ 3"):
        models.build("convnet3", 10, (1, 8, 8), depth=4)


def test_check_input_names_both_shapes():
    model = models.build("mlp", 10, (1, 8, 8))
    with pytest.raises(
        ValueError, match=r"shape \(1, 28, 28\) but the mlp model was built for \(1, 8, 8\)"
    ):
        models.check_input(model, (1, 28, 28))


def test_mlp_takes_one_int_as_one_hidden_layer():
    net = models.build("mlp", 10, (1, 8, 8), hidden=16)
    widths = [m.out_features for m in net if isinstance(m, nn.Linear)]
    assert widths == [16, 10]
