"""The cached analyses behind the figure notebooks, against independent re-computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

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
