"""Figure artifacts and the report index: what a figure notebook writes and how it is linked.

A figure notebook saves each plotly figure through `FigureOutput.save`, which writes, in the
figure's folder `reports/<preset>/<figure id>/`:
- `<name>.png`, a static image (kaleido with a Chromium; skipped with a recorded reason when no
  browser is installed),
- `<name>.html`, interactive and offline: it loads the one shared `../plotly.min.js`,
- `<name>.json`, the numbers behind the figure.
Headline numbers (accuracy and barrier per method and sparsity, top eigenvalue and trace per
method) go to `headline.json` through `FigureOutput.headline`; `write_index` gathers every
folder into `reports/<preset>/index.html`, led by one merged table (`lmc_toolkit.headline`, also
written as `headline.md`).
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmc_toolkit.store.files import atomic_json_save

PLOTLY_JS = "plotly.min.js"
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
        html_path = self.folder / f"{name}.html"
        fig.write_html(html_path, include_plotlyjs=f"../{PLOTLY_JS}", full_html=True)
        atomic_json_save(dict(data or {}), self.folder / f"{name}.json")
        png, error = None, None
        if self.static:
            try:
                fig.write_image(self.folder / f"{name}.png", width=900, height=560, scale=1)
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

    def headline(self, title: str, rows: Sequence[Mapping[str, Any]]) -> Path:
        """Record a table of headline numbers (one dict per row) for the report index."""
        path = self.folder / HEADLINE
        tables = _read_json(path, default={})
        tables[title] = [dict(r) for r in rows]
        return atomic_json_save(tables, path)


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

        root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(get_plotlyjs(), encoding="utf-8")
        os.replace(tmp, path)
    return path


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return default


@dataclass(frozen=True)
class FigureStatus:
    """How one figure notebook went: its id, title, notebook, time and error (None = ok)."""

    figure: str
    title: str
    notebook: str | None
    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def write_index(root: str | Path, statuses: Sequence[FigureStatus], preset: str) -> Path:
    """Write `root/index.html`: thumbnails linking each figure's HTML, JSON and notebook, the
    headline tables, and the error of every figure that failed."""
    root = Path(root)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>lmc_toolkit report: {html.escape(preset)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
        "figure{display:inline-block;margin:0 1em 1em 0;vertical-align:top;width:360px}"
        "img{width:360px;border:1px solid #ccc}table{border-collapse:collapse;margin:0 0 1em}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
        ".err{color:#b00;white-space:pre-wrap}</style></head><body>",
        f"<h1>lmc_toolkit report: preset <code>{html.escape(preset)}</code></h1>",
    ]
    from lmc_toolkit.study.headline import html_table, summary_rows, write_summary

    headline_parts = []
    summary = html_table(summary_rows(root))
    if summary:
        headline_parts.append(
            "<h3>accuracy, barrier and curvature per method and sparsity (F1, F2, F5)</h3>"
            + summary
        )
        write_summary(root)
    for status in statuses:
        for title, rows in _read_json(root / status.figure / HEADLINE, {}).items():
            headline_parts.append(_table(f"{status.figure}: {title}", rows))
    if headline_parts:
        parts += ["<h2>Headline numbers</h2>", *headline_parts]
    for status in statuses:
        parts.append(f"<h2 id='{status.figure}'>{status.figure}: {html.escape(status.title)}</h2>")
        links = [f"{status.seconds:.0f} s"]
        if status.notebook:
            links.append(f"<a href='{html.escape(status.notebook)}'>executed notebook</a>")
        parts.append(f"<p>{' · '.join(links)}</p>")
        if status.error:
            parts.append(f"<p class='err'>failed: {html.escape(status.error)}</p>")
        for name in _figure_names(root / status.figure):
            parts.append(_thumbnail(root, status.figure, name))
    parts.append("</body></html>")
    path = root / "index.html"
    root.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _figure_names(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.html"))


def _thumbnail(root: Path, figure: str, name: str) -> str:
    base = f"{figure}/{name}"
    image = (
        f"<img src='{base}.png' alt='{html.escape(name)}'>"
        if (root / f"{base}.png").exists()
        else f"<div>{html.escape(name)} (no static image)</div>"
    )
    return (
        f"<figure><a href='{base}.html'>{image}</a><figcaption>{html.escape(name)} · "
        f"<a href='{base}.html'>interactive</a> · <a href='{base}.json'>data</a>"
        "</figcaption></figure>"
    )


def _table(title: str, rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return ""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<h3>{html.escape(title)}</h3><table><tr>{head}</tr>{body}</table>"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape("" if value is None else str(value))
