"""Permutation alignment: specs traced from every registered model, permutations that leave the
function unchanged (BatchNorm in both modes, masks included), and weight matching that recovers
a planted permutation exactly."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import lmc_toolkit as L
from lmc_toolkit.alignment import (
    Permutation,
    activation_matching,
    permutation_spec,
    permute,
    random_permutation,
    weight_matching,
)
from lmc_toolkit.alignment.repair import repair, repairable_layers, unit_stats
from lmc_toolkit.models import available
from lmc_toolkit.pruning import Mask, magnitude

#: every registered model, small: (name, input shape, options)
MODELS = [
    ("mlp", (1, 8, 8), {"hidden": (32, 16)}),
    ("lenet", (1, 8, 8), {}),
    ("convnet3", (1, 8, 8), {"width": 8}),
    ("resnet10", (3, 16, 16), {"width": 8}),
    ("resnet18", (3, 16, 16), {"width": 4}),
    ("resnet10_imagenet", (3, 32, 32), {"width": 4}),
]


def _model(name, shape, options, seed=0):
    return L.build(name, 10, shape, seed, **options)


def test_every_registered_model_is_covered():
    assert sorted(m for m, _, _ in MODELS) == available()


@pytest.mark.parametrize(("name", "shape", "options"), MODELS, ids=[m[0] for m in MODELS])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_a_permuted_network_computes_the_same_function(name, shape, options, mode):
    model = _model(name, shape, options)
    perm = random_permutation(model, seed=1)
    assert not perm.is_identity()
    permuted = permute(model, perm)
    x = torch.randn(6, *shape, generator=torch.Generator().manual_seed(0))
    getattr(model, mode)()
    getattr(permuted, mode)()
    with torch.no_grad():
        diff = (model(x) - permuted(x)).abs().max()
    assert diff <= 1e-5
    assert not torch.equal(
        model.state_dict()[_first_weight(model)], permuted.state_dict()[_first_weight(model)]
    )


@pytest.mark.parametrize(("name", "shape", "options"), MODELS, ids=[m[0] for m in MODELS])
def test_permuting_back_is_the_identity_bit_for_bit(name, shape, options):
    model = _model(name, shape, options)
    with torch.no_grad():  # non-trivial running statistics, so that buffers are checked too
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(generator=torch.Generator().manual_seed(1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    perm = random_permutation(model, seed=3)
    back = permute(permute(model, perm), perm.inverse())
    for k, v in back.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # untouched
    assert perm.then(perm.inverse()).is_identity()


@pytest.mark.parametrize(("name", "shape", "options"), MODELS, ids=[m[0] for m in MODELS])
def test_weight_matching_recovers_a_planted_permutation(name, shape, options):
    a = _model(name, shape, options)
    perm = random_permutation(a, seed=5)
    b = permute(a, perm)
    result = weight_matching(a, b, seed=0)
    assert result.permutation == perm.inverse()
    assert result.converged
    assert all(
        x <= y + 1e-9 * abs(y) for x, y in zip(result.objective, result.objective[1:], strict=False)
    )
    aligned = permute(b, result.permutation)
    assert all(torch.equal(aligned.state_dict()[k], v) for k, v in a.state_dict().items())


def test_a_planted_permutation_has_no_barrier_once_aligned_and_a_large_one_before():
    data = L.load("digits", "train")
    a = L.train(_model("mlp", (1, 8, 8), {"hidden": (64,)}), data, L.TrainConfig(epochs=3, lr=0.1))
    a = a.model()
    b = permute(a, random_permutation(a, seed=2))
    test = L.load("digits", "test")
    before = L.interpolate(a, b, test, alphas=11, progress=False).barrier("error").value
    aligned = permute(b, weight_matching(a, b).permutation)
    after = L.interpolate(a, aligned, test, alphas=11, progress=False).barrier("error").value
    assert after == 0.0
    assert before > 0.05  # the same function, two labellings: the straight line between fails


def test_activation_matching_recovers_a_planted_permutation_of_a_trained_network():
    data = L.load("digits", "train")
    config = L.TrainConfig(epochs=2, lr=0.05)
    a = L.train(_model("convnet3", (1, 8, 8), {"width": 8, "depth": 2}), data, config).model()
    perm = random_permutation(a, seed=6)
    b = permute(a, perm)
    result = activation_matching(a, b, data, max_images=300)
    assert result.method == "activations" and result.meta["images"] == 300
    assert result.permutation == perm.inverse()
    assert all(abs(c - 1.0) < 1e-6 for c in result.objective)  # matched units: correlation 1
    aligned = permute(b, result.permutation)
    assert all(torch.equal(aligned.state_dict()[k], v) for k, v in a.state_dict().items())
    with pytest.raises(ValueError, match="max_images"):
        activation_matching(a, b, data, max_images=1)


def test_interpolate_reports_the_curve_before_and_after_alignment_with_each_ends_mask():
    data, test = L.load("digits", "train"), L.load("digits", "test")
    config = L.TrainConfig(epochs=3, lr=0.1)
    nets = [
        L.train(_model("mlp", (1, 8, 8), {"hidden": (64,)}, seed=s), data, config).model()
        for s in (0, 1)
    ]
    masks = [magnitude(n, 0.5) for n in nets]
    result = L.interpolate(*nets, test, alphas=5, align="weights", masks=masks, progress=False)
    assert isinstance(result, L.AlignedCurve) and result.alignment.method == "weights"
    plain = L.interpolate(*nets, test, alphas=5, masks=masks, progress=False)
    assert plain.loss.tolist() == result.before.loss.tolist()  # before = no alignment
    b_aligned = permute(masks[1].apply(nets[1].state_dict()), result.alignment.permutation)
    direct = L.interpolate(masks[0].apply(nets[0].state_dict()), b_aligned, test, alphas=5,
                           model=nets[0], progress=False)  # fmt: skip
    assert direct.loss.tolist() == result.after.loss.tolist()  # after = the permuted b's ends
    iou_before, iou_after = result.mask_iou
    assert 0 < iou_before < 1 and 0 < iou_after <= 1
    assert set(result.barriers()) == {"before", "after"}
    with pytest.raises(ValueError, match="align must be one of"):
        L.interpolate(*nets, test, align="rebasin", progress=False)


def test_pairwise_reports_the_matrices_before_and_after_alignment():
    data, test = L.load("digits", "train"), L.load("digits", "test")
    config = L.TrainConfig(epochs=2, lr=0.1)
    nets = [
        L.train(_model("mlp", (1, 8, 8), {"hidden": (32,)}, seed=s), data, config).model()
        for s in range(3)
    ]
    aligned = L.pairwise(nets, test, alphas=5, align="weights", progress=False)
    plain = L.pairwise(nets, test, alphas=5, progress=False)
    assert aligned.align == "weights" and plain.align == "none" and plain.unaligned is None
    for key in ("error_barriers", "loss_barriers", "distances"):
        assert aligned.unaligned[key].tolist() == getattr(plain, key).tolist()
    assert (aligned.distances <= plain.distances + 1e-9).all()  # matching brings weights closer
    again = type(aligned).from_dict(aligned.to_dict())
    assert (
        again.align == "weights"
        and again.unaligned["distances"].tolist() == plain.distances.tolist()
    )
    assert "align" not in plain.to_dict()  # unaligned results keep their old record


def test_instability_can_align_each_pair_of_children():
    data, test = L.load("digits", "train"), L.load("digits", "test")
    net = _model("mlp", (1, 8, 8), {"hidden": (32,)})
    config = L.TrainConfig(epochs=2, lr=0.1)
    plain = L.instability(net, data, test, config, alphas=5, progress=False)
    aligned = L.instability(net, data, test, config, alphas=5, align="weights", progress=False)
    assert plain.align == "none" and "align" not in plain.to_dict()
    assert aligned.align == "weights"
    assert aligned.unaligned["error_barriers"].tolist() == plain.error_barriers.tolist()
    assert aligned.to_dict()["unaligned"]["loss_barriers"] == plain.loss_barriers.tolist()
    with pytest.raises(ValueError, match="align must be one of"):
        L.instability(net, data, test, config, align="bad", progress=False)


@pytest.fixture(scope="module")
def two_mlps():
    data = L.load("digits", "train")
    config = L.TrainConfig(epochs=4, lr=0.05)
    nets = [
        L.train(_model("mlp", (1, 8, 8), {"hidden": (32, 32)}, seed=s), data, config).model()
        for s in (0, 1)
    ]
    return nets, data


def test_repair_gives_each_unit_the_interpolated_statistics(two_mlps):
    (a, b), data = two_mlps
    b = permute(b, weight_matching(a, b).permutation)
    layers = repairable_layers(a)
    assert layers == ["1", "3"]  # both hidden linear layers; the classifier's outputs are not units
    alpha = 0.5
    mid = copy.deepcopy(a)
    mid.load_state_dict({k: (a.state_dict()[k] + b.state_dict()[k]) / 2 for k in a.state_dict()})
    fixed = repair(mid, a, b, alpha, data)
    x = data.x[:1000]
    ends = unit_stats(a, x, layers), unit_stats(b, x, layers)
    got = unit_stats(fixed, x, layers)
    for name in layers:
        for i in (0, 1):  # mean, then std
            goal = (1 - alpha) * ends[0][name][i] + alpha * ends[1][name][i]
            torch.testing.assert_close(got[name][i], goal, rtol=1e-4, atol=1e-5)
    before = unit_stats(mid, x, layers)["1"][1].mean()
    assert before < got["1"][1].mean()  # the averaged network's units had collapsed variance
    same = repair(a, a, b, 0.0, data)  # at an end, REPAIR changes nothing
    for k, v in a.state_dict().items():
        torch.testing.assert_close(same.state_dict()[k], v, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="alpha"):
        repair(a, a, b, 1.5, data)


def test_norm_layers_leave_nothing_for_repair():
    assert repairable_layers(_model("convnet3", (1, 8, 8), {"width": 8})) == []
    assert repairable_layers(_model("resnet10", (3, 16, 16), {"width": 8})) == []


def test_interpolate_adds_the_repaired_curve(two_mlps):
    (a, b), _ = two_mlps
    test = L.load("digits", "test")
    result = L.interpolate(a, b, test, alphas=5, align="weights", repair=True, progress=False)
    assert set(result.barriers()) == {"before", "after", "repaired"}
    assert result.repaired.meta["repaired_layers"] == ["1", "3"]
    for end in (0, -1):  # the ends are the networks themselves
        assert abs(result.repaired.loss[end] - result.after.loss[end]) < 1e-4
    assert result.to_dict()["repaired"]["kind"] == "interpolation"


def test_masks_are_permuted_with_the_weights():
    model = _model("convnet3", (1, 8, 8), {"width": 8})
    mask = magnitude(model, 0.5)
    perm = random_permutation(model, seed=4)
    permuted_mask = permute(mask, perm)
    assert isinstance(permuted_mask, Mask)
    assert permuted_mask.kept == mask.kept
    pruned = permute(mask.apply(model.state_dict()), perm)  # prune, then permute ...
    for k, v in permute(model, perm).state_dict().items():
        if k in permuted_mask:  # ... equals permute, then prune with the permuted mask
            assert torch.equal(pruned[k], v * permuted_mask[k])


def test_the_spec_follows_flatten_blocks_and_residual_additions():
    conv = permutation_spec(_model("convnet3", (1, 8, 8), {"width": 8, "depth": 2}))
    assert conv.names == ("0", "4")  # two conv groups; the classifier's outputs stay fixed
    last = conv.group("4")
    flat = [a for a in last.axes if a.name == "9.weight"]
    assert len(flat) == 1 and flat[0].dim == 1 and flat[0].block == 2 * 2  # 8x8 pooled twice
    res = permutation_spec(_model("resnet10", (3, 16, 16), {"width": 8}))
    stem = res.group("stem.0")  # the first stage's identity shortcut joins it to the stem
    names = {a.name for a in stem.axes}
    assert {"stem.0.weight", "layers.0.conv2.weight", "layers.0.bn2.running_var"} <= names
    assert "layers.1.shortcut.0.weight" in names  # read by the next stage's shortcut conv
    assert stem.size == 8 and "fc.weight" not in {a.name for g in res for a in g.axes if a.dim == 0}


def test_untraceable_or_unsupported_models_are_refused_by_name():
    class Cat(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 4, 3), nn.Conv2d(1, 4, 3)
            self.fc = nn.Linear(8 * 6 * 6, 10)

        def forward(self, x):
            return self.fc(torch.cat([self.a(x), self.b(x)], 1).flatten(1))

    with pytest.raises(ValueError, match="cat"):
        permutation_spec(Cat(), in_shape=(1, 8, 8))
    grouped = nn.Sequential(nn.Conv2d(1, 8, 3), nn.GroupNorm(2, 8), nn.Flatten(), nn.Linear(288, 3))
    with pytest.raises(ValueError, match="GroupNorm '1'"):
        permutation_spec(grouped, in_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="in_shape"):
        permutation_spec(nn.Sequential(nn.Linear(4, 2)))
    with pytest.raises(TypeError, match="nn.Module"):
        permutation_spec("mlp")


def test_bad_permutations_and_mismatched_networks_are_refused():
    model = _model("mlp", (1, 8, 8), {"hidden": (16,)})
    spec = permutation_spec(model)
    with pytest.raises(ValueError, match="not a permutation"):
        Permutation(spec, {"1": torch.zeros(16, dtype=torch.long)})
    with pytest.raises(ValueError, match="16 indices"):
        Permutation(spec, {"1": torch.arange(15)})
    with pytest.raises(ValueError, match="no permutation for group"):
        Permutation(spec, {})
    other = _model("mlp", (1, 8, 8), {"hidden": (12,)})
    with pytest.raises(ValueError, match="1.weight"):
        weight_matching(model, other)
    with pytest.raises(ValueError, match="max_sweeps"):
        weight_matching(model, model, max_sweeps=0)
    with pytest.raises(TypeError, match="Permutation"):
        permute(model, {"1": torch.arange(16)})


def test_random_permutations_are_seeded():
    model = _model("lenet", (1, 8, 8), {})
    assert random_permutation(model, 7) == random_permutation(model, 7)
    assert random_permutation(model, 7) != random_permutation(model, 8)
    assert L.permute is permute and L.weight_matching is weight_matching


def _first_weight(model: nn.Module) -> str:
    return next(k for k in model.state_dict() if k.endswith("weight"))


def test_weight_matching_agrees_with_the_rebasin_package():
    """rebasin (PyPI, Ainsworth et al.'s algorithm, written elsewhere) on trained MLPs: both
    recover a planted permutation exactly; on two independent networks both cut the barrier,
    to values within two standard errors of the test set (coordinate descent may stop in
    different local optima, so the permutations themselves can differ)."""
    rebasin = pytest.importorskip("rebasin")
    data, test = L.load("digits", "train"), L.load("digits", "test")
    config = L.TrainConfig(epochs=8, lr=0.05)
    a, b = (
        L.train(_model("mlp", (1, 8, 8), {"hidden": (64, 64)}, seed=s), data, config).model()
        for s in (0, 1)
    )

    def theirs(target, moved):
        moved = copy.deepcopy(moved)
        rebasin.PermutationCoordinateDescent(target, moved, torch.zeros(2, 1, 8, 8)).rebasin()
        return moved

    planted = permute(a, random_permutation(a, seed=3))
    for aligned in (theirs(a, planted), permute(planted, weight_matching(a, planted).permutation)):
        assert all(torch.equal(aligned.state_dict()[k], v) for k, v in a.state_dict().items())
    ours = permute(b, weight_matching(a, b).permutation)
    barrier = {
        name: L.interpolate(a, m, test, alphas=11, progress=False).barrier("error").value
        for name, m in (("none", b), ("ours", ours), ("theirs", theirs(a, b)))
    }
    stderr = (0.05 * 0.95 / len(test)) ** 0.5  # of an error rate near 5% on this test set
    assert barrier["ours"] < barrier["none"] and barrier["theirs"] < barrier["none"]
    assert abs(barrier["ours"] - barrier["theirs"]) <= 2 * stderr
