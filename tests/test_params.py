"""Parameter dicts: copies, compatibility errors, arithmetic, masks."""

from __future__ import annotations

import pytest
import torch
from helpers import tensors_equal

from lmc_toolkit import models
from lmc_toolkit.training import params as P


def test_copies_are_detached_and_independent():
    model = models.build("mlp", 10, (1, 8, 8), hidden=(16,))
    p = P.params_of(model)
    p["1.weight"].add_(1.0)
    assert not torch.equal(p["1.weight"], model.get_parameter("1.weight"))
    assert not any(t.requires_grad for t in p.values())


def test_with_state_leaves_the_template_alone():
    a = models.build("convnet3", 10, (1, 8, 8), init_seed=0, width=4)
    b = models.build("convnet3", 10, (1, 8, 8), init_seed=1, width=4)
    before = P.state_of(a)
    c = P.with_state(a, P.state_of(b))
    assert tensors_equal(P.state_of(c), P.state_of(b))
    assert tensors_equal(P.state_of(a), before)


def test_mismatch_names_the_first_differing_parameter_and_both_shapes():
    a = P.params_of(models.build("convnet3", 10, (1, 8, 8), width=4))
    b = P.params_of(models.build("convnet3", 10, (1, 8, 8), width=8))
    with pytest.raises(
        ValueError,
        match=r"parameter '0.weight' has shape \(4, 1, 3, 3\) in a but \(8, 1, 3, 3\) in b",
    ):
        P.check_compatible(a, b)
    c = P.params_of(models.build("mlp", 10, (1, 8, 8)))
    with pytest.raises(ValueError, match="a has parameter '0.weight' where b has '1.weight'"):
        P.check_compatible(a, c)


def test_arithmetic():
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(5)}
    mid = P.lerp(a, b, 0.25)
    assert torch.allclose(mid["w"], torch.tensor([1.5, 3.0])) and int(mid["n"]) == 3
    assert int(P.lerp(a, b, 0.75)["n"]) == 5
    assert torch.equal(P.sub(b, a)["w"], torch.tensor([2.0, 4.0]))
    assert torch.equal(P.add(a, b, 0.5)["w"], torch.tensor([2.5, 5.0]))
    assert P.dot({"w": a["w"]}, {"w": b["w"]}).item() == pytest.approx(15.0)
    assert P.norm({"w": torch.tensor([3.0, 4.0])}).item() == pytest.approx(5.0)
    assert P.is_finite(a) and not P.is_finite({"w": torch.tensor([float("nan")])})


def test_check_mask():
    params = P.params_of(models.build("mlp", 10, (1, 8, 8), hidden=(16,)))
    ok = P.check_mask(params, {"1.weight": torch.ones(16, 64)})
    assert ok["1.weight"].dtype == torch.bool
    assert P.check_mask(params, None) is None
    with pytest.raises(TypeError, match="a mask maps parameter names"):
        P.check_mask(params, [1, 2])
