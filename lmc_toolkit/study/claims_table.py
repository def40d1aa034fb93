"""The claims' verdicts as the report shows them: `claims.md` and a table in `index.html`."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from lmc_toolkit.store.files import atomic_write
from lmc_toolkit.study.claims import Verdict, judge

CLAIMS_FILE = "claims.md"


def markdown(verdicts: Sequence[Verdict]) -> str:
    lines = [
        "# The study's claims at this preset",
        "",
        "Generated from the figures' JSON by `lmc_toolkit.study.claims` (thresholds and their "
        "reasons: `Thresholds` there). Verdicts: holds / does not hold / not separable at this "
        "scale / not tested at this preset.",
        "",
        "| claim | verdict | measured | threshold | why |",
        "|---|---|---|---|---|",
    ]
    for v in verdicts:
        cells = [
            f"**{v.claim}** {v.statement}",
            f"**{v.verdict}**",
            v.values,
            v.threshold,
            v.reason,
        ]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    lines += ["", "Quantities:", ""]
    lines += [f"- **{v.claim}**: {v.quantity}" for v in verdicts]
    return "\n".join(lines) + "\n"


def html_table(verdicts: Sequence[Verdict]) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("claim", "verdict", "measured", "threshold", "why"))
    body = "".join(
        "<tr>"
        + f"<td style='text-align:left'><b>{v.claim}</b> {html.escape(v.statement)}"
        + f"<br><small>{html.escape(v.quantity)}</small></td>"
        + "".join(
            f"<td style='text-align:left'>{html.escape(x)}</td>"
            for x in (v.verdict, v.values, v.threshold, v.reason)
        )
        + "</tr>"
        for v in verdicts
    )
    return f"<table class='claims'><tr>{head}</tr>{body}</table>"


def write_claims(root: str | Path) -> tuple[Path, list[Verdict]]:
    """Judge the figures under `root` and write `root/claims.md`; returns its path and the
    verdicts (for the index)."""
    verdicts = judge(root)
    text = markdown(verdicts)
    return atomic_write(Path(root) / CLAIMS_FILE, lambda f: f.write(text.encode())), verdicts
