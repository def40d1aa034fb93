"""The report index: `write_index` gathers every figure folder of `reports/<preset>/` (written
by the notebooks through `lmc_toolkit.plots.export.FigureOutput`: PNG, offline HTML and JSON per
figure, headline tables in `headline.json`) into `reports/<preset>/index.html`, led by one merged
table (`lmc_toolkit.study.figures.headline`, also written as `headline.md`).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lmc_toolkit.plots.export import HEADLINE
from lmc_toolkit.store.files import atomic_write, read_json

#: Each figure folder's record of its last run (`FigureStatus`), so that a run of some figures
#: (`--only`) rewrites the index with the others' entries kept.
STATUS = "status.json"


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


def record_status(root: str | Path, status: FigureStatus) -> Path:
    """Keep `status` in its figure's folder, `root/<figure>/status.json`."""
    folder = Path(root) / status.figure
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(asdict(status), indent=1)
    return atomic_write(folder / STATUS, lambda f: f.write(text.encode()))


def recorded_statuses(root: str | Path, figures: Sequence[str]) -> dict[str, FigureStatus]:
    """The recorded status of each of `figures` that has one under `root` (a record that is not
    a status is skipped: it is rewritten by the figure's next run)."""
    found = {}
    for figure in figures:
        record = read_json(Path(root) / figure / STATUS, None)
        try:
            status = FigureStatus(**record)
        except TypeError:  # missing, or not a status record
            continue
        if status.figure == figure:
            found[figure] = status
    return found


def write_index(root: str | Path, statuses: Sequence[FigureStatus], preset: str) -> Path:
    """Write `root/index.html`: thumbnails linking each figure's HTML, JSON and notebook, the
    headline tables, the claims' verdicts (also written as `claims.md`), and the error of every
    figure that failed."""
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
    from lmc_toolkit.study.figures.headline import html_table, summary_rows, write_summary

    headline_parts = []
    summary = html_table(summary_rows(root))
    if summary:
        headline_parts.append(
            "<h3>accuracy, barrier and curvature per method and sparsity (F1, F2, F5)</h3>"
            + summary
        )
        write_summary(root)
    from lmc_toolkit.study.verdicts.table import html_table as claims_html
    from lmc_toolkit.study.verdicts.table import write_claims

    claims_md, verdicts = write_claims(root)
    headline_parts.append(
        f"<h3 id='claims'>The study's claims at this preset (<a href='{claims_md.name}'>"
        f"{claims_md.name}</a>)</h3>" + claims_html(verdicts)
    )
    for status in statuses:
        for title, rows in read_json(root / status.figure / HEADLINE, {}).items():
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
    text = "\n".join(parts)
    return atomic_write(root / "index.html", lambda f: f.write(text.encode()))


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
