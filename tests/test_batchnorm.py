"""BatchNorm policies: recalibration by hand, interpolated statistics, stored statistics."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from helpers import tensors_equal

from lmc_toolkit import models
from lmc_toolkit.connectivity import interpolate
from lmc_toolkit.training import BNPolicy, TrainConfig, evaluate, train
from lmc_toolkit.training import params as P
from lmc_toolkit.training.batchnorm import as_policy, calibration_batches, has_running_stats


@pytest.fixture(scope="module")
def trained_pair(digits_small):
    """Two ResNet-10s (width 4) with different, non-trivial running statistics."""
    config = TrainConfig(steps=3, batch_size=32, lr=0.05)
    out = []
    for seed in (0, 1):
        net = models.build("resnet10", 10, (1, 8, 8), init_seed=seed, width=4)
        out.append(train(net, digits_small, config, data_seed=seed, progress=False).model(net))
    return out


def _by_hand_recalibrated(model, data, batches, batch_size, seed):
    """Reset every BN layer, average the statistics of the same fixed batches, evaluate."""
    net = copy.deepcopy(model)
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    net.train()
    with torch.no_grad():
        for i in range(batches):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            if len(idx):
                net(data.x[idx])
    return evaluate(net.eval(), data)


def test_recalibrate_equals_resetting_and_reestimating_by_hand(trained_pair, digits_small):
    a, b = trained_pair
    policy = BNPolicy("recalibrate", batches=2, batch_size=64, seed=5)
    curve = interpolate(a, b, digits_small, [0.0, 0.5, 1.0], bn=policy, progress=False)
    for alpha, loss, acc in zip(curve.alphas, curve.loss, curve.accuracy, strict=True):
        point = P.with_state(a, P.lerp(P.state_of(a), P.state_of(b), float(alpha)))
        want = _by_hand_recalibrated(point, digits_small, 2, 64, 5)
        assert loss == pytest.approx(want.loss, abs=1e-5)
        assert acc == pytest.approx(want.accuracy, abs=1e-9)
    assert curve.bn == "recalibrate" and curve.meta["bn_policy"]["batches"] == 2


def test_interpolate_policy_interpolates_the_running_statistics(trained_pair, digits_small):
    a, b = trained_pair
    for method in ("loop", "vmap"):
        curve = interpolate(
            a, b, digits_small, [0.0, 0.3, 1.0], bn="interpolate", method=method, progress=False
        )
        for alpha, loss in zip(curve.alphas, curve.loss, strict=True):
            state = P.lerp(P.state_of(a), P.state_of(b), float(alpha))
            assert loss == pytest.approx(
                evaluate(P.with_state(a, state), digits_small).loss, abs=1e-5
            )


def test_eval_policy_uses_the_stored_statistics_of_the_first_end(trained_pair, digits_small):
    a, b = trained_pair
    curve = interpolate(a, b, digits_small, [0.0, 0.5, 1.0], bn="eval", progress=False)
    assert curve.loss[0] == pytest.approx(evaluate(a, digits_small).loss, abs=1e-5)
    params = P.lerp(P.params_of(a), P.params_of(b), 0.5)
    want = evaluate(P.with_state(a, params), digits_small).loss  # a's buffers
    assert curve.loss[1] == pytest.approx(want, abs=1e-5)


def test_models_without_running_statistics_are_unaffected(digits_small):
    a = models.build("convnet3", 10, (1, 8, 8), init_seed=0, width=4)
    b = models.build("convnet3", 10, (1, 8, 8), init_seed=1, width=4)
    assert not has_running_stats(a)
    curves = [
        interpolate(a, b, digits_small, 3, bn=bn, progress=False)
        for bn in ("eval", "recalibrate", "interpolate")
    ]
    for c in curves[1:]:
        np.testing.assert_allclose(c.loss, curves[0].loss, rtol=0, atol=1e-7)


def test_calibration_batches_are_fixed_by_the_seed(digits_small, trained_pair):
    policy = BNPolicy(batches=3, batch_size=50, seed=2)
    one, two = calibration_batches(digits_small, policy), calibration_batches(digits_small, policy)
    assert len(one) == 3 and all(torch.equal(x, y) for x, y in zip(one, two, strict=True))
    before = P.state_of(trained_pair[0])
    interpolate(*trained_pair, digits_small, 2, progress=False)
    assert tensors_equal(P.state_of(trained_pair[0]), before)


def test_bad_policies_are_refused():
    with pytest.raises(ValueError, match="bn must be one of"):
        as_policy("batch")
    with pytest.raises(TypeError, match="bn must be one of"):
        as_policy(3)
    with pytest.raises(ValueError, match="batches must be a positive int"):
        BNPolicy(batches=0)
    assert as_policy("eval").mode == "eval"
    assert BNPolicy.from_dict(BNPolicy().to_dict()) == BNPolicy()
