"""Interpolation curves, barriers, pairwise matrices and instability analysis."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import tensors_equal

from lmc_toolkit import models
from lmc_toolkit.connectivity import (
    alpha_grid,
    instability,
    instability_vs_k,
    interpolate,
    pairwise,
)
from lmc_toolkit.connectivity.spawning import child_seeds
from lmc_toolkit.landscape import Curve
from lmc_toolkit.store import Store
from lmc_toolkit.training import TrainConfig, evaluate, train
from lmc_toolkit.training import params as P


def _net(seed, width=4):
    return models.build("convnet3", 10, (1, 8, 8), init_seed=seed, width=width)


def _mask(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        k: torch.rand(p.shape, generator=g) < 0.5
        for k, p in model.named_parameters()
        if p.dim() > 1
    }


def test_interpolating_a_model_with_itself_has_no_barrier(digits_small):
    a = _net(0)
    curve = interpolate(a, a, digits_small, 5, progress=False)
    assert curve.barrier("error").value == pytest.approx(0, abs=1e-12)
    assert curve.barrier("loss").value == pytest.approx(0, abs=1e-6)
    assert curve.barrier("loss", "linear").value == pytest.approx(0, abs=1e-6)


def test_endpoints_equal_evaluate_and_the_curve_equals_a_per_point_loop(digits_small):
    a, b = _net(0), _net(1)
    curve = interpolate(a, b, digits_small, [-0.25, 0.5, 1.25], progress=False)
    assert list(curve.alphas) == [-0.25, 0.0, 0.5, 1.0, 1.25]
    ea, eb = evaluate(a, digits_small), evaluate(b, digits_small)
    assert curve.loss[1] == pytest.approx(ea.loss, abs=1e-6)
    assert curve.loss[3] == pytest.approx(eb.loss, abs=1e-6)
    assert curve.accuracy[1] == ea.accuracy and curve.accuracy[3] == eb.accuracy
    for alpha, loss in zip(curve.alphas, curve.loss, strict=True):
        point = P.with_state(a, P.lerp(P.params_of(a), P.params_of(b), float(alpha)))
        assert loss == pytest.approx(evaluate(point, digits_small).loss, abs=1e-5)


def test_state_dicts_and_parameter_dicts_give_the_same_curve(digits_small):
    a, b = _net(0), _net(1)
    ref = interpolate(a, b, digits_small, 3, progress=False)
    by_state = interpolate(a.state_dict(), b.state_dict(), digits_small, 3, model=a, progress=False)
    by_params = interpolate(P.params_of(a), b, digits_small, 3, progress=False)
    np.testing.assert_allclose(by_state.loss, ref.loss, atol=1e-7)
    np.testing.assert_allclose(by_params.loss, ref.loss, atol=1e-7)
    with pytest.raises(TypeError, match="pass model="):
        interpolate(a.state_dict(), b.state_dict(), digits_small, 3)


def test_barrier_definitions():
    alphas = np.array([0.0, 0.25, 0.5, 1.0, 1.5])
    acc = 1 - np.array([0.1, 0.4, 0.3, 0.3, 0.9])  # errors 0.1 .. 0.3 at the ends
    curve = Curve(alphas, np.array([1.0, 2.0, 4.0, 3.0, 9.0]), acc)
    mean = curve.barrier("error", "mean")
    assert mean.value == pytest.approx(0.4 - 0.2) and mean.alpha == 0.25
    linear = curve.barrier("error", "linear")  # line at 0.25: 0.15, at 0.5: 0.2
    assert linear.value == pytest.approx(0.25) and linear.alpha == 0.25
    loss = curve.barrier("loss", "linear")  # line at 0.5: 2.0
    assert loss.value == pytest.approx(2.0) and loss.alpha == 0.5
    assert Curve.from_dict(curve.to_dict()).barrier().value == mean.value
    with pytest.raises(ValueError, match="metric must be one of"):
        curve.barrier("accuracy")
    with pytest.raises(ValueError, match="α = 0 and α = 1"):
        Curve(np.array([0.0, 0.5]), np.zeros(2), np.zeros(2)).barrier()


def test_alpha_grids():
    assert np.allclose(alpha_grid(3), [0, 0.5, 1])
    assert np.allclose(alpha_grid([0.5]), [0, 0.5, 1])
    with pytest.raises(ValueError, match="at least 2 points"):
        alpha_grid(1)
    with pytest.raises(ValueError, match="finite"):
        alpha_grid([float("nan")])


def test_pruned_coordinates_are_zero_along_the_path(digits_small):
    a, b = _net(0), _net(1)
    mask = _mask(a)
    curve = interpolate(a, b, digits_small, [0.0, 0.4, 1.0], mask=mask, progress=False)
    pa = {k: v * mask[k] if k in mask else v for k, v in P.params_of(a).items()}
    pb = {k: v * mask[k] if k in mask else v for k, v in P.params_of(b).items()}
    for alpha, loss in zip(curve.alphas, curve.loss, strict=True):
        point = P.lerp(pa, pb, float(alpha))
        assert all(not point[k][~m].any() for k, m in mask.items())
        assert loss == pytest.approx(evaluate(P.with_state(a, point), digits_small).loss, abs=1e-5)
    assert curve.meta["sparsity"] == pytest.approx(0.5, abs=0.05)


def test_bad_input_is_refused_before_any_work(digits_small):
    a = _net(0)
    with pytest.raises(
        ValueError,
        match=r"parameter '0.weight' has shape \(4, 1, 3, 3\) in the model but \(8, 1, 3, 3\) in b",
    ):
        interpolate(a, _net(0, width=8), digits_small, progress=False)
    with pytest.raises(ValueError, match="the mask names 'fc.weight'"):
        interpolate(a, _net(1), digits_small, mask={"fc.weight": torch.ones(3, 3)}, progress=False)
    with pytest.raises(ValueError, match="the mask for '0.weight' has shape"):
        interpolate(a, _net(1), digits_small, mask=_mask(_net(0, width=8)), progress=False)
    nan = _net(1)
    with torch.no_grad():
        nan[0].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="b has NaN or inf weights"):
        interpolate(a, nan, digits_small, progress=False)
    with pytest.raises(ValueError, match="at least 2 points"):
        interpolate(a, _net(1), digits_small, alphas=1, progress=False)


def test_pairwise_matrices(digits_small):
    nets = [_net(s) for s in range(3)]
    before = [P.state_of(n) for n in nets]
    result = pairwise(nets, digits_small, 5, labels=("x", "y", "z"), progress=False)
    assert result.error_barriers.shape == (3, 3)
    assert np.allclose(result.error_barriers, result.error_barriers.T)
    assert np.allclose(np.diag(result.distances), 0)
    d01 = float(P.norm(P.sub(P.params_of(nets[0]), P.params_of(nets[1]))))
    assert result.distances[0, 1] == pytest.approx(d01, rel=1e-6)
    c = interpolate(nets[1], nets[2], digits_small, 5, progress=False)
    assert result.loss_barriers[2, 1] == pytest.approx(c.barrier("loss").value, abs=1e-7)
    assert all(tensors_equal(P.state_of(n), s) for n, s in zip(nets, before, strict=True))
    with pytest.raises(ValueError, match="at least 2 solutions"):
        pairwise(nets[:1], digits_small)


CONFIG = TrainConfig(steps=6, batch_size=50, lr=0.05)


def test_instability_trains_children_from_the_spawn_point_and_caches_them(digits_small, tmp_path):
    model = _net(0)
    before = P.state_of(model)
    store = Store(tmp_path)
    result = instability(
        model, digits_small, digits_small, CONFIG, k=2, store=store, alphas=5, progress=False
    )
    assert tensors_equal(P.state_of(model), before)
    assert result.pairs == ((0, 1),) and len(result.curves) == 1
    assert result.error_barriers.shape == (1,) and math.isnan(
        result.error_barrier_std
    )  # one pair: no spread
    # child 0 continues the spawn run with the same data order: it equals one uninterrupted run
    whole = train(model, digits_small, CONFIG, data_seed=0, progress=False)
    assert tensors_equal(result.children[0].state, whole.state)
    assert not tensors_equal(result.children[1].state, whole.state)
    # the curve's ends are the children
    assert result.curves[0].loss[0] == pytest.approx(
        evaluate(result.children[0].model(model), digits_small).loss, abs=1e-6
    )
    computed = store.computed
    again = instability(
        model, digits_small, digits_small, CONFIG, k=2, store=store, alphas=5, progress=False
    )
    assert store.computed == computed
    np.testing.assert_allclose(again.error_barriers, result.error_barriers)


def test_copies_spawned_at_init_are_the_stored_tickets(digits_small, tmp_path):
    from lmc_toolkit.pruning import train_ticket

    model = _net(0)
    mask = _mask(model)
    # without a store, the children continue a 0-step spawn run (the general path)
    plain = instability(model, digits_small, digits_small, CONFIG, k=0, mask=mask, alphas=3,
                        progress=False)  # fmt: skip
    store = Store(tmp_path)
    stored = instability(model, digits_small, digits_small, CONFIG, k=0, mask=mask, store=store,
                         alphas=3, progress=False)  # fmt: skip
    computed = store.computed
    for seed in (0, 1):
        assert tensors_equal(plain.children[seed].state, stored.children[seed].state)
        ticket = train_ticket(model, mask, digits_small, CONFIG, seed, store=store, progress=False)
        assert tensors_equal(ticket.state, stored.children[seed].state)
    assert store.computed == computed
    np.testing.assert_array_equal(plain.error_barriers, stored.error_barriers)


def test_instability_vs_k_and_pairs(digits_small):
    model = _net(0)
    mask = _mask(model)
    curve = instability_vs_k(
        model,
        digits_small,
        digits_small,
        CONFIG,
        [0, 3],
        mask=mask,
        pairs=2,
        alphas=3,
        progress=False,
    )
    assert curve.ks == (0, 3) and curve.error_barriers.shape == (2,)
    first = curve.results[0]
    assert first.pairs == ((0, 1), (2, 3)) and len(first.curves) == 2
    for child in first.children.values():
        assert all(not child.state[k][~m].any() for k, m in mask.items())
    assert curve.to_dict()["ks"] == [0, 3]


def test_dense_spawn_starts_the_copies_from_the_dense_theta_k_like_imp_rewinding(
    digits_small, tmp_path
):
    from lmc_toolkit.pruning import ImpConfig, imp

    model = _net(0)
    k = 2
    run = imp(model, digits_small, ImpConfig(rounds=1, rate=0.5, rewind=k, train=CONFIG),
              data_seed=3, progress=False)  # fmt: skip
    mask = run.rounds[-1].mask
    store = Store(tmp_path)
    dense = instability(model, digits_small, digits_small, CONFIG, k=k, mask=mask,
                        data_seeds=(3, 4), store=store, alphas=3, progress=False, spawn="dense")  # fmt: skip
    # the copy with IMP's data seed is IMP's last round, bit for bit: θ_k ⊙ m, trained from k
    assert tensors_equal(dense.children[3].state, run.rounds[-1].state)
    assert dense.meta["spawn"] == "dense"
    for child in dense.children.values():
        assert all(not child.state[n][~m].any() for n, m in mask.items())
    # spawning the subnetwork itself at k is another start: other weights, other store entries
    masked = instability(model, digits_small, digits_small, CONFIG, k=k, mask=mask,
                         data_seeds=(3, 4), store=store, alphas=3, progress=False)  # fmt: skip
    assert not tensors_equal(masked.children[3].state, dense.children[3].state)
    computed = store.computed
    again = instability(model, digits_small, digits_small, CONFIG, k=k, mask=mask,
                        data_seeds=(3, 4), store=store, alphas=3, progress=False, spawn="dense")  # fmt: skip
    assert store.computed == computed
    assert tensors_equal(again.children[4].state, dense.children[4].state)
    # at k = 0 the two starts are the same point, θ0 ⊙ m
    at0 = [
        instability(
            model,
            digits_small,
            digits_small,
            CONFIG,
            k=0,
            mask=mask,
            alphas=3,
            progress=False,
            spawn=spawn,
        )
        for spawn in ("masked", "dense")
    ]
    assert tensors_equal(at0[0].children[1].state, at0[1].children[1].state)


def test_instability_refuses_bad_input(digits_small):
    model = _net(0)
    with pytest.raises(ValueError, match=r"spawn step k must be an int in \[0, 6\)"):
        instability(model, digits_small, digits_small, CONFIG, k=6)
    with pytest.raises(ValueError, match="at least 2 distinct seeds"):
        instability(model, digits_small, digits_small, CONFIG, data_seeds=(1, 1))
    with pytest.raises(
        ValueError, match=r"spawn must be one of \('masked', 'dense'\), got 'rewind'"
    ):
        instability(model, digits_small, digits_small, CONFIG, spawn="rewind")
    assert child_seeds((5, 2), 2) == ((5, 2), (6, 7))
