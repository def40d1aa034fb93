"""Barriers and accuracies judged against their noise: spread over pairs and test-set size."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lmc_toolkit.connectivity import (
    Instability,
    Measurement,
    accuracy_estimate,
    barrier_estimate,
    binomial_stderr,
    compare,
    estimate,
    failed_pairs,
    paired_stderr,
    peaks_inside,
    untrained,
)
from lmc_toolkit.landscape import Curve
from lmc_toolkit.training import TrainConfig


def _curve(errors, n=400):
    errors = np.asarray(errors, float)
    alphas = np.linspace(0, 1, len(errors))
    return Curve(alphas, errors * 2, 1 - errors, "none", "interpolation", "", {"n": n})


def _result(curves):
    pairs = tuple((2 * i, 2 * i + 1) for i in range(len(curves)))
    accs = {}
    for (a, b), c in zip(pairs, curves, strict=True):
        accs[str(a)], accs[str(b)] = float(c.accuracy[0]), float(c.accuracy[-1])
    return Instability(
        k=0,
        pairs=pairs,
        curves=tuple(curves),
        error_barriers=np.array([c.barrier("error").value for c in curves]),
        loss_barriers=np.array([c.barrier("loss").value for c in curves]),
        children={},
        config=TrainConfig(),
        bn="none",
        meta={"child_accuracy": accs},
    )


def test_estimate_combines_the_spread_over_runs_and_the_test_sets_part():
    m = estimate([0.1, 0.3], 0.02, 100)
    spread = np.std([0.1, 0.3], ddof=1) / math.sqrt(2)
    assert m.value == pytest.approx(0.2)
    assert m.stderr == pytest.approx(math.hypot(spread, 0.02))
    assert estimate([0.5], 0.0, 400).stderr == 0.0  # one run: no spread to measure
    assert m.format() == f"20.0 ± {100 * m.stderr:.1f} points"
    with pytest.raises(ValueError, match="at least one value"):
        estimate([], 0.1, 10)
    with pytest.raises(ValueError, match="test_images must be a positive int, got 0"):
        estimate([0.1], 0.1, 0)


def test_binomial_and_paired_standard_errors():
    assert binomial_stderr(0.2, 100) == pytest.approx(math.sqrt(0.2 * 0.8 / 100))
    assert binomial_stderr(1.0, 400) == pytest.approx(1 / 400)  # never below one image
    # two rates on the same images that disagree on 4% of them
    assert paired_stderr(0.04, 100) == pytest.approx(math.sqrt(0.04 / 100))
    assert paired_stderr(0.0, 400) == pytest.approx(1 / 400)
    assert paired_stderr(-0.04, 100) == paired_stderr(0.04, 100)


def test_barrier_estimate_uses_the_pairs_and_the_paired_test_error():
    result = _result([_curve([0.1, 0.5, 0.1]), _curve([0.1, 0.3, 0.1])])
    m = barrier_estimate(result)
    assert m.value == pytest.approx(0.3) and m.samples == 2 and m.test_images == 400
    spread = np.std([0.4, 0.2], ddof=1) / math.sqrt(2)
    assert m.stderr == pytest.approx(math.hypot(spread, math.sqrt(0.3 / 400)))
    loss = barrier_estimate(result, "loss")
    assert loss.value == pytest.approx(0.6) and loss.stderr == pytest.approx(2 * spread)
    with pytest.raises(ValueError, match="metric must be 'error' or 'loss', got 'acc'"):
        barrier_estimate(result, "acc")
    acc = accuracy_estimate(result)
    assert acc.value == pytest.approx(0.9) and acc.samples == 4
    assert acc.stderr == pytest.approx(binomial_stderr(0.9, 400))  # four equal accuracies


def test_compare_orders_only_beyond_z_standard_errors():
    a, b = Measurement(0.01, 0.005, 3, 1000), Measurement(0.10, 0.01, 3, 1000)
    assert compare(a, b, ("IMP", "dense")).startswith("IMP is lower than dense")
    assert compare(b, a, ("dense", "IMP")).startswith("IMP is lower than dense")
    close = Measurement(0.02, 0.01, 2, 500)
    verdict = compare(a, close, ("IMP", "distilled"))
    assert verdict.startswith("IMP and distilled: not separable at this scale")
    assert "-1.0 ± 1.1 points" in verdict


def test_untrained_copies_and_bumps_inside_the_path():
    flat_ends = _curve([0.5, 0.4, 0.1])  # the highest error is an endpoint: no bump
    bump = _curve([0.1, 0.3, 0.1])
    result = _result([flat_ends, bump])
    assert untrained(result, 0.6) == [0]
    assert failed_pairs(result, 0.6) == [(0, 1)]
    assert peaks_inside(result) == 1
    # the pair with an untrained copy is left out of the barrier
    kept = barrier_estimate(result, floor=0.6)
    assert kept.samples == 1 and kept.value == pytest.approx(bump.barrier("error").value)
    with pytest.raises(ValueError, match="every pair has a copy below the accuracy floor 0.95"):
        barrier_estimate(result, floor=0.95)
