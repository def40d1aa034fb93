"""Masks, magnitude and random pruning, mask comparison."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from lmc_toolkit import models
from lmc_toolkit.pruning import Mask, hamming, iou, magnitude, random, random_iou
from lmc_toolkit.pruning.mask import prunable_names
from lmc_toolkit.pruning.prune import shuffled
from lmc_toolkit.store import Store
from lmc_toolkit.training import TrainConfig, train
from lmc_toolkit.training.params import check_mask, params_of


def convnet(seed: int = 0, width: int = 8) -> nn.Module:
    return models.build("convnet3", 10, (1, 8, 8), init_seed=seed, width=width)


def torch_modules(model: nn.Module) -> list[tuple[nn.Module, str]]:
    return [(m, "weight") for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def torch_masks(model: nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    mods = torch_modules(model)
    return {n: m.weight_mask.bool() for n, (m, _) in zip(names, mods, strict=True)}


def test_default_prunable_set_is_every_conv_and_linear_weight():
    model = convnet()
    mask = Mask.ones(model)
    assert list(mask) == ["0.weight", "4.weight", "8.weight", "13.weight"]
    assert all(m.all() and m.dtype == torch.bool for m in mask.values())
    assert mask.sparsity == 0.0 and mask.density == 1.0
    assert mask.total == sum(model.get_parameter(n).numel() for n in mask)
    # norm parameters (1-D weights) and biases are never prunable
    assert not any(n.endswith("bias") for n in mask) and "1.weight" not in mask
    assert list(Mask.ones(model, first=False)) == ["4.weight", "8.weight", "13.weight"]
    assert list(Mask.ones(model, last=False)) == ["0.weight", "4.weight", "8.weight"]
    assert list(Mask.ones(model, include=["8.weight", "0.weight"])) == ["0.weight", "8.weight"]
    resnet = models.build("resnet10", 10, (3, 8, 8), width=4)
    names = prunable_names(resnet)
    assert names[0] == "stem.0.weight" and names[-1] == "fc.weight"
    assert any("shortcut.0.weight" in n for n in names)
    assert not any(".bn" in n or "stem.1" in n for n in names)
    # a parameter dict: every tensor of two or more dimensions
    assert prunable_names(params_of(model)) == list(mask)


def test_mask_is_an_immutable_mapping_that_train_and_check_mask_accept(digits_small):
    model = convnet()
    mask = magnitude(model, 0.5)
    with pytest.raises(TypeError):
        mask["0.weight"] = torch.zeros(1)  # type: ignore[index]
    with pytest.raises(AttributeError):
        mask._masks = {}  # type: ignore[misc]
    source = {"0.weight": torch.ones(8, 1, 3, 3, dtype=torch.bool)}
    built = Mask(source)
    source["0.weight"][0] = False
    assert built["0.weight"].all()  # copied in, not aliased
    assert check_mask(dict(model.named_parameters()), mask).keys() == mask.keys()
    result = train(
        model, digits_small, TrainConfig(steps=3, batch_size=32), mask=mask, progress=False
    )
    assert all((result.state[n][~m] == 0).all() for n, m in mask.items())
    assert pickle.loads(pickle.dumps(mask)) == mask and copy.deepcopy(mask) == mask


def test_accounting_per_layer_apply_and_algebra():
    model = convnet()
    mask = magnitude(model, 0.3, scope="layerwise")
    rows = mask.per_layer()
    assert [r.name for r in rows] == list(mask)
    for r in rows:
        assert r.pruned == round(0.3 * r.total) and r.sparsity == pytest.approx(r.pruned / r.total)
    assert mask.kept == sum(r.kept for r in rows)
    assert mask.sparsity == pytest.approx(1 - mask.kept / mask.total)
    assert "all" in mask.format()
    params = params_of(model)
    before = {k: v.clone() for k, v in params.items()}
    out = mask.apply(params)
    assert all(torch.equal(params[k], before[k]) for k in params)  # functional
    assert out.keys() == params.keys() and out["1.weight"] is params["1.weight"]
    assert all(
        (out[n][~m] == 0).all() and torch.equal(out[n][m], params[n][m]) for n, m in mask.items()
    )
    other = random(model, 0.5, seed=1)
    both, either = mask & other, mask | other
    for n in mask:
        assert torch.equal(both[n], mask[n] & other[n])
        assert torch.equal(either[n], mask[n] | other[n])
    with pytest.raises(TypeError, match="params_of"):
        mask.apply(model)  # type: ignore[arg-type]


def test_global_masks_equal_torch_global_unstructured_l1_over_rounds():
    """Iterated, with the weights changing between rounds as they would in training."""
    model = convnet(width=16)
    ref = copy.deepcopy(model)
    names = list(Mask.ones(model))
    g = torch.Generator().manual_seed(0)
    mask = None
    for _ in range(5):
        prune.global_unstructured(torch_modules(ref), prune.L1Unstructured, amount=0.2)
        mask = magnitude(model, 0.2, mask)
        assert mask == torch_masks(ref, names)
        with torch.no_grad():  # "training": new values everywhere, pruned ones included
            for (m, _), n in zip(torch_modules(ref), names, strict=True):
                noise = torch.randn(m.weight_orig.shape, generator=g)
                m.weight_orig.add_(noise)
                model.get_parameter(n).add_(noise)
        ref(torch.zeros(1, 1, 8, 8))  # torch refreshes `weight` from `weight_orig` on forward
    assert mask.sparsity == pytest.approx(1 - 0.8**5, abs=4 / mask.total)


def test_layerwise_masks_equal_torch_l1_unstructured_per_layer():
    model = convnet(width=16)
    ref = copy.deepcopy(model)
    names = list(Mask.ones(model))
    mask = None
    for _ in range(3):
        for m, _ in torch_modules(ref):
            prune.l1_unstructured(m, "weight", amount=0.2)
        mask = magnitude(model, 0.2, mask, scope="layerwise")
        assert mask == torch_masks(ref, names)


def test_ties_are_broken_deterministically_by_position():
    params = {"a": torch.ones(2, 3), "b": torch.ones(3, 2)}
    mask = magnitude(params, 0.5)
    # six of twelve equal weights: the first six in parameter order, flat index order
    assert mask["a"].sum() == 0 and mask["b"].all()
    assert magnitude(params, 0.5) == mask
    layerwise = magnitude(params, 0.5, scope="layerwise")
    assert layerwise["a"].flatten().tolist() == [False] * 3 + [True] * 3


def test_pruned_weights_stay_pruned_whatever_their_value():
    params = {"w": torch.tensor([[5.0, 4.0, 0.1, 0.2, 3.0]])}
    first = magnitude(params, 0.4)
    assert first["w"].tolist() == [[True, True, False, False, True]]
    second = magnitude(params, 0.5, first)  # 0.5 · 3 remaining = 1.5 → round → 2
    assert second["w"].tolist() == [[True, False, False, False, False]]


def test_random_pruning_reaches_the_requested_sparsity():
    model = convnet(width=16)
    for s in (0.2, 0.5, 0.9):
        mask = random(model, s, seed=3)
        assert mask.pruned == round(s * mask.total)
        layerwise = random(model, s, seed=3, scope="layerwise")
        assert all(r.pruned == round(s * r.total) for r in layerwise.per_layer())
    assert random(model, 0.5, seed=1) == random(model, 0.5, seed=1)
    assert random(model, 0.5, seed=1) != random(model, 0.5, seed=2)
    base = random(model, 0.5, seed=0)
    again = random(model, 0.5, base, seed=1)
    assert again.pruned == base.pruned + round(0.5 * base.kept)
    assert all(not (again[n] & ~base[n]).any() for n in base)  # nothing revived
    assert (again & base) == again


def test_shuffled_keeps_the_per_layer_counts():
    mask = magnitude(convnet(), 0.6, scope="global")
    other = shuffled(mask, seed=0)
    assert [r.kept for r in other.per_layer()] == [r.kept for r in mask.per_layer()]
    assert other != mask


def test_iou_and_hamming_overall_and_per_layer():
    a = Mask({"x": torch.tensor([1, 1, 0, 0], dtype=torch.bool), "y": torch.tensor([True, False])})
    b = Mask({"x": torch.tensor([1, 0, 1, 0], dtype=torch.bool), "y": torch.tensor([True, False])})
    assert iou(a, b) == pytest.approx(2 / 4)
    assert iou(a, b, per_layer=True) == {"x": pytest.approx(1 / 3), "y": 1.0}
    assert hamming(a, b) == pytest.approx(2 / 6)
    assert hamming(a, b, normalized=False) == 2
    assert hamming(a, b, per_layer=True) == {"x": 0.5, "y": 0.0}
    assert iou(a, a) == 1.0 and hamming(a, a) == 0.0
    empty = Mask({"x": torch.zeros(4, dtype=torch.bool), "y": torch.zeros(2, dtype=torch.bool)})
    assert iou(empty, empty) == 1.0 and iou(a, empty) == 0.0
    # chance level: two independent random masks of densities 1/2 and 1/2 → 1/3
    model = convnet(width=32)
    r1, r2 = (
        random(model, 0.5, seed=1, scope="layerwise"),
        random(model, 0.5, seed=2, scope="layerwise"),
    )
    assert random_iou(r1, r2) == pytest.approx(1 / 3, abs=1e-3)
    assert iou(r1, r2) == pytest.approx(1 / 3, abs=0.03)


def test_masks_save_and_load_through_the_store_and_files(tmp_path):
    mask = magnitude(convnet(), 0.4)
    run = Store(tmp_path).run(TrainConfig())
    run.save("mask", mask.to_dict())
    assert Mask.from_dict(run.load("mask")) == mask
    mask.save(tmp_path / "m.pt")
    back = Mask.load(tmp_path / "m.pt")
    assert back == mask and back.digest() == mask.digest() and hash(back) == hash(mask)
    assert magnitude(convnet(), 0.5).digest() != mask.digest()
    with pytest.raises(ValueError, match="not a stored mask"):
        Mask.from_dict({"names": []})


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5, 0.0, 1.0, True, "0.2"])
def test_fractions_outside_0_1_are_refused(fraction):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        magnitude(convnet(), fraction)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        random(convnet(), fraction)


def test_a_mask_from_a_different_model_is_refused_naming_the_parameter():
    small, wide = convnet(width=8), convnet(width=16)
    mask = Mask.ones(wide)
    with pytest.raises(ValueError, match=r"'0\.weight' has shape \(16, 1, 3, 3\).*\(8, 1, 3, 3\)"):
        magnitude(small, 0.2, mask)
    mlp = models.build("mlp", 10, (1, 8, 8), hidden=(16,))
    with pytest.raises(ValueError, match="lacks"):
        random(mlp, 0.2, mask)
    with pytest.raises(ValueError, match="different model"):
        Mask.ones(mlp).apply(params_of(small))
    with pytest.raises(ValueError, match="different tensors"):
        iou(Mask.ones(mlp), mask)


def test_bad_masks_and_options_are_refused():
    with pytest.raises(ValueError, match="scope must be one of"):
        magnitude(convnet(), 0.2, scope="local")
    with pytest.raises(TypeError, match="must be bool"):
        Mask({"w": torch.ones(3)})
    with pytest.raises(ValueError, match="other than 0 and 1"):
        Mask({"w": torch.tensor([0, 2])})
    with pytest.raises(ValueError, match="at least one"):
        Mask({})
    with pytest.raises(ValueError, match="lacks"):
        Mask.ones(convnet(), include=["nope.weight"])
    with pytest.raises(TypeError, match="list of parameter names"):
        Mask.ones(convnet(), include="0.weight")
