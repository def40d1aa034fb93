"""Directions, lines and planes against per-point evaluation; resumable surfaces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import tensors_equal

from lmc_toolkit import models
from lmc_toolkit.data import Dataset
from lmc_toolkit.landscape import (
    Surface,
    line,
    orthogonalize,
    paper_plane,
    plane,
    plane_through,
    random_direction,
    random_plane,
    towards,
)
from lmc_toolkit.training import evaluate
from lmc_toolkit.training import params as P


def _net(seed, width=4):
    return models.build("convnet3", 10, (1, 8, 8), init_seed=seed, width=width)


def _mask(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        k: torch.rand(p.shape, generator=g) < 0.6
        for k, p in model.named_parameters()
        if p.dim() > 1
    }


def _loss_at(model, point, data):
    return evaluate(P.with_state(model, point), data).loss


def test_filter_normalized_directions_match_the_weight_filters():
    model = _net(0)
    d = random_direction(model, seed=3)
    for name, w in model.named_parameters():
        if w.dim() <= 1:
            assert not d[name].any()
        else:
            dims = tuple(range(1, w.dim()))
            want = torch.linalg.vector_norm(w.detach(), dim=dims)
            got = torch.linalg.vector_norm(d[name], dim=dims)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    assert tensors_equal(d, random_direction(model, seed=3))
    assert not torch.equal(d["0.weight"], random_direction(model, seed=4)["0.weight"])
    layer = random_direction(model, 3, norm="layer", ignore_1d=False)
    for name, w in model.named_parameters():
        assert float(layer[name].norm()) == pytest.approx(float(w.detach().norm()), rel=1e-5)


def test_pruned_coordinates_are_zero_in_every_direction():
    model = _net(0)
    mask = _mask(model)
    for norm in ("filter", "layer", "none"):
        d = random_direction(model, 1, norm=norm, mask=mask)
        assert all(not d[k][~m].any() for k, m in mask.items())
    d = random_direction(model, 1, mask=mask)
    w = {k: v.detach() * mask[k] for k, v in model.named_parameters() if k in mask}
    for k in mask:
        dims = tuple(range(1, w[k].dim()))
        torch.testing.assert_close(
            torch.linalg.vector_norm(d[k], dim=dims), torch.linalg.vector_norm(w[k], dim=dims)
        )


def test_orthogonalize_and_towards():
    a, b = _net(0), _net(1)
    d1, d2 = random_direction(a, 0), random_direction(a, 1)
    o = orthogonalize(d1, d2)
    assert abs(float(P.dot(d1, o))) < 1e-6 * float(P.norm(d1) * P.norm(o))
    t = towards(a, b)
    assert tensors_equal(t, P.sub(P.params_of(b), P.params_of(a)))


def test_plane_equals_a_per_point_loop_and_its_centre(digits_small):
    center = _net(0)
    d1, d2 = random_direction(center, 0), random_direction(center, 1)
    surface = plane(center, d1, d2, digits_small, x=(-1, 1, 3), y=(-0.5, 0.5, 3), progress=False)
    assert surface.loss.shape == (3, 3) and surface.complete
    assert surface.loss[1, 1] == pytest.approx(evaluate(center, digits_small).loss, abs=1e-6)
    base = P.params_of(center)
    for i, yv in enumerate(surface.y):
        for j, xv in enumerate(surface.x):
            point = {k: base[k] + xv * d1[k] + yv * d2[k] for k in base}
            assert surface.loss[i, j] == pytest.approx(
                _loss_at(center, point, digits_small), abs=1e-5
            )
    assert surface.markers[0].label == "center" and surface.bn == "recalibrate"


def test_masked_plane_and_line(digits_small):
    center = _net(0)
    mask = _mask(center)
    d1, d2 = random_direction(center, 0), random_direction(center, 1)  # not masked: plane masks
    surface = plane(
        center, d1, d2, digits_small, x=[0.0, 1.0], y=[0.0, 0.5], mask=mask, progress=False
    )
    base = {k: v * mask[k] if k in mask else v for k, v in P.params_of(center).items()}
    md1 = {k: v * mask[k] if k in mask else v for k, v in d1.items()}
    md2 = {k: v * mask[k] if k in mask else v for k, v in d2.items()}
    point = {k: base[k] + 1.0 * md1[k] + 0.5 * md2[k] for k in base}
    assert surface.loss[1, 1] == pytest.approx(_loss_at(center, point, digits_small), abs=1e-5)
    curve = line(center, d1, digits_small, span=(0.0, 1.0), n=2, mask=mask, progress=False)
    point = {k: base[k] + md1[k] for k in base}
    assert curve.loss[1] == pytest.approx(_loss_at(center, point, digits_small), abs=1e-5)
    assert curve.kind == "line"


def test_plane_through_three_models(digits_small):
    a, b, c = _net(0), _net(1), _net(2)
    surface = plane_through(a, b, c, digits_small, x=[0.0, 1.0], y=[0.0, 1.0], progress=False)
    assert [(m.label, m.x, m.y) for m in surface.markers[:2]] == [("a", 0, 0), ("b", 1, 0)]
    assert surface.markers[2].y == 1.0
    assert surface.at(0, 0)[0] == pytest.approx(evaluate(a, digits_small).loss, abs=1e-5)
    assert surface.at(1, 0)[0] == pytest.approx(evaluate(b, digits_small).loss, abs=1e-5)
    xc = surface.markers[2].x
    s2 = plane_through(a, b, c, digits_small, x=[0.0, xc], y=[0.0, 1.0], progress=False)
    assert s2.at(xc, 1.0)[0] == pytest.approx(evaluate(c, digits_small).loss, abs=1e-5)


def test_paper_plane_marks_all_four_models(digits_small):
    nets = [_net(s) for s in range(4)]
    before = [P.state_of(n) for n in nets]
    surface = paper_plane(
        nets, digits_small, x=[-1.0, 0.0, 1.0], y=[-1.0, 0.0, 1.0], progress=False
    )
    m = {k.label: k for k in surface.markers}
    assert (m["θ0"].x, m["θ0"].y) == pytest.approx((1, 0), abs=1e-6)
    assert (m["θ1"].x, m["θ1"].y) == pytest.approx((-1, 0), abs=1e-6)
    assert m["θ0"].off_plane == pytest.approx(0, abs=1e-4) and m["θ2"].off_plane > 0
    assert surface.at(1, 0)[0] == pytest.approx(evaluate(nets[0], digits_small).loss, abs=1e-5)
    assert surface.at(-1, 0)[0] == pytest.approx(evaluate(nets[1], digits_small).loss, abs=1e-5)
    assert all(tensors_equal(P.state_of(n), s) for n, s in zip(nets, before, strict=True))


def test_a_resumed_grid_equals_an_uninterrupted_one(digits_small, tmp_path):
    center = _net(0)
    d1, d2 = random_direction(center, 0), random_direction(center, 1)
    grid = {"x": (-1.0, 1.0, 4), "y": (-1.0, 1.0, 3)}
    whole = plane(center, d1, d2, digits_small, **grid, progress=False)
    path = tmp_path / "plane.pt"
    part = plane(
        center, d1, d2, digits_small, **grid, path=path, max_points=5, block=2, progress=False
    )
    assert part.missing == 7 and Surface.load(path).missing == 7
    resumed = plane(center, d1, d2, digits_small, **grid, path=path, progress=False)
    assert resumed.complete
    np.testing.assert_allclose(resumed.loss, whole.loss, rtol=0, atol=1e-7)
    np.testing.assert_allclose(resumed.accuracy, whole.accuracy, rtol=0, atol=1e-12)
    other = random_direction(center, 7)
    with pytest.raises(ValueError, match="holds another plane"):
        plane(center, other, d2, digits_small, **grid, path=path, progress=False)


def test_surface_round_trips(digits_small, tmp_path):
    s = random_plane(
        _net(0), digits_small, seeds=(3, 4), x=(-1, 1, 2), y=(-1, 1, 2), progress=False
    )
    assert (
        s.meta["seeds"] == [3, 4] and s.meta["norm"] == "filter" and s.meta["dataset"] == "digits"
    )
    back = Surface.load(s.save(tmp_path / "s.pt"))
    np.testing.assert_array_equal(back.loss, s.loss)
    assert back.markers == s.markers and back.meta == s.meta
    again = Surface.from_dict(s.to_dict())
    np.testing.assert_array_equal(again.accuracy, s.accuracy)


def test_planes_on_synthetic_data(digits_small):
    g = torch.Generator().manual_seed(0)
    synthetic = Dataset(
        torch.randn(20, 1, 8, 8, generator=g),
        torch.arange(20) % 10,
        tuple("0123456789"),
        "synthetic",
    )
    center = _net(0)
    s = random_plane(center, synthetic, x=(-1, 1, 2), y=(-1, 1, 3), progress=False)
    assert s.complete and s.meta["dataset"] == "synthetic"


def test_bad_grids_and_policies_are_refused(digits_small):
    center = _net(0)
    d1, d2 = random_direction(center, 0), random_direction(center, 1)
    with pytest.raises(ValueError, match="at least 2 points"):
        plane(center, d1, d2, digits_small, x=(-1, 1, 1))
    with pytest.raises(ValueError, match="at least 2 points"):
        plane(center, d1, d2, digits_small, y=[0.5])
    with pytest.raises(ValueError, match="interpolation between two models only"):
        plane(center, d1, d2, digits_small, bn="interpolate")
    with pytest.raises(ValueError, match="norm must be one of"):
        random_direction(center, 0, norm="unit")
    with pytest.raises(ValueError, match="exactly 4 solutions"):
        paper_plane([center] * 3, digits_small)
    wide = random_direction(_net(0, width=8), 0)
    with pytest.raises(ValueError, match="'0.weight' has shape"):
        plane(center, wide, d2, digits_small)
