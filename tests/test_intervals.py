"""Intervals of barriers and accuracies from per-image evidence: the evidence itself (kept by
every path of the evaluator, bit-packed in a curve's dict), the bootstrap over test images,
the t quantile on disjoint pairs, and the coverage of the 95% interval on made-up pairs with a
known barrier."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import lmc_toolkit as L
from lmc_toolkit.connectivity.intervals import (
    accuracy_difference,
    barrier_difference,
    barrier_interval,
    disjoint_pairs,
    image_weights,
    interval,
    resampled_barriers,
)
from lmc_toolkit.landscape.curve import Curve, bumps, pack_bits, unpack_bits
from lmc_toolkit.landscape.evaluator.core import Evaluator
from lmc_toolkit.training.params import sub

ALPHAS = np.linspace(0, 1, 11)


def made_up_pairs(rng, m, n, barrier, sgd, shared=0.7):
    """m pairs' curves on one test set of n images with a known barrier (above the line).

    Each image has a difficulty shared by every network (with probability `shared`) or its
    own per pair; a network is wrong on the images whose difficulty lies below its error
    rate, so errors are nested along α. A pair's rate peaks at α = 0.5 by its own height,
    `barrier` + `sgd` × N(0, 1): the barrier of the population of pairs is `barrier`."""
    u = rng.random(n)
    curves = []
    for _ in range(m):
        height = barrier + sgd * rng.standard_normal()
        r0, r1 = 0.05 + 0.01 * rng.standard_normal(2)
        bump = np.clip(1 - np.abs(ALPHAS - 0.5) / 0.25, 0, 1)
        rate = (1 - ALPHAS) * r0 + ALPHAS * r1 + height * bump
        w = np.where(rng.random(n) < shared, u, rng.random(n))
        right = ~(w[None, :] < rate[:, None])
        curves.append(Curve(ALPHAS, np.zeros(11), right.mean(1), correct=right))
    return curves


def coverage(m, barrier, sgd, trials=200, n=500):
    rng = np.random.default_rng(0)
    hits = 0
    for k in range(trials):
        iv = barrier_interval(made_up_pairs(rng, m, n, barrier, sgd), resamples=200, seed=k)
        hits += iv.low <= barrier <= iv.high
    return hits / trials


@pytest.mark.parametrize(
    ("m", "barrier", "sgd", "low", "high"),
    [
        (5, 0.06, 0.015, 0.90, 0.99),  # SGD noise dominates: the t interval on 4 df
        (1, 0.05, 0.0, 0.91, 0.99),  # one pair, no SGD noise: the test set's part alone
        (3, 0.05, 0.01, 0.90, 1.0),  # both: the wide side (the test part partly counted twice)
    ],
)
def test_the_95_percent_interval_covers_a_known_barrier(m, barrier, sgd, low, high):
    assert low <= coverage(m, barrier, sgd) <= high


def test_one_pair_gives_no_sgd_noise_estimate():
    rng = np.random.default_rng(1)
    one = barrier_interval(made_up_pairs(rng, 1, 400, 0.05, 0.01))
    assert not one.judged and one.df is None and math.isnan(one.sgd_stderr)
    assert "test set only" in one.format()
    three = barrier_interval(made_up_pairs(rng, 3, 400, 0.05, 0.01))
    assert three.judged and three.df == pytest.approx(2.0) and three.replicates == 3


def test_interval_uses_t_on_m_minus_1_for_the_spread_and_normal_for_the_test_part():
    values = [0.01, 0.03, 0.05]
    iv = interval(float(np.mean(values)), [values], None, 0.95)
    t = stats.t.ppf(0.975, 2)
    assert iv.high - iv.value == pytest.approx(t * np.std(values, ddof=1) / math.sqrt(3))
    resampled = np.random.default_rng(0).normal(0, 0.01, 5000)
    both = interval(float(np.mean(values)), [values], resampled, 0.95)
    z = stats.norm.ppf(0.975)
    expected = math.hypot(t * np.std(values, ddof=1) / math.sqrt(3), z * np.std(resampled, ddof=1))
    assert both.high - both.value == pytest.approx(expected)


def test_side_reads_the_whole_interval():
    iv = interval(0.05, [[0.04, 0.05, 0.06]], None)
    assert iv.side(0.02) == "above" and iv.side(0.2) == "below" and iv.side(0.05) == "straddles"


def test_bootstrap_redoes_the_argmax_over_alpha():
    """A flat curve whose errors differ by one image at two α: the resampled barrier is the
    larger of the two in every resample, never the fixed argmax's value."""
    n = 200
    right = np.ones((11, n), bool)
    right[3, :10] = False  # 10 wrong at α = 0.3
    right[7, 10:20] = False  # 10 other images wrong at α = 0.7
    curve = Curve(ALPHAS, np.zeros(11), right.mean(1), correct=right)
    w = image_weights(n, 300, 0)
    boot = resampled_barriers([curve], w)[:, 0]
    at3 = (w[:, :10].sum(1)) / n
    at7 = (w[:, 10:20].sum(1)) / n
    assert np.allclose(boot, np.maximum(at3, at7))


