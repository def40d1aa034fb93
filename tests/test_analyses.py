"""The cached analyses behind the figure notebooks, against independent re-computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lmc_toolkit.connectivity import interpolate
from lmc_toolkit.store import Store
from lmc_toolkit.study import Study, study_config
from lmc_toolkit.study import analyses as A


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Study:
    store = Store(tmp_path_factory.mktemp("analyses_store"))
    return Study(study_config("smoke", rounds=2, ticket_rounds=(2,)), store, "cpu", False)


def test_curve_equals_an_independent_interpolation_and_is_cached(study: Study):
    c = A.curve(study, "imp", 2, alphas=5)
    a, b = study.network("imp", 2, 0), study.network("imp", 2, 1)
    direct = interpolate(a, b, study.test_data, 5, mask=study.mask("imp", 2), progress=False)
    np.testing.assert_allclose(c.loss, direct.loss, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c.accuracy, direct.accuracy)
    computed = study.store.computed
    again = A.curve(study, "imp", 2, alphas=5)
    assert study.store.computed == computed
    np.testing.assert_array_equal(again.loss, c.loss)


def test_barrier_table_recomputes_from_tickets_and_curves(study: Study):
    rows = A.barrier_table(study, alphas=5)
    assert [(r.method, r.round) for r in rows] == [
        ("dense", 0),
        ("imp", 2),
        ("distilled-random", 2),
        ("random", 2),
    ]
    summary = study.tickets().summary()
    dense = next(s.mean for s in summary if s.method == "dense")
    for r in rows:
        c = A.curve(study, r.method, r.round, alphas=5)
        assert r.error_barrier == c.barrier("error").value
        assert math.isclose(r.performance_ratio, r.accuracy / dense)


def test_mask_costs_grow_with_rounds_and_distilled_is_cheaper(study: Study):
    costs = {c.method: c for c in A.mask_costs(study)}
    imp, distilled = costs["imp"], costs["distilled-random"]
    assert imp.prune_images == len(study.train_data)
    assert distilled.prune_images == 10 * study.config.ipc
    run = study.run_of("imp")
    assert imp.samples == run.rounds[2].mask_samples > run.rounds[1].mask_samples > 0


def test_round_timings_re_time_one_round_per_method_and_feed_the_costs(study: Study):
    timings = {t.method: t for t in A.round_timings(study, repeats=2)}
    assert set(timings) == {"imp", "distilled-random"}
    for t in timings.values():
        assert len(t.repeat_seconds) == 2 and min(t.repeat_seconds) <= t.round_seconds > 0
    assert timings["distilled-random"].distill_repeat_seconds == []  # a random subset is not made
    costs = {c.method: c for c in A.mask_costs(study, list(timings.values()))}
    assert costs["imp"].quiet_seconds == pytest.approx(2 * timings["imp"].round_seconds)
    assert all(c.quiet_seconds is None for c in A.mask_costs(study))
    with pytest.raises(ValueError, match="repeats must be an int >= 1, got 0"):
        A.round_timings(study, repeats=0)
    with pytest.raises(ValueError, match="at_round must lie in"):
        A.round_timings(study, repeats=1, at_round=99)


def test_mask_convergence_ends_at_the_final_mask(study: Study):
    result = A.mask_convergence(study, "random", sparsity=0.5, checkpoints=3)
    assert len(result.epochs) == 3 and result.epochs == sorted(result.epochs)
    assert result.hamming_to_final[-1] == 0.0 and result.iou_to_final[-1] == 1.0
    with pytest.raises(ValueError, match="sparsity must lie in"):
        A.mask_convergence(study, "random", sparsity=1.5)


def test_curvature_summary_matches_its_parts(study: Study):
    s = A.curvature(study, "dense", 0, images=16, k=2, probes=3, density_steps=5)
    assert s.images == 16 and len(s.eigenvalues) == 2
    assert s.eigenvalues[0] >= s.eigenvalues[1]
    assert s.diagonal["max"] == pytest.approx(max(s.diagonal_sorted))
    grid, density = np.asarray(s.density_grid), np.asarray(s.density)
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-3)
    # instance-norm convnet3: "auto" takes the exact structured route, not the Gauss–Newton one
    assert s.diagonal_route == "structured" and s.diagonal_exact


def test_with_init_shares_data_and_store_but_not_the_initialization(study: Study):
    other = study.with_init(5)
    assert other.config.init_seed == 5 and study.config.init_seed == 0
    assert other.store is study.store and other.sweeps is study.sweeps
    assert torch.equal(other.train_data.x, study.train_data.x)
    assert not torch.equal(
        next(iter(other.model0.parameters())), next(iter(study.model0.parameters()))
    )


def test_aligned_curve_matches_an_independent_interpolation_of_the_aligned_ends(study: Study):
    """F9: the second network comes from another θ0; its 'after' curve is the plain
    interpolation to b permuted by the recorded permutation, each end with its own mask."""
    from lmc_toolkit.alignment import permute
    from lmc_toolkit.pruning import Mask

    result = A.aligned_curve(study, "imp", 2, 0, other_init=1, alphas=5, images=200)
    other = study.with_init(1)
    a, b = study.network("imp", 2, 0), other.network("imp", 2, 0)
    ma, mb = study.mask("imp", 2), other.mask("imp", 2)
    assert not torch.equal(ma["0.weight"], mb["0.weight"])
    perm = result.alignment.permutation
    b_aligned = permute(b, perm)
    for which, end, mask in (("before", b, mb), ("after", b_aligned, permute(Mask(mb), perm))):
        direct = interpolate(a, end, study.test_data, 5, masks=(ma, mask), progress=False)
        np.testing.assert_allclose(getattr(result, which).loss, direct.loss, rtol=1e-5, atol=1e-6)
    assert result.mask_iou is not None and 0 < result.mask_iou[0] < 1
    computed = study.store.computed
    again = A.aligned_curve(study, "imp", 2, 0, other_init=1, alphas=5, images=200)
    assert study.store.computed == computed and again.alignment.permutation == perm
    with pytest.raises(ValueError, match="own init seed"):
        A.aligned_curve(study, "imp", 2, 0, other_init=0)
    with pytest.raises(ValueError, match="align must be one of .* got 'none'"):
        A.aligned_curve(study, "imp", 2, 0, align="none")


def test_aligned_barrier_table_summarizes_the_pairs_of_every_seed(study: Study):
    rows = A.aligned_barrier_table(study, methods=["dense", "imp"], alphas=5, images=200)
    assert [(r.method, r.round, r.pairs) for r in rows] == [("dense", 0, 2), ("imp", 2, 2)]
    for r in rows:
        curves = [A.aligned_curve(study, r.method, r.round, s, alphas=5, images=200)
                  for s in study.config.data_seeds]  # fmt: skip
        for stage in ("before", "after", "repaired"):
            values = [c.barriers()[stage] for c in curves]
            assert r.error_barrier[stage] == pytest.approx(np.mean(values))
            assert r.error_barrier_std[stage] == pytest.approx(np.std(values, ddof=1))
        assert r.noise > 0 and r.repaired_layers == 0  # convnet3: every unit meets an instance norm
        assert (r.iou_before is None) == (r.method == "dense")
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        A.aligned_barrier_table(study, methods=["nope"])


def test_a_reduction_counts_only_beyond_the_spread_and_the_test_resolution():
    def row(before, after, std, noise):
        return A.AlignedRow(
            "dense", 0, 0.0, 2, {"before": before, "after": after, "repaired": after},
            {"before": std, "after": std, "repaired": std}, {"before": 1.0, "after": 0.5},
            noise, None, None, 0.05, 0,
        )  # fmt: skip

    assert row(0.30, 0.05, 0.02, 0.01).separable()
    assert not row(0.30, 0.25, 0.03, 0.01).separable()  # within twice the spread
    assert not row(0.10, 0.07, 0.0, 0.02).separable()  # within twice the test-set resolution
    assert row(0.30, 0.05, 0.0, 0.0).to_dict()["reduction"] == pytest.approx(0.25)
