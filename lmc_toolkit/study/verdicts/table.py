"""The claims' verdicts as the report shows them: `claims.md` and a table in `index.html`."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from lmc_toolkit.store.files import atomic_write
from lmc_toolkit.study.verdicts.claims import Verdict, judge
from lmc_toolkit.study.verdicts.rules import RULES, RULES_VERSION, THRESHOLDS, rules_hash

CLAIMS_FILE = "claims.md"


def markdown(verdicts: Sequence[Verdict]) -> str:
    lines = [
        "# The study's claims at this preset",
        "",
        "Generated from the figures' JSON by `lmc_toolkit.study.verdicts.claims` under the "
        f"pre-registered rules of `lmc_toolkit.study.verdicts.rules`, version {RULES_VERSION}, hash "
        f"`{rules_hash()}` ({THRESHOLDS.level:.0%} intervals, barriers above the "
        f"{THRESHOLDS.barrier_baseline} baseline). Every verdict reads an interval: holds when it "
        "lies wholly on the claim's side of the threshold, does not hold when wholly on the "
        "other, not separable at this scale when it straddles, not judged when it has no "
        "SGD-noise part (one seed pair, one network per method); not tested at this preset "
        "when the figures are missing.",
        "",
        "| claim | verdict | measured (interval) | threshold | why | what would change it |",
        "|---|---|---|---|---|---|",
    ]
    for v in verdicts:
        cells = [
            f"**{v.claim}** {v.statement}",
            f"**{v.verdict}**",
            v.values,
            v.threshold,
            v.reason,
            v.would_change,
        ]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    lines += ["", "Quantities:", ""]
    lines += [f"- **{v.claim}**: {v.quantity}" for v in verdicts]
    lines += ["", "Rules:", ""]
    lines += [f"- **{k}**: {text}" for k, text in RULES.items()]
    return "\n".join(lines) + "\n"


def html_table(verdicts: Sequence[Verdict]) -> str:
    columns = (
        "claim",
        "verdict",
        "measured (interval)",
        "threshold",
        "why",
        "what would change it",
    )
    head = "".join(f"<th>{h}</th>" for h in columns)
    body = "".join(
        "<tr>"
        + f"<td style='text-align:left'><b>{v.claim}</b> {html.escape(v.statement)}"
        + f"<br><small>{html.escape(v.quantity)}</small></td>"
        + "".join(
            f"<td style='text-align:left'>{html.escape(x)}</td>"
            for x in (v.verdict, v.values, v.threshold, v.reason, v.would_change)
        )
        + "</tr>"
        for v in verdicts
    )
    rules = f"<p><small>rules version {RULES_VERSION}, hash <code>{rules_hash()}</code></small></p>"
    return f"{rules}<table class='claims'><tr>{head}</tr>{body}</table>"


def write_claims(root: str | Path) -> tuple[Path, list[Verdict]]:
    """Judge the figures under `root` and write `root/claims.md`; returns its path and the
    verdicts (for the index)."""
    verdicts = judge(root)
    text = markdown(verdicts)
    return atomic_write(Path(root) / CLAIMS_FILE, lambda f: f.write(text.encode())), verdicts