def test_resampled_barrier_of_the_identity_resample_is_the_curve_barrier():
    rng = np.random.default_rng(2)
    curves = made_up_pairs(rng, 2, 300, 0.04, 0.01)
    ones = np.ones((1, 300))
    for c, b in zip(curves, resampled_barriers(curves, ones)[0], strict=True):
        assert b == pytest.approx(c.barrier("error", "linear").value)


def test_differences_share_one_resample_of_the_images():
    """The same curves on both sides: the difference is exactly zero in every resample."""
    rng = np.random.default_rng(3)
    curves = made_up_pairs(rng, 3, 300, 0.04, 0.01)
    iv = barrier_difference(curves, curves)
    assert iv.value == 0.0 and iv.test_stderr == 0.0
    acc = accuracy_difference([0.9, 0.91, 0.92], [0.9, 0.91, 0.92], curves, curves)
    assert acc.test_stderr == 0.0 and acc.value == pytest.approx(0.0)


def test_curves_on_different_test_sets_are_refused():
    rng = np.random.default_rng(4)
    a, b = made_up_pairs(rng, 1, 300, 0.04, 0.0), made_up_pairs(rng, 1, 200, 0.04, 0.0)
    with pytest.raises(ValueError, match="share its test images"):
        barrier_difference(a, b)


def test_a_curve_without_evidence_is_named():
    c = Curve(ALPHAS, np.zeros(11), np.ones(11), label="old")
    with pytest.raises(ValueError, match="'old' keeps no per-image evidence"):
        barrier_interval([c])


def test_disjoint_pairs_share_no_seed():
    assert disjoint_pairs([0, 1, 2]) == [(0, 1)]
    assert disjoint_pairs([3, 4, 5, 6]) == [(3, 4), (5, 6)]


def test_bits_round_trip():
    bits = np.random.default_rng(5).random((11, 1003)) < 0.5
    packed = pack_bits(bits)
    assert (
        packed["shape"] == [11, 1003] and len(packed["bits"]) <= 4 * (11 * 1003 // 8 + 3) // 3 + 4
    )
    assert (unpack_bits(packed) == bits).all()


def test_bumps_is_curve_barrier_row_by_row():
    rng = np.random.default_rng(6)
    values = rng.random((4, 11))
    for baseline in ("mean", "linear"):
        heights, where = bumps(values, ALPHAS, baseline)
        for row, h, a in zip(values, heights, where, strict=True):
            b = Curve(ALPHAS, row, 1 - row).barrier("loss", baseline)
            assert (b.value, b.alpha) == pytest.approx((h, a))


@pytest.mark.parametrize(
    "options",
    [{"method": "loop"}, {"method": "vmap"}, {"reuse_first_layer": True}, {"fuse_stem": True}],
)
def test_every_evaluator_path_keeps_the_same_per_image_evidence(options):
    """Independent recomputation: each image's argmax at each point, one forward pass each."""
    data = L.load("digits").subset(np.arange(300))
    a = L.build("convnet3", 10, data.in_shape, init_seed=0, width=8, depth=2)
    b = L.build("convnet3", 10, data.in_shape, init_seed=1, width=8, depth=2)
    pa = {k: v.detach() for k, v in a.named_parameters()}
    pb = {k: v.detach() for k, v in b.named_parameters()}
    coords = np.linspace(0, 1, 3)[:, None]
    ev = Evaluator(a, data, progress=False, batch_size=128, **options)
    got = ev(pa, [sub(pb, pa)], coords, per_image=True)
    assert got.correct.shape == (3, 300)
    assert np.allclose(got.correct.mean(1), got.accuracy)
    import torch

    net = L.build("convnet3", 10, data.in_shape, init_seed=0, width=8, depth=2).eval()
    for p, c in enumerate(coords[:, 0]):
        with torch.no_grad():
            for k, v in net.named_parameters():
                v.copy_(pa[k] + c * (pb[k] - pa[k]))
            expected = (net(data.x).argmax(-1) == data.y).numpy()
        assert (got.correct[p] == expected).all()


def test_interpolate_keeps_its_evidence_through_the_dict():
    data = L.load("digits").subset(np.arange(200))
    a = L.build("mlp", 10, data.in_shape, init_seed=0)
    b = L.build("mlp", 10, data.in_shape, init_seed=1)
    curve = L.interpolate(a, b, data, alphas=5, progress=False)
    assert curve.correct.shape == (5, 200)
    assert np.allclose(curve.correct.mean(1), curve.accuracy)
    again = Curve.from_dict(curve.to_dict())
    assert (again.correct == curve.correct).all()
