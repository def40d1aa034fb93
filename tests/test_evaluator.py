"""The evaluator of many parameter points against an independent per-point loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import per_point_reference, tensors_equal

from lmc_toolkit import models
from lmc_toolkit.landscape import Evaluator, evaluate_points
from lmc_toolkit.landscape.evaluator.points import grid_coords
from lmc_toolkit.training import params as P


def _setup(name="convnet3", **options):
    a = models.build(name, 10, (1, 8, 8), init_seed=0, **options)
    b = models.build(name, 10, (1, 8, 8), init_seed=1, **options)
    base = P.params_of(a)
    d1 = P.sub(P.params_of(b), base)
    g = torch.Generator().manual_seed(3)
    d2 = {k: 0.1 * torch.randn(v.shape, generator=g) for k, v in base.items()}
    return a, base, [d1, d2]


COORDS = grid_coords([-0.5, 0.0, 1.0], [0.0, 0.7])


@pytest.mark.parametrize(
    ("name", "options", "kw"),
    [
        ("convnet3", {"width": 4}, {"reuse_first_layer": False, "fuse_stem": False}),
        ("convnet3", {"width": 4}, {"fuse_stem": False, "compile": False}),
        (
            "convnet3",
            {"width": 4},
            {"fuse_stem": False, "compile": False, "reuse_first_layer": True},
        ),
        ("convnet3", {"width": 4}, {"fuse_stem": True, "compile": False}),
        ("convnet3", {"width": 4}, {"method": "vmap"}),
        ("mlp", {"hidden": (16,)}, {"compile": False}),
        ("lenet", {}, {"method": "vmap", "memory_budget": 1}),
    ],
)
def test_every_path_equals_a_per_point_loop(digits_small, name, options, kw):
    model, base, dirs = _setup(name, **options)
    result = evaluate_points(model, digits_small, base, dirs, COORDS, progress=False, **kw)
    loss, acc = per_point_reference(model, base, dirs, COORDS, digits_small)
    np.testing.assert_allclose(result.loss, loss, rtol=0, atol=1e-5)
    np.testing.assert_allclose(result.accuracy, acc, rtol=0, atol=1e-9)
    assert result.n == len(digits_small)


def test_paths_and_chunk_sizes_agree(digits_small):
    model, base, dirs = _setup(width=4)
    runs = [
        evaluate_points(model, digits_small, base, dirs, COORDS, progress=False, **kw)
        for kw in (
            {"batch_size": 7, "compile": False, "fuse_stem": True},
            {"batch_size": 300, "compile": False, "reuse_first_layer": False, "fuse_stem": False},
            {"batch_size": 64, "method": "vmap", "memory_budget": 10**5},
            {"batch_size": 50, "compile": False, "fuse_stem": False, "reuse_first_layer": True},
        )
    ]
    methods = [r.details["method"] for r in runs]
    assert methods == ["loop+stem", "loop", "vmap", "loop+first-layer"]
    for r in runs[1:]:
        np.testing.assert_allclose(r.loss, runs[0].loss, rtol=0, atol=1e-5)
        np.testing.assert_allclose(r.accuracy, runs[0].accuracy, rtol=0, atol=1e-9)


def test_auto_method_vmaps_only_networks_without_convolutions_on_a_gpu(digits_small):
    conv, _, _ = _setup(width=4)
    mlp = models.build("mlp", 10, (1, 8, 8), hidden=(8,))
    for model, on_gpu in ((conv, "loop"), (mlp, "vmap")):
        ev = Evaluator(model, digits_small, progress=False)
        assert ev.method == "loop"  # on the CPU always the loop
        ev.device = torch.device("cuda")  # the rule alone; no GPU needed
        assert ev._auto_method() == on_gpu


def test_memory_budget_sets_the_block_size(digits_small):
    model, _, _ = _setup(width=4)
    small = Evaluator(model, digits_small, method="vmap", memory_budget=1, progress=False)
    large = Evaluator(model, digits_small, method="vmap", memory_budget=2**40, progress=False)
    chunk = digits_small.x[:100]
    assert small.points_per_block(chunk) == 1
    assert large.points_per_block(chunk) > 1000


def test_the_model_is_never_changed(digits_small):
    model, base, dirs = _setup(width=4)
    before = P.state_of(model)
    for method in ("loop", "vmap"):
        evaluate_points(model, digits_small, base, dirs, COORDS, method=method, progress=False)
    assert tensors_equal(P.state_of(model), before)
    assert all(p.requires_grad for p in model.parameters())


def test_bad_input_is_refused(digits_small):
    model, base, dirs = _setup(width=4)
    ev = Evaluator(model, digits_small, progress=False)
    with pytest.raises(ValueError, match=r"coords must have shape \(points, 2\)"):
        ev(base, dirs, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="coords holds no points"):
        ev(base, dirs, np.zeros((0, 2)))
    bad = dict(base)
    bad["0.weight"] = torch.full_like(bad["0.weight"], float("nan"))
    with pytest.raises(ValueError, match="NaN or inf"):
        ev(bad, dirs, COORDS)
    other = P.params_of(models.build("convnet3", 10, (1, 8, 8), width=8))
    with pytest.raises(ValueError, match=r"'0.weight' has shape \(4, 1, 3, 3\)"):
        ev(other, dirs, COORDS)
    with pytest.raises(ValueError, match="method must be one of"):
        Evaluator(model, digits_small, method="fast")
    with pytest.raises(ValueError, match="fuse_stem must be True, False or 'auto', got 'yes'"):
        Evaluator(model, digits_small, fuse_stem="yes")
    with pytest.raises(
        ValueError, match="reuse_first_layer must be True, False or 'auto', got 1.5"
    ):
        Evaluator(model, digits_small, reuse_first_layer=1.5)
    with pytest.raises(ValueError, match="was built for"):
        Evaluator(models.build("convnet3", 10, (1, 28, 28), width=4), digits_small)


@pytest.mark.slow
@pytest.mark.parametrize("fuse_stem", [True, False])
def test_compiled_path_equals_eager(digits_small, fuse_stem):
    model, base, dirs = _setup(width=4)
    kw = {"fuse_stem": fuse_stem, "progress": False}
    eager = evaluate_points(model, digits_small, base, dirs, COORDS, compile=False, **kw)
    fast = evaluate_points(model, digits_small, base, dirs, COORDS, compile=True, **kw)
    assert fast.details["compiled"]
    assert fast.details["method"] == ("loop+stem" if fuse_stem else "loop+first-layer")
    np.testing.assert_allclose(fast.loss, eager.loss, rtol=0, atol=1e-5)
