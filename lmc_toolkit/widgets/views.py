"""The building blocks of the explorer's display: a plotly figure kept up to date in a notebook,
and a progress indicator. They sit at the plots level (they import plotly and ipywidgets).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import ipywidgets as W
import plotly.graph_objects as go


class FigureView:
    """A plotly figure shown live in a notebook; edit it through `with view.editing() as fig`.

    `live=True` (the explorer's default where anywidget is installed) shows a `FigureWidget`
    that is edited in place once the page shows it. A FigureWidget's edits travel as messages
    to the views that exist, so edits made before it is first displayed would never reach the
    page: until `shown()` is called, each edit builds a fresh FigureWidget from the edited
    figure instead. `live=False` redraws a plain figure in an `Output` after each edit
    (plotly's mime renderer; works wherever plotly's JupyterLab extension does).
    """

    def __init__(self, figure: go.Figure, live: bool = False):
        if live and not figure_widgets_available():
            raise ImportError("live=True needs plotly's FigureWidget, which needs anywidget")
        self.live = live
        self.is_shown = False
        if live:
            self.figure: go.Figure = go.FigureWidget(figure)
            self.widget: W.Widget = W.Box([self.figure])
        else:
            self.figure = figure
            self.widget = W.Output()
            self.refresh()

    def shown(self) -> None:
        """Mark the view as displayed: from now on a live figure is edited in place."""
        self.is_shown = True

    @contextlib.contextmanager
    def editing(self) -> Iterator[go.Figure]:
        if self.live and self.is_shown:
            with self.figure.batch_update():
                yield self.figure
        elif self.live:
            draft = go.Figure(self.figure)
            yield draft
            old, self.figure = self.figure, go.FigureWidget(draft)
            self.widget.children = (self.figure,)
            old.close()
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
