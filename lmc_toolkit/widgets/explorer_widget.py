"""The interactive explorer: pick two networks, see their interpolation curve and a landscape
slice, and change what is computed with widgets.

`explorer(a, b, data)` (or `explorer(data=..., store=store)` to pick among the store's trained
tickets) returns an `Explorer`; display it in a notebook. The interpolation curve has an α
slider that moves a marker along it; the slice has controls for the direction type,
normalization, span, resolution, BatchNorm policy and evaluation data (real or synthetic).
Figures are plotly `FigureWidget`s edited in place where anywidget is installed (or, with
`figure_widgets=False` or without anywidget, plotly figures redrawn in an `Output` after each
change); a progress bar shows what is being computed.
All numbers come from `connectivity.interpolate` and `landscape.plane`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
from torch import Tensor, nn

from lmc_toolkit import connectivity, landscape
from lmc_toolkit.checks import check_int
from lmc_toolkit.data.dataset import Dataset
from lmc_toolkit.landscape.surface import Marker, Surface
from lmc_toolkit.plots.explore import (
    MARKER_TRACES,
    SLICE_MARKERS,
    SLICE_TRACE,
    nearest_index,
    plot_interpolation,
    plot_slice,
    slice_title,
    slice_values,
)
from lmc_toolkit.plots.style import metric_title, plane_axis_titles
from lmc_toolkit.pruning.mask import Mask
from lmc_toolkit.training.batchnorm import has_running_stats
from lmc_toolkit.training.params import norm
from lmc_toolkit.widgets.checks import check_choices
from lmc_toolkit.widgets.guide import NO_BATCHNORM, WHAT_TO_LOOK_FOR
from lmc_toolkit.widgets.views import (
    FigureView,
    Progress,
    figure_widgets_available,
    without_nan,
)

DIRECTIONS = ("random", "a → b")


SLICE_BN = ("recalibrate", "eval")


CURVE_BN = ("recalibrate", "eval", "interpolate")


METRICS = ("loss", "error")


Network: TypeAlias = tuple[nn.Module, Mask | None]


@dataclass(frozen=True)
class SlicePlane:
    """A plane to slice: centre + x·d1 + y·d2 over the grids x, y ((start, stop, n))."""

    center: dict[str, Tensor]
    d1: dict[str, Tensor]
    d2: dict[str, Tensor]
    x: tuple[float, float, int]
    y: tuple[float, float, int]
    markers: tuple[Marker, ...]
    meta: dict[str, Any]


class Explorer:
    """Two networks' interpolation curve and a landscape slice around them, with controls.

    `networks` maps a label to a model (with an optional mask) or to a function loading one;
    `datasets` maps a label to an evaluation set (the first is the default). Attributes named
    after the controls (`alpha`, `direction`, `span`, ...) are the widgets themselves.
    """

    def __init__(
        self,
        networks: Mapping[str, Network | Callable[[], Network]],
        datasets: Mapping[str, Dataset],
        *,
        pick: tuple[str, str] | None = None,
        alphas: int = 11,
        resolution: int = 11,
        span: float = 1.0,
        seed: int = 0,
        auto: bool = True,
        bn_data: Dataset | None = None,
        figure_widgets: bool | None = None,
        **evaluator_options: Any,
    ):
        check_choices(networks, datasets, pick)
        if figure_widgets is None:
            figure_widgets = figure_widgets_available()
        if figure_widgets and not figure_widgets_available():
            raise ImportError(
                "figure_widgets=True needs plotly's FigureWidget: pip install anywidget"
            )
        check_int("alphas", alphas, 2, 101)
        check_int("resolution", resolution, 2, 101)
        if not (isinstance(span, int | float) and 0 < span <= 10):
            raise ValueError(f"span must be a number in (0, 10], got {span!r}")
        self._networks = dict(networks)
        self._loaded: dict[str, Network] = {}
        self._datasets = dict(datasets)
        self.bn_data = bn_data
        self.evaluator_options = {"compile": False, **evaluator_options}
        self.curve: connectivity.Curve | None = None
        self.surface: Surface | None = None
        self.errors: list[str] = []
        names = list(networks)
        pick = pick or (names[0], names[1])
        self.progress = Progress()
        self._curve_controls(names, pick, list(datasets), alphas)
        self._slice_controls(span, resolution, seed, auto)
        self.curve_view = FigureView(_empty_curve_figure(), live=figure_widgets)
        self.slice_view = FigureView(_empty_slice_figure(), live=figure_widgets)
        self.widget = self._layout()
        self._connect()
        self.sync_bn_controls()
        if auto:
            self.update()

    def _curve_controls(
        self, names: list[str], pick: tuple[str, str], datasets: list[str], alphas: int
    ) -> None:
        """The pair of networks, the data, and the interpolation's points, policy and α."""
        wide = {"layout": W.Layout(width="430px"), "style": {"description_width": "initial"}}
        self.network_a = W.Dropdown(options=names, value=pick[0], description="network a", **wide)
        self.network_b = W.Dropdown(options=names, value=pick[1], description="network b", **wide)
        self.data = W.Dropdown(options=datasets, description="data")
        self.points = W.IntSlider(
            alphas, min=2, max=101, description="α points", continuous_update=False
        )
        self.curve_bn = W.Dropdown(options=CURVE_BN, description="BN policy")
        self.alpha = W.FloatSlider(
            0.5, min=0.0, max=1.0, step=0.01, description="α", readout_format=".2f"
        )
        self.readout = W.Label()

    def _slice_controls(self, span: float, resolution: int, seed: int, auto: bool) -> None:
        """The slice's direction, normalization, span, grid, policy, seed and metric, and the
        compute button."""
        self.direction = W.Dropdown(options=DIRECTIONS, description="direction")
        self.norm = W.Dropdown(options=landscape.NORMS, description="normalize")
        self.span = W.FloatSlider(
            float(span), min=0.1, max=3.0, step=0.1, description="span", continuous_update=False
        )
        self.resolution = W.IntSlider(
            resolution, min=2, max=41, description="resolution", continuous_update=False
        )
        self.slice_bn = W.Dropdown(options=SLICE_BN, description="BN policy")
        self.seed = W.BoundedIntText(seed, min=0, max=2**31 - 1, description="seed")
        self.metric = W.Dropdown(options=METRICS, description="metric")
        self.compute = W.Button(description="compute", icon="refresh")
        self.auto = W.Checkbox(auto, description="recompute on change")
        self.bn_note = W.Label()

    # -- layout and events -------------------------------------------------------------------
    def _layout(self) -> W.Widget:
        picks = W.HBox([self.network_a, self.network_b, self.data])
        curve = W.VBox(
            [
                W.HBox([self.points, self.curve_bn]),
                self.curve_view.widget,
                W.HBox([self.alpha, self.readout]),
            ]
        )
        slice_controls = W.VBox(
            [
                W.HBox([self.direction, self.norm, self.seed]),
                W.HBox([self.span, self.resolution]),
                W.HBox([self.slice_bn, self.metric]),
            ]
        )
        tabs = W.Tab([curve, W.VBox([slice_controls, self.slice_view.widget])])
        tabs.set_title(0, "interpolation")
        tabs.set_title(1, "landscape slice")
        guide = W.Accordion([W.HTML(WHAT_TO_LOOK_FOR)])
        guide.set_title(0, "what to look for")
        box = W.VBox(
            [
                picks,
                W.HBox([self.compute, self.auto, self.progress.widget]),
                self.bn_note,
                tabs,
                guide,
            ]
        )
        box.add_class("lmc-explorer")
        return box

    def _connect(self) -> None:
        def on(widgets: Sequence[W.Widget], action: Callable[[], None]) -> None:
            for w in widgets:
                w.observe(lambda _change: self._maybe(action), names="value")

        on([self.network_a, self.network_b, self.data], self.update)
        for w in (self.network_a, self.network_b):
            w.observe(lambda _change: self.sync_bn_controls(), names="value")
        on([self.points, self.curve_bn], self.update_curve)
        on(
            [self.direction, self.norm, self.span, self.resolution, self.slice_bn, self.seed],
            self.update_slice,
        )
        self.alpha.observe(lambda _change: self.move_alpha(), names="value")
        self.metric.observe(lambda _change: self.draw_slice(), names="value")
        self.compute.on_click(lambda _button: self.update())

    def _maybe(self, action: Callable[[], None]) -> None:
        if self.auto.value:
            action()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        for view in (self.curve_view, self.slice_view):
            view.shown()  # the page now holds the figures: edit them in place from here on
        return self.widget._repr_mimebundle_(**kwargs)

    # -- what is picked ----------------------------------------------------------------------
    def network(self, label: str) -> Network:
        """The model and mask behind a picker label (loaded from the store once)."""
        if label not in self._loaded:
            entry = self._networks[label]
            self._loaded[label] = entry() if callable(entry) else entry
        return self._loaded[label]

    def picked(self) -> tuple[nn.Module, nn.Module, Mask | None]:
        """Networks a and b, and their common mask (None unless both have the same mask)."""
        (a, mask_a), (b, mask_b) = (
            self.network(self.network_a.value),
            self.network(self.network_b.value),
        )
        same = mask_a is not None and mask_b is not None and mask_a.digest() == mask_b.digest()
        return a, b, mask_a if same else None

    def sync_bn_controls(self) -> None:
        """Disable the BatchNorm policy controls (with a one-line note) where neither picked
        network has running statistics: the policy changes nothing there."""
        try:
            a, b, _mask = self.picked()
        except (ValueError, TypeError, RuntimeError, OSError) as exc:  # a store entry that fails
            self.errors.append(f"loading the networks: {exc}")
            return
        used = has_running_stats(a) or has_running_stats(b)
        self.curve_bn.disabled = self.slice_bn.disabled = not used
        self.bn_note.value = "" if used else NO_BATCHNORM

    def add_networks(self, networks: Mapping[str, Network], pick: bool = True) -> None:
        """Add networks to both pickers (e.g. a pair of copies spawned at some k); with `pick`,
        select the first two added as a and b (which recomputes when `auto` is on)."""
        new = dict(networks)
        if pick and len(new) < 2:
            raise ValueError(f"pick=True needs at least two networks, got {len(new)}")
        self._networks.update(new)
        for label in new:
            self._loaded.pop(label, None)
        names = list(self._networks)
        for w in (self.network_a, self.network_b):
            w.options = names
        if pick:
            first, second = list(new)[:2]
            auto, self.auto.value = self.auto.value, False  # one recompute, not one per picker
            self.network_a.value, self.network_b.value = first, second
            self.auto.value = auto
            self._maybe(self.update)

    @property
    def dataset(self) -> Dataset:
        return self._datasets[self.data.value]

    # -- computing ---------------------------------------------------------------------------
    def update(self) -> None:
        """Recompute the curve and the slice for the current picks."""
        self.update_curve()
        self.update_slice()

    def _guard(self, what: str, work: Callable[[], str]) -> None:
        self.progress.start(what)
        try:
            text = work()
        except (ValueError, TypeError, RuntimeError) as exc:
            self.errors.append(f"{what}: {exc}")
            self.progress.finish(f"{what} failed: {exc}", failed=True)
            return
        self.progress.finish(text)

    def update_curve(self) -> None:
        """Interpolate a → b on the chosen data with the chosen α grid and BN policy."""

        def work() -> str:
            a, b, mask = self.picked()
            curve = connectivity.interpolate(
                a, b, self.dataset, alphas=self.points.value, bn=self.curve_bn.value, mask=mask,
                bn_data=self.bn_data, label="a → b",
                progress=False, **self.evaluator_options,
            )  # fmt: skip
            self.curve = curve
            self.alpha.step = 1.0 / (len(curve.alphas) - 1)
            self.draw_curve()
            barrier = curve.barrier("error")
            return f"error barrier {100 * barrier.value:.2f}% at α = {barrier.alpha:.2f}"

        self._guard("interpolation", work)

    def slice_plane(self) -> SlicePlane:
        """The plane the slice controls describe: around a, along two random directions
        (`"random"`), or along b − a and a random direction orthogonal to it, scaled to the
        same length, so that a sits at (0, 0) and b at (1, 0) (`"a → b"`)."""
        a, b, mask = self.picked()
        center = {k: v.detach() for k, v in a.state_dict().items()}
        params = {k: p.detach() for k, p in a.named_parameters()}
        s, n, seed = float(self.span.value), int(self.resolution.value), int(self.seed.value)
        norm_kind = self.norm.value
        meta = {"kind": self.direction.value, "norm": norm_kind, "seed": seed, "span": s}
        if self.direction.value == "random":
            d1 = landscape.random_direction(params, seed, norm_kind, mask=mask)
            d2 = landscape.random_direction(params, seed + 1, norm_kind, mask=mask)
            markers: tuple[Marker, ...] = (Marker("a", 0.0, 0.0),)
            return SlicePlane(center, d1, d2, (-s, s, n), (-s, s, n), markers, meta)
        d1 = landscape.towards(a, b)
        d2 = landscape.orthogonalize(
            d1, landscape.random_direction(params, seed, norm_kind, mask=mask)
        )
        scale = float(norm(d1)) / max(float(norm(d2)), 1e-30)
        d2 = {k: v * scale for k, v in d2.items()}
        markers = (Marker("a", 0.0, 0.0), Marker("b", 1.0, 0.0))
        return SlicePlane(center, d1, d2, (-s, 1 + s, n), (-0.5 - s, 0.5 + s, n), markers, meta)

    def update_slice(self) -> None:
        """Compute the slice row by row, redrawing it and the progress bar after each row."""

        def work() -> str:
            a, _b, mask = self.picked()
            p = self.slice_plane()
            n = int(self.resolution.value)
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "slice.pt"
                while True:
                    surface = landscape.plane(
                        p.center, p.d1, p.d2, self.dataset, x=p.x, y=p.y, bn=self.slice_bn.value,
                        mask=mask, model=a, bn_data=self.bn_data, markers=p.markers, meta=p.meta,
                        path=path, max_points=n, progress=False, **self.evaluator_options,
                    )  # fmt: skip
                    self.surface = surface
                    self.draw_slice()
                    self.progress.update(1 - surface.missing / surface.loss.size, "slice")
                    if surface.complete:
                        break
            lo = float(surface.loss.min())
            return f"slice done: {n}×{n} points, lowest loss {lo:.3f}"

        self._guard("slice", work)

    # -- drawing -----------------------------------------------------------------------------
    def draw_curve(self) -> None:
        """Put the current curve into the figure (traces edited in place)."""
        if self.curve is None:
            return
        new = plot_interpolation(self.curve, self.alpha.value)
        with self.curve_view.editing() as fig:
            for old, fresh in zip(fig.data, new.data, strict=True):
                old.update(x=fresh.x, y=without_nan(fresh.y), name=fresh.name)
            fig.layout.title.text = new.layout.title.text
        self.move_alpha()

    def move_alpha(self) -> None:
        """Move the α marker to the grid point nearest the slider and show its numbers."""
        if self.curve is None:
            return
        c = self.curve
        i = nearest_index(c.alphas, self.alpha.value)
        with self.curve_view.editing() as fig:
            fig.data[MARKER_TRACES[0]].update(x=[float(c.alphas[i])], y=without_nan([c.loss[i]]))
            fig.data[MARKER_TRACES[1]].update(
                x=[float(c.alphas[i])], y=without_nan([100 * c.error[i]])
            )
        self.readout.value = (
            f"α = {c.alphas[i]:.2f}: loss {c.loss[i]:.4f}, error {100 * c.error[i]:.2f}%"
        )

    def draw_slice(self) -> None:
        """Put the current surface (partial ones included) into the slice figure."""
        surface = self.surface
        if surface is None:
            return
        marks = surface.markers
        with self.slice_view.editing() as fig:
            fig.data[SLICE_TRACE].update(
                x=surface.x, y=surface.y, z=without_nan(slice_values(surface, self.metric.value)),
                colorbar={"title": {"text": metric_title(self.metric.value)}},
            )  # fmt: skip
            fig.data[SLICE_MARKERS].update(
                x=[m.x for m in marks], y=[m.y for m in marks], text=[m.label for m in marks]
            )
            fig.layout.title.text = slice_title(surface)
            x_title, y_title = plane_axis_titles(surface.meta)
            fig.layout.xaxis.title.text, fig.layout.yaxis.title.text = x_title, y_title


def _empty_curve_figure() -> go.Figure:
    nan = np.full(2, np.nan)
    empty = connectivity.Curve(np.array([0.0, 1.0]), nan, nan, label="(not computed)")
    return plot_interpolation(empty, 0.0, title="interpolation (not computed yet)")


def _empty_slice_figure() -> go.Figure:
    from lmc_toolkit.landscape.surface import empty_surface

    return plot_slice(
        empty_surface([0.0, 1.0], [0.0, 1.0], (), {}), title="slice (not computed yet)"
    )
