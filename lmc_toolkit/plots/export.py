"""What a figure notebook writes: each plotly figure as PNG, offline HTML and JSON.

A notebook saves each figure through `FigureOutput.save`, which writes, in the figure's folder
`reports/<preset>/<figure id>/`:
- `<name>.png`, a static image (kaleido with a Chromium; skipped with a recorded reason when no
  browser is installed),
- `<name>.html`, interactive and offline: it loads the one shared `../plotly.min.js`,
- `<name>.json`, the numbers behind the figure.
Headline numbers (accuracy and barrier per method and sparsity, top eigenvalue and trace per
method) go to `headline.json` through `FigureOutput.headline`, which the report index
(`lmc_toolkit.study.figures.reports.write_index`) gathers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmc_toolkit.store.files import atomic_json_save, atomic_write, read_json

PLOTLY_JS = "plotly.min.js"
#: the file of a figure's folder its headline numbers go to (the report index gathers them)
HEADLINE = "headline.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Artifact:
    """The files written for one figure (paths relative to the preset folder)."""

    name: str
    png: str | None
    html: str
    json: str
    png_error: str | None = None


@dataclass(frozen=True)
class FigureOutput:
    """Where one figure notebook writes: `root/<figure>/`; `root` is `reports/<preset>`."""

    root: Path
    figure: str
    static: bool = True

    @property
    def folder(self) -> Path:
        return self.root / self.figure

    def save(self, name: str, fig: Any, data: Mapping[str, Any] | None = None) -> Artifact:
        """Write `fig` as PNG and offline HTML, and `data` as JSON, under `name`."""
        if not _NAME.fullmatch(name):
            raise ValueError(
                f"a figure name must be letters, digits, '_', '.' or '-', got {name!r}"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        ensure_plotly_js(self.root)
        # every file through a temporary one and a rename: a killed run leaves none half-written
        page = fig.to_html(include_plotlyjs=f"../{PLOTLY_JS}", full_html=True)
        atomic_write(self.folder / f"{name}.html", lambda f: f.write(page.encode()))
        atomic_json_save(strict_json(dict(data or {})), self.folder / f"{name}.json")
        png, error = None, None
        if self.static:
            try:
                image = fig.to_image(format="png", width=900, height=560, scale=1)
                atomic_write(self.folder / f"{name}.png", lambda f: f.write(image))
                png = f"{self.figure}/{name}.png"
            except Exception as exc:  # no Chromium, or kaleido missing: keep going without PNG
                error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return Artifact(
            name=name,
            png=png,
            html=f"{self.figure}/{name}.html",
            json=f"{self.figure}/{name}.json",
            png_error=error,
        )

    def data(self, name: str, data: Mapping[str, Any]) -> Path:
        """Write `data` alone as strict JSON under `name` (evidence with no figure of its own)."""
        if not _NAME.fullmatch(name):
            raise ValueError(
                f"a figure name must be letters, digits, '_', '.' or '-', got {name!r}"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        return atomic_json_save(strict_json(dict(data)), self.folder / f"{name}.json")

    def headline(self, title: str, rows: Sequence[Mapping[str, Any]]) -> Path:
        """Record a table of headline numbers (one dict per row) for the report index."""
        path = self.folder / HEADLINE
        tables = read_json(path, default={})
        tables[title] = [dict(r) for r in rows]
        return atomic_json_save(strict_json(tables), path)


def strict_json(obj: Any) -> Any:
    """`obj` with every NaN or infinite float (also in numpy scalars and arrays) as None, so
    that the report's JSON is strict (`NaN` is not JSON, and strict parsers reject it)."""
    if isinstance(obj, Mapping):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strict_json(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, str | bytes):
        return strict_json(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def figure_output(figure: str, out: str | Path, static: bool = True) -> FigureOutput:
    """The `FigureOutput` of figure `figure` (e.g. "F1") under the preset folder `out`."""
    if not _NAME.fullmatch(figure):
        raise ValueError(f"a figure id must be letters, digits, '_', '.' or '-', got {figure!r}")
    return FigureOutput(Path(out), figure, static)


def ensure_plotly_js(root: Path) -> Path:
    """One shared copy of plotly.js per report, so every HTML works offline."""
    path = root / PLOTLY_JS
    if not path.exists():
        from plotly.offline import get_plotlyjs

        atomic_write(path, lambda f: f.write(get_plotlyjs().encode()))
    return path
