"""Claim 1 judged: distilled pruning's masks against IMP's, in accuracy (non-inferiority over
replicated mask-finding runs) and in what finding them cost (three measures, with and without
the synthetic set's own cost)."""

from __future__ import annotations

import math
from pathlib import Path

from lmc_toolkit.connectivity.intervals import accuracy_difference
from lmc_toolkit.study.verdicts.evidence import distilled_first, figure_json, load_evidence, number
from lmc_toolkit.study.verdicts.rules import (
    FAILS,
    THRESHOLDS,
    UNTESTED,
    Thresholds,
    combine,
    read,
    what_would_change,
)
from lmc_toolkit.study.verdicts.verdict import Verdict, show, untested


def claim_masks_compete(root: Path, t: Thresholds = THRESHOLDS) -> Verdict:
    """C1: distilled pruning's masks compete with IMP's at a fraction of the training points."""
    statement = (
        "Distilled pruning finds masks that compete with IMP while touching far fewer "
        "training points per round."
    )
    quantity = (
        "accuracy gap = test accuracy(distilled ticket) − test accuracy(IMP ticket) at the same "
        "sparsity, mean over independent mask-finding runs (F1's mask_replicates; over data "
        "seeds where each method has one run) (interval: their spread ⊕ the test images "
        "resampled); cost of the mask three ways: distinct dataset points per pruning round (the "
        "study's count, decides), sample-gradient evaluations, wall seconds (F1's re-timing: one round of each method "
        "and the synthetic set made again, interleaved, medians); each with and without the "
        "synthetic set's own cost"
    )
    threshold = (
        f"competes: lower bound of the gap ≥ −{t.matching_gap:.0%} (non-inferiority); short: "
        f"upper bound < −{t.matching_gap:.0%}; far fewer points: IMP / distilled dataset points "
        f"per round ≥ {t.fewer_points:g}×"
    )
    ev = load_evidence(root)
    methods = distilled_first(sorted({m for m, _ in ev.accuracies}))
    imp = sorted(s for m, s in ev.accuracies if m == "imp")
    if not methods or not imp:
        return untested("C1", statement, quantity, threshold, "F1 has no distilled or IMP tickets")
    method = methods[0]
    runs = ev.mask_runs(method), ev.mask_runs("imp")
    replicated = min(len(runs[0]), len(runs[1])) >= 2
    parts, outcomes, changes = [], [], []
    for s in imp:
        mine, theirs = ev.accuracy(method, s), ev.accuracy("imp", s)
        if replicated:  # the spread between mask-finding runs
            mine, theirs = ev.replicate_accuracy(method, s), ev.replicate_accuracy("imp", s)
        if not mine or not theirs:
            continue
        iv = accuracy_difference(
            mine, theirs, ev.curves(method, s), ev.curves("imp", s),
            level=t.level, resamples=t.resamples,
        )  # fmt: skip
        outcomes.append(read(iv, -t.matching_gap, "above"))
        changes.append(f"{s:.0%}: {what_would_change(iv, -t.matching_gap, 'above')}")
        parts.append(f"{s:.0%}: {show(iv, of='mask-finding runs' if replicated else 'data seeds')}")
    if not outcomes:
        return untested("C1", statement, quantity, threshold, f"no sparsity shared with {method}")
    accuracy = combine(outcomes)
    cost, points = _mask_cost(root, method)
    verdict = accuracy
    why = f"accuracy at {len(outcomes)} sparsities: {', '.join(sorted(set(outcomes)))}"
    if not replicated:
        why += " (one mask-finding run per method: the spread is over data seeds only)"
    if points is None:
        verdict, why = UNTESTED, why + "; no mask cost recorded"
    elif points < t.fewer_points and accuracy != FAILS:
        verdict = FAILS
        why += f"; but only {points:.1f}× fewer dataset points per round (≥ {t.fewer_points:g}× needed)"
    else:
        why += f"; {points:.1f}× fewer dataset points per round"
    values = f"{method}: " + "; ".join(parts) + (f". Cost: {cost}" if cost else "")
    return Verdict("C1", statement, quantity, values, threshold, verdict, why, "; ".join(changes))


def _mask_cost(root: Path, method: str) -> tuple[str, float | None]:
    """The three cost ratios IMP / `method` at the last shared round, with and without the
    synthetic set's own cost, as text; and the deciding one (dataset points per round)."""
    rows = (figure_json(root, "F1/mask_cost.json") or {}).get("rows", [])
    mine = {r["round"]: r for r in rows if r["method"] == method}
    imp = {r["round"]: r for r in rows if r["method"] == "imp"}
    shared = sorted(set(mine) & set(imp))
    if not shared:
        return "", None
    a, b = imp[shared[-1]], mine[shared[-1]]

    def ratio(x: float, y: float) -> str:
        return f"{x / y:.1f}×" if y else "–"

    points = number(a.get("prune_images")) / number(b.get("prune_images"))
    d_img, d_smp = number(b.get("distill_images", 0)), number(b.get("distill_samples", 0))
    text = (
        f"at {number(a['sparsity']):.0%}, IMP / {method}: dataset points per round "
        f"{ratio(a['prune_images'], b['prune_images'])} (with distillation "
        f"{ratio(a['prune_images'], max(b['prune_images'], d_img))}), sample gradients "
        f"{ratio(a['samples'], b['samples'])} (with distillation "
        f"{ratio(a['samples'], b['samples'] + d_smp)}), {_seconds(a, b)}"
    )
    return text, points if math.isfinite(points) else None


def _seconds(imp: dict, mine: dict) -> str:
    """The wall-seconds ratio IMP / distilled, re-timed under control where F1 did so (medians
    of interleaved repeats), else as recorded when the rounds first trained."""
    timed = imp.get("quiet_seconds") is not None and mine.get("quiet_seconds") is not None
    how = "re-timed (medians of interleaved repeats)" if timed else "as recorded"
    key, distill = (
        ("quiet_seconds", "quiet_distill_seconds") if timed else ("seconds", "distill_seconds")
    )
    a, b, d = number(imp.get(key)), number(mine.get(key)), number(mine.get(distill) or 0)
    if not b or not math.isfinite(b):
        return f"wall seconds {how} –"
    return f"wall seconds {how} {a / b:.1f}× (with distillation {a / (b + d):.1f}×)"
