"""The explorer's logic without a browser: what it computes, what its controls change in the
figures, its progress indicator, picking from the store, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmc_toolkit import connectivity, landscape, models
from lmc_toolkit.plots.explore import MARKER_TRACES, SLICE_MARKERS, SLICE_TRACE
from lmc_toolkit.pruning import ImpConfig, imp, stored_networks, tickets
from lmc_toolkit.store import Store
from lmc_toolkit.training import TrainConfig, evaluate
from lmc_toolkit.widgets import Explorer, explorer

TOL = 1e-5


def _net(seed: int, width: int = 4) -> torch.nn.Module:
    return models.build("convnet3", 10, (1, 8, 8), width=width, init_seed=seed)


@pytest.fixture(scope="module")
def eval_data(digits_test):
    return digits_test[:60]


@pytest.fixture(scope="module")
def pair():
    return _net(0), _net(1)


@pytest.fixture(scope="module")
def ex(pair, eval_data) -> Explorer:
    return explorer(*pair, eval_data, alphas=5, resolution=3, span=0.5)


def _y(trace) -> np.ndarray:
    return np.asarray(trace.y, float)


def test_curve_is_interpolate_and_drawn(ex, pair, eval_data):
    expected = connectivity.interpolate(*pair, eval_data, alphas=5, progress=False)
    np.testing.assert_allclose(ex.curve.loss, expected.loss, rtol=TOL)
    np.testing.assert_allclose(ex.curve.accuracy, expected.accuracy, atol=1e-12)
    fig = ex.curve_view.figure
    np.testing.assert_allclose(_y(fig.data[0]), expected.loss, rtol=TOL)
    np.testing.assert_allclose(_y(fig.data[1]), 100 * expected.error, rtol=TOL)
    assert ex.errors == []


def test_alpha_slider_moves_the_marker_to_the_nearest_grid_point(ex):
    for value, index in ((1.0, 4), (0.0, 0), (0.3, 1)):
        ex.alpha.value = value
        loss_marker, error_marker = (ex.curve_view.figure.data[i] for i in MARKER_TRACES)
        alpha = ex.curve.alphas[index]
        assert tuple(loss_marker.x) == (alpha,) and tuple(error_marker.x) == (alpha,)
        assert loss_marker.y[0] == pytest.approx(ex.curve.loss[index])
        assert error_marker.y[0] == pytest.approx(100 * ex.curve.error[index])
        assert f"α = {alpha:.2f}" in ex.readout.value


def test_random_slice_matches_random_plane_and_the_centre(ex, pair, eval_data):
    ex.direction.value = "random"
    n, s = ex.resolution.value, ex.span.value
    expected = landscape.random_plane(
        pair[0], eval_data, seeds=(0, 1), x=(-s, s, n), y=(-s, s, n), progress=False
    )
    np.testing.assert_allclose(ex.surface.loss, expected.loss, rtol=TOL)
    centre = evaluate(pair[0], eval_data)
    assert ex.surface.at(0.0, 0.0)[0] == pytest.approx(centre.loss, rel=TOL)
    z = np.asarray(ex.slice_view.figure.data[SLICE_TRACE].z, float)
    np.testing.assert_allclose(z, ex.surface.loss, rtol=TOL)


def test_controls_recompute_the_slice(ex, pair, eval_data):
    ex.resolution.value = 5
    assert ex.surface.loss.shape == (5, 5)
    assert np.asarray(ex.slice_view.figure.data[SLICE_TRACE].z).shape == (5, 5)
    ex.direction.value = "a → b"  # a at (0, 0), b at (1, 0): their own losses
    assert ex.surface.meta["kind"] == "a → b" and ex.surface.meta["span"] == ex.span.value
    assert ex.slice_view.figure.layout.title.text.startswith("a → b slice")
    marks = ex.slice_view.figure.data[SLICE_MARKERS]
    assert list(marks.x) == [0.0, 1.0] and list(marks.text) == ["a", "b"]
    for model, x in zip(pair, (0.0, 1.0), strict=True):
        assert ex.surface.at(x, 0.0)[0] == pytest.approx(evaluate(model, eval_data).loss, rel=TOL)
    before = ex.surface.loss.copy()
    ex.seed.value = 7  # another random second direction: off-axis values change
    assert not np.allclose(ex.surface.loss[0], before[0])
    ex.metric.value = "error"
    z = np.asarray(ex.slice_view.figure.data[SLICE_TRACE].z, float)
    np.testing.assert_allclose(z, 100 * ex.surface.error, rtol=TOL)
    ex.metric.value = "loss"
    ex.resolution.value, ex.direction.value, ex.seed.value = 3, "random", 0


def test_progress_indicator_goes_row_by_row_to_done(ex):
    seen: list[float] = []
    ex.progress.bar.observe(lambda change: seen.append(change["new"]), names="value")
    ex.update_slice()
    n = ex.resolution.value
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert [round(v * n) for v in seen[1:]] == list(range(1, n + 1))
    assert ex.progress.bar.bar_style == "success" and not ex.progress.busy
    assert "slice done" in ex.progress.label.value


def test_switching_to_synthetic_data_evaluates_on_it(pair, eval_data, digits_train):
    fake = digits_train[:30]
    ex = explorer(*pair, eval_data, synthetic={"subset": fake}, alphas=3, resolution=2)
    ex.data.value = "synthetic: subset"
    expected = connectivity.interpolate(*pair, fake, alphas=3, progress=False)
    np.testing.assert_allclose(ex.curve.loss, expected.loss, rtol=TOL)
    assert ex.surface.meta["dataset"] == fake.name and ex.surface.meta["n"] == 30


def test_a_failure_is_shown_not_raised(eval_data):
    ex = explorer(_net(0), _net(1, width=6), eval_data, alphas=3, resolution=2)
    assert ex.curve is None and len(ex.errors) == 1  # the random slice needs only a
    assert "interpolation" in ex.errors[0] and "0.weight" in ex.errors[0]
    ex.direction.value = "a → b"
    assert len(ex.errors) == 2 and ex.progress.bar.bar_style == "danger"
    assert "slice failed" in ex.progress.label.value


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"b": None}, ValueError, "both models"),
        ({"data": None}, TypeError, "Dataset"),
        ({"b": "model"}, TypeError, "nn.Module"),
        ({"alphas": 1}, ValueError, "alphas"),
        ({"resolution": 500}, ValueError, "resolution"),
        ({"span": -1.0}, ValueError, "span"),
        ({"synthetic": {"x": "not data"}}, TypeError, "Dataset"),
        ({"store": "/tmp"}, TypeError, "Store"),
        ({"pick": ("a", "zzz")}, ValueError, "pick"),
    ],
)
def test_bad_input_is_refused_before_computing(pair, eval_data, kwargs, error, match):
    args = {"a": pair[0], "b": pair[1], "data": eval_data, **kwargs}
    with pytest.raises(error, match=match):
        explorer(**args)


def test_an_empty_store_is_refused(eval_data, tmp_path):
    with pytest.raises(ValueError, match="holds 0"):
        explorer(data=eval_data, store=Store(tmp_path))


def test_picks_from_the_store_with_methods_and_masks(digits_small, eval_data, tmp_path):
    store = Store(tmp_path)
    net0 = _net(0)
    config = TrainConfig(steps=3, batch_size=32)
    pruned = imp(net0, digits_small, ImpConfig(rounds=1, rate=0.5, train=config), store=store,
                 progress=False)  # fmt: skip
    mask = pruned.masks[1]
    for seed in (0, 1):
        tickets.train_ticket(net0, None, digits_small, config, seed, store=store, progress=False)
        tickets.train_ticket(net0, mask, digits_small, config, seed, store=store, progress=False)
    listed = stored_networks(store)
    assert sorted((n.method, n.data_seed) for n in listed) == [
        ("IMP", 0), ("IMP", 1), ("dense", 0), ("dense", 1),
    ]  # fmt: skip
    assert all(n.sparsity == pytest.approx(mask.sparsity) for n in listed if n.method == "IMP")
    ex = explorer(data=eval_data, store=store, alphas=3, resolution=2, auto=False)
    assert ex.curve is None  # auto=False: nothing computed until asked
    imp_labels = [label for label in ex.network_a.options if label.startswith("IMP")]
    ex.network_a.value, ex.network_b.value = imp_labels
    a, b, common = ex.picked()
    assert common is not None and common.digest() == mask.digest()
    stored = tickets.train_ticket(net0, mask, digits_small, config, 0, store=store)
    for k, v in a.state_dict().items():
        assert torch.equal(v, stored.state[k])
    ex.compute.click()
    expected = connectivity.interpolate(a, b, eval_data, alphas=3, mask=mask, progress=False)
    np.testing.assert_allclose(ex.curve.loss, expected.loss, rtol=TOL)
    assert ex.surface is not None and ex.surface.meta["sparsity"] == pytest.approx(mask.sparsity)


def test_figure_widgets_are_edited_in_place_once_displayed(pair, eval_data):
    pytest.importorskip("anywidget")
    ex = explorer(*pair, eval_data, alphas=3, resolution=2)  # FigureWidgets by default
    # not displayed yet: edits go to a plain figure (messages to a widget without views are
    # lost), and no FigureWidget exists yet (each carries plotly.js into saved widget state)
    assert ex.curve_view.widget.children == ()
    ex.alpha.value = 0.0
    assert type(ex.curve_view.figure).__name__ == "Figure"
    ex._repr_mimebundle_()  # what displaying the explorer in a notebook calls
    fig = ex.curve_view.figure
    assert ex.curve_view.widget.children == (fig,) and type(fig).__name__ == "FigureWidget"
    assert tuple(fig.data[MARKER_TRACES[0]].x) == (0.0,)  # the edits made before display
    ex._repr_mimebundle_()  # shown again: the same FigureWidget
    assert ex.curve_view.figure is fig
    ex.alpha.value = 1.0
    assert ex.curve_view.figure is fig  # edited in place
    assert tuple(fig.data[MARKER_TRACES[0]].x) == (1.0,)
    assert fig.data[MARKER_TRACES[0]].y[0] == pytest.approx(ex.curve.loss[-1])


def test_figure_widgets_without_anywidget_are_refused(pair, eval_data, monkeypatch):
    from lmc_toolkit.widgets import explorer_widget

    monkeypatch.setattr(explorer_widget, "figure_widgets_available", lambda: False)
    with pytest.raises(ImportError, match="anywidget"):
        explorer(*pair, eval_data, figure_widgets=True)


def _bn_net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 64, 10),
    )


def test_batchnorm_controls_are_off_with_a_note_for_networks_without_it(pair, eval_data):
    from lmc_toolkit.widgets.guide import NO_BATCHNORM

    plain = explorer(*pair, eval_data, auto=False)
    assert plain.curve_bn.disabled and plain.slice_bn.disabled
    assert plain.bn_note.value == NO_BATCHNORM
    with_bn = explorer(_bn_net(0), _bn_net(1), eval_data, auto=False, bn_data=eval_data)
    assert not with_bn.curve_bn.disabled and not with_bn.slice_bn.disabled
    assert with_bn.bn_note.value == ""
    # picking a BatchNorm network later turns the controls on
    plain.add_networks({"bn a": (_bn_net(0), None), "bn b": (_bn_net(1), None)})
    assert not plain.curve_bn.disabled and plain.bn_note.value == ""


def test_added_networks_are_picked_and_computed(pair, eval_data):
    ex = explorer(*pair, eval_data, alphas=3, resolution=2)
    spawned = {"copy 0": (_net(2), None), "copy 1": (_net(3), None)}
    ex.add_networks(spawned)
    assert list(ex.network_a.options) == ["a", "b", "copy 0", "copy 1"]
    assert (ex.network_a.value, ex.network_b.value) == ("copy 0", "copy 1")
    expected = connectivity.interpolate(_net(2), _net(3), eval_data, alphas=3, progress=False)
    np.testing.assert_allclose(ex.curve.loss, expected.loss, rtol=TOL)
    with pytest.raises(ValueError, match="at least two networks, got 1"):
        ex.add_networks({"one": (_net(4), None)})


def test_figures_hold_no_nan_for_the_widget_messages(pair, eval_data):
    from lmc_toolkit.widgets.views import without_nan

    assert without_nan([1.0, float("nan"), float("inf")]) == [1.0, None, None]
    assert without_nan(np.array([[np.nan, 2.0]])) == [[None, 2.0]]
    pytest.importorskip("anywidget")
    ex = explorer(*pair, eval_data, auto=False)  # nothing computed: the empty figures
    ex._repr_mimebundle_()
    for view in (ex.curve_view, ex.slice_view):
        (widget,) = view.widget.children
        for trace in widget.data:
            for axis in ("x", "y", "z"):
                values = getattr(trace, axis, None)
                if values is not None:
                    flat = np.asarray(values, dtype=object).ravel()
                    assert not any(isinstance(v, float) and np.isnan(v) for v in flat)
