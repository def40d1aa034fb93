"""The building blocks of the explorer's display: a plotly figure kept up to date in a notebook,
and a progress indicator. They sit at the plots level (they import plotly and ipywidgets).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go


class FigureView:
    """A plotly figure shown live in a notebook; edit it through `with view.editing() as fig`.

    `live=True` (the explorer's default where anywidget is installed) shows a `FigureWidget`
    that is edited in place once the page shows it. A FigureWidget's edits travel as messages
    to the views that exist, so edits made before it is first displayed would never reach the
    page: until `shown()` is called, edits go to a plain figure (`figure`), and `shown()`
    builds the one FigureWidget from it. (Each FigureWidget carries plotly.js, 5 MB, into the
    widget state an executed copy saves: one per view, none per early edit.)
    `live=False` redraws a plain figure in an `Output` after each edit (plotly's mime
    renderer; works wherever plotly's JupyterLab extension does).
    """

    def __init__(self, figure: go.Figure, live: bool = False):
        if live and not figure_widgets_available():
            raise ImportError("live=True needs plotly's FigureWidget, which needs anywidget")
        self.live = live
        self.is_shown = False
        if live:
            self.figure: go.Figure = go.Figure(figure)
            self.widget: W.Widget = W.Box([])  # the FigureWidget comes with `shown()`
        else:
            self.figure = figure
            self.widget = W.Output()
            self.refresh()

    def shown(self) -> None:
        """Mark the view as displayed: a live view's FigureWidget now holds the edited figure
        and is edited in place from here on."""
        if self.live and not self.is_shown:
            self.figure = _figure_widget(self.figure)
            self.widget.children = (self.figure,)
        self.is_shown = True

    @contextlib.contextmanager
    def editing(self) -> Iterator[go.Figure]:
        if self.live and self.is_shown:
            with self.figure.batch_update():
                yield self.figure
        elif self.live:
            yield self.figure
        else:
            yield self.figure
            self.refresh()

    def refresh(self) -> None:
        """Redraw the figure in the `Output` (nothing to do for a `FigureWidget`)."""
        from IPython import get_ipython
        from IPython.display import display

        if self.live or get_ipython() is None:
            return  # a FigureWidget syncs itself; outside IPython there is nothing to draw on
        spec = json.loads(self.figure.to_json())  # plain JSON (arrays as typed-array blobs)
        bundle = {
            "application/vnd.plotly.v1+json": spec,
            "text/plain": f"<plotly figure: {self.figure.layout.title.text}>",
        }
        self.widget.clear_output(wait=True)
        with self.widget:
            display(bundle, raw=True)


def without_nan(values: Any) -> Any:
    """`values` as nested lists with None where a number is NaN or infinite: plotly draws a
    gap there, and the widget messages stay valid JSON (NaN is not JSON; jupyter_client warns
    "Out of range float values are not JSON compliant")."""
    a = np.asarray(values, dtype=object)
    finite = np.isfinite(np.asarray(values, dtype=float))
    return np.where(finite, a, None).tolist()


def _figure_widget(figure: go.Figure) -> go.FigureWidget:
    """A FigureWidget of `figure` with every NaN in its traces' x, y and z turned into None
    (before the widget exists: its constructor sends the data)."""
    clean = go.Figure(figure)
    for trace in clean.data:
        for axis in ("x", "y", "z"):
            values = getattr(trace, axis, None)
            if values is None:
                continue
            try:
                numbers = np.asarray(values, dtype=float)
            except (TypeError, ValueError):
                continue  # labels, not numbers
            if not np.isfinite(numbers).all():
                trace[axis] = without_nan(numbers)
    return go.FigureWidget(clean)


def figure_widgets_available() -> bool:
    """Whether plotly's `FigureWidget` can be built (it needs anywidget)."""
    try:
        import anywidget  # noqa: F401
    except ImportError:
        return False
    return True


class Progress:
    """A progress bar with a line of text: what is being computed and how far it got."""

    def __init__(self) -> None:
        self.bar = W.FloatProgress(value=0.0, min=0.0, max=1.0, layout=W.Layout(width="240px"))
        self.label = W.Label("idle")
        self.widget = W.HBox([self.bar, self.label])
        self.busy = False

    def start(self, what: str) -> None:
        self.busy = True
        self.bar.bar_style = "info"
        self.bar.value = 0.0
        self.label.value = f"computing {what}…"

    def update(self, fraction: float, what: str) -> None:
        self.bar.value = min(max(float(fraction), 0.0), 1.0)
        self.label.value = f"computing {what}… {100 * self.bar.value:.0f}%"

    def finish(self, text: str, failed: bool = False) -> None:
        self.busy = False
        self.bar.value = 1.0
        self.bar.bar_style = "danger" if failed else "success"
        self.label.value = text
