"""The study's six claims, judged on a report's figure JSON by pre-registered rules.

`judge(root)` reads `reports/<preset>/F*/…json` (the files the figure notebooks write) and returns
one `Verdict` per claim: the quantity that tests it, the measured values with their confidence
intervals, the threshold, the verdict, and what result would have changed it. The thresholds
and the decision rules live in `lmc_toolkit.study.verdicts.rules` (versioned, hashed into `claims.md`):
every verdict reads an interval against a threshold, "holds" when the interval lies wholly on
the claim's side, "does not hold" when wholly on the other, "not separable at this scale" when
it straddles, "not judged" when it has no SGD-noise part.

The intervals (`lmc_toolkit.connectivity.intervals`) combine the spread over disjoint
replicates (t quantile on their degrees of freedom) with the test set's part, from resampling
the test images of the per-image evidence every interpolation curve keeps (F2's
`barrier_evidence.json`). Barriers are read above the straight line between the ends
(`Thresholds.barrier_baseline`); the mean-of-ends barrier and the interior peaks are reported
beside it. The rendering is `lmc_toolkit.study.verdicts.table`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lmc_toolkit.connectivity.intervals import (
    Interval,
    accuracy_difference,
    barrier_difference,
    barrier_interval,
    interval,
)
from lmc_toolkit.study.verdicts.evidence import (
    Evidence,
    distilled_first,
    figure_json,
    load_evidence,
    number,
    percent,
    slice_barrier,
)
from lmc_toolkit.study.verdicts.masks import claim_masks_compete
from lmc_toolkit.study.verdicts.rules import (
    FAILS,
    HOLDS,
    THRESHOLDS,
    UNJUDGED,
    UNSEPARABLE,
    UNTESTED,
    Side,
    Thresholds,
    combine,
    read,
    what_would_change,
)
from lmc_toolkit.study.verdicts.verdict import Verdict, show, untested

#: the reason of a barrier verdict that one disjoint pair of copies cannot give
ONE_PAIR = (
    "the data seeds give one disjoint pair of copies, so the barriers have no SGD-noise "
    "estimate (the intervals shown are the test set's alone); "
)

__all__ = ["FAILS", "HOLDS", "UNJUDGED", "UNSEPARABLE", "UNTESTED", "Verdict", "judge"]


# ----- C2 -----
def claim_stable_at_init(root: Path, t: Thresholds = THRESHOLDS) -> Verdict:
    """C2: synthetic subnetworks are stable at initialization where dense and IMP are not."""
    statement = (
        "Synthetic subnetworks are stable to SGD noise at initialization (two copies with "
        "different data order are linearly connected) where dense and IMP networks are not."
    )
    quantity = (
        f"error barrier ({t.barrier_baseline} baseline) between copies trained from the same "
        "initialization (k = 0) with different data seeds, mean over disjoint pairs (interval: "
        "spread over the pairs ⊕ the test images resampled, argmax over α redone)"
    )
    threshold = (
        f"stable: interval ≤ {t.stable_barrier:.0%}; unstable: interval > {t.stable_barrier:.0%}"
    )
    ev = load_evidence(root)
    methods = distilled_first(sorted({m for m, _ in ev.barriers}))
    if not ev.curves("dense", 0.0) or not methods or not ev.sparsities("imp"):
        return untested(
            "C2", statement, quantity, threshold, "F2 lacks dense, IMP or synthetic evidence"
        )
    method = methods[0]
    dense = _barrier(ev, "dense", 0.0, t)
    rows = [
        (
            read(dense, t.stable_barrier, "above"),
            f"dense {show(dense, unit='%')}{ev.peaks('dense', 0.0)}",
            f"dense: {what_would_change(dense, t.stable_barrier, 'above')}",
        )
    ]
    rows += [_stable_row(ev, method, s, t) for s in ev.sparsities(method) if ev.curves("imp", s)]
    outcomes = [outcome for outcome, _, _ in rows]
    why = f"dense: {outcomes[0]}; {method} stable and IMP unstable per sparsity: " + ", ".join(
        outcomes[1:]
    )
    if not dense.judged:
        why = ONE_PAIR + why
    values, changes = "; ".join(r[1] for r in rows), "; ".join(r[2] for r in rows)
    return Verdict("C2", statement, quantity, values, threshold, combine(outcomes), why, changes)


def _barrier(ev: Evidence, method: str, sparsity: float, t: Thresholds) -> Interval:
    """The error barrier of `method`'s copies at `sparsity`, with its interval."""
    return barrier_interval(
        ev.curves(method, sparsity),
        baseline=t.barrier_baseline,
        level=t.level,
        resamples=t.resamples,
    )


def _stable_row(ev: Evidence, method: str, s: float, t: Thresholds) -> tuple[str, str, str]:
    """C2 at sparsity `s`: (the outcome: `method` stable and IMP unstable, the values shown,
    what would change the outcome)."""
    mine, imp = _barrier(ev, method, s, t), _barrier(ev, "imp", s, t)
    diff = barrier_difference(
        ev.curves("imp", s),
        ev.curves(method, s),
        baseline=t.barrier_baseline,
        level=t.level,
        resamples=t.resamples,
    )
    outcome = combine([read(mine, t.stable_barrier, "below"), read(imp, t.stable_barrier, "above")])
    value = (
        f"{s:.0%}: {method} {show(mine, unit='%')}{ev.peaks(method, s)}, IMP "
        f"{show(imp, unit='%')}{ev.peaks('imp', s)}, IMP − {method} {show(diff, unit='%')}"
    )
    change = (
        f"{s:.0%}: {method}: {what_would_change(mine, t.stable_barrier, 'below')}; "
        f"IMP: {what_would_change(imp, t.stable_barrier, 'above')}"
    )
    return outcome, value, change


# ----- C3 -----
def claim_flatter_diagonal(root: Path, t: Thresholds = THRESHOLDS) -> Verdict:
    """C3: distilled pruning keeps flatter weights: a smaller Hessian diagonal than IMP's."""
    statement = "Distilled data steers IMP away from sharp parameters: a flatter Hessian diagonal."
    quantity = (
        "mean Hessian diagonal per kept weight of the trained ticket, one estimator (the exact "
        "diagonal where fast) on networks trained with each data seed, each on its own batch; "
        "distilled − IMP at the same sparsity (interval: spread over the networks, Welch)"
    )
    threshold = "flatter: interval of the difference below 0; sharper: above 0"
    rows = (figure_json(root, "F5/diagonal_replicates.json") or {}).get("rows", [])
    methods = distilled_first(sorted({r["method"] for r in rows}))
    if not methods or not any(r["method"] == "imp" for r in rows):
        return untested(
            "C3",
            statement,
            quantity,
            threshold,
            "F5 lacks replicated diagonals of IMP or synthetic tickets",
        )
    method = methods[0]
    parts, outcomes, changes = [], [], []
    for r in (r for r in rows if r["method"] == method):
        imp = next(
            (
                x
                for x in rows
                if x["method"] == "imp" and abs(x["sparsity"] - r["sparsity"]) < 0.005
            ),
            None,
        )
        if imp is None:
            continue
        a, b = [number(v) for v in r["means"]], [number(v) for v in imp["means"]]
        iv = interval(sum(a) / len(a) - sum(b) / len(b), [a, b], None, t.level)
        outcomes.append(read(iv, 0.0, "below"))
        changes.append(f"{r['sparsity']:.0%}: {what_would_change(iv, 0.0, 'below', scale=1.0)}")
        parts.append(
            f"{r['sparsity']:.0%}: {method} − IMP {iv.format(1.0, '', digits=6, of='networks per method')}"
        )
    if not outcomes:
        return untested("C3", statement, quantity, threshold, "no shared sparsity in F5")
    why = f"{method} vs IMP at {len(outcomes)} sparsities: " + ", ".join(outcomes)
    return Verdict(
        "C3",
        statement,
        quantity,
        "; ".join(parts),
        threshold,
        combine(outcomes),
        why,
        "; ".join(changes),
    )


# ----- C4 -----
def claim_basins(root: Path, t: Thresholds = THRESHOLDS) -> Verdict:
    """C4: in the plane through four copies, dense and IMP sit in separate basins, synthetic
    in one."""
    statement = (
        "Landscape slices show dense and IMP solutions in separate basins, synthetic ones in one."
    )
    quantity = (
        "the error barrier read off F4's plane (test images) along both segments between its "
        "four copies, θ0–θ1 and θ2–θ3 (two disjoint pairs; bilinear interpolation of the grid). "
        "What it adds to C2: the pair θ2–θ3 and the plane's own grid; θ0–θ1 is C2's pair (0, 1). "
        "Interval: spread over the two segments (t on 1 degree of freedom); the plane keeps no "
        "per-image evidence, so the test set's part is not in it"
    )
    threshold = f"separate basins: interval > {t.stable_barrier:.0%}; one basin: interval ≤ {t.stable_barrier:.0%}"
    planes = {
        p.stem.removeprefix("paper_plane_"): figure_json(root / "F4", p.name)
        for p in sorted((root / "F4").glob("paper_plane_*.json"))
        if p.stem != "paper_plane_on_synthetic"
    }
    planes = {k: v for k, v in planes.items() if v and "accuracy" in v}
    synth = distilled_first(list(planes))
    if "dense" not in planes or not synth:
        return untested(
            "C4", statement, quantity, threshold, "F4 lacks the dense or a synthetic plane"
        )
    judged = [k for k in ("dense", "imp") if k in planes] + synth[:1]
    values, outcomes, changes = [], [], []
    for k in judged:
        labels = {m["label"] for m in planes[k].get("markers", [])}
        segments = [("θ0", "θ1")] + ([("θ2", "θ3")] if {"θ2", "θ3"} <= labels else [])
        b = [slice_barrier(planes[k], x, y) for x, y in segments]
        iv = interval(sum(b) / len(b), [b], None, t.level)
        side: Side = "below" if k in synth else "above"
        outcomes.append(read(iv, t.stable_barrier, side))
        values.append(f"{k} {iv.format(100, '%', of='segments')}")
        changes.append(f"{k}: {what_would_change(iv, t.stable_barrier, side)}")
    n = max(int(v.get("meta", {}).get("n") or 0) for v in planes.values())
    why = ", ".join(f"{k}: {o}" for k, o in zip(judged, outcomes, strict=True))
    text = "; ".join(values) + (f" (one image = {percent(1 / n)})" if n else "")
    return Verdict(
        "C4", statement, quantity, text, threshold, combine(outcomes), why, "; ".join(changes)
    )


# ----- C5 -----
def claim_harder_data(root: Path, t: Thresholds = THRESHOLDS) -> Verdict:
    """C5 needs several datasets; a preset runs one."""
    return Verdict(
        "C5",
        "The effect weakens on harder datasets.",
        "C2's contrast (IMP barrier − synthetic barrier) compared across datasets",
        "–",
        "–",
        UNTESTED,
        "a preset runs one dataset: compare C2 across reports (e.g. reports/cpu vs reports/fashion)",
    )


# ----- C6 -----
def claim_tradeoff(root: Path, t: Thresholds = THRESHOLDS) -> Verdict:
    """C6: at ~60% and ~87% sparsity, synthetic subnetworks trade accuracy for stability."""
    statement = (
        "Trade-off: at ~60% and ~87% sparsity synthetic subnetworks have a lower barrier than "
        "IMP's at a comparable performance ratio (accuracy / dense accuracy)."
    )
    quantity = (
        f"barrier difference ({t.barrier_baseline} baseline) synthetic − IMP, and the "
        "performance-ratio gap (accuracy gap / dense accuracy), at the IMP ticket nearest each "
        "target sparsity (intervals as C1 and C2)"
    )
    threshold = (
        f"holds: barrier difference wholly below 0 and ratio gap's lower bound ≥ −{t.ratio_gap:g}; "
        f"fails: barrier difference wholly above 0 or the ratio gap's upper bound < −{t.ratio_gap:g}"
    )
    ev = load_evidence(root)
    methods = distilled_first(sorted({m for m, _ in ev.barriers}))
    imp_at = ev.sparsities("imp")
    dense = ev.accuracy("dense", 0.0)
    if not methods or not imp_at or not dense:
        return untested(
            "C6", statement, quantity, threshold, "F1/F2 lack IMP, dense or synthetic evidence"
        )
    method = methods[0]
    dense_mean = sum(dense) / len(dense)
    parts, outcomes, changes = [], [], []
    for target in t.tradeoff_sparsities:
        s = min(imp_at, key=lambda x: abs(x - target))
        if abs(s - target) > 0.08:
            continue
        judged = _tradeoff_at(ev, method, s, dense_mean, t)
        if judged is not None:
            outcomes.append(judged[0])
            parts.append(judged[1])
            changes.append(judged[2])
    if not outcomes:
        return untested("C6", statement, quantity, threshold, "no ticket near 60% or 87% sparsity")
    why = f"{method} vs IMP at {len(outcomes)} target sparsities: " + ", ".join(outcomes)
    if UNJUDGED in outcomes:
        why = ONE_PAIR + why
    return Verdict(
        "C6",
        statement,
        quantity,
        "; ".join(parts),
        threshold,
        combine(outcomes),
        why,
        "; ".join(changes),
    )


def _tradeoff_at(
    ev: Evidence, method: str, s: float, dense_mean: float, t: Thresholds
) -> tuple[str, str, str] | None:
    """C6 at sparsity `s`: (outcome, the measured text, what would change it); None where the
    evidence lacks `method`'s curves or either method's accuracy."""
    acc, imp_acc = ev.accuracy(method, s), ev.accuracy("imp", s)
    if not ev.curves(method, s) or acc is None or imp_acc is None:
        return None
    bar = barrier_difference(
        ev.curves(method, s),
        ev.curves("imp", s),
        baseline=t.barrier_baseline,
        level=t.level,
        resamples=t.resamples,
    )
    gap = accuracy_difference(
        acc,
        imp_acc,
        ev.curves(method, s),
        ev.curves("imp", s),
        level=t.level,
        resamples=t.resamples,
    )
    ratio = gap.scaled(1 / dense_mean)
    outcome = combine([read(bar, 0.0, "below"), read(ratio, -t.ratio_gap, "above")])
    part = f"{s:.0%}: barrier {method} − IMP {show(bar, unit='%')}; ratio gap {ratio.format(1.0, '', digits=4, of='data seeds')}"
    change = (
        f"{s:.0%}: barrier: {what_would_change(bar, 0.0, 'below')}; ratio: "
        f"{what_would_change(ratio, -t.ratio_gap, 'above', scale=1.0)}"
    )
    return outcome, part, change


CLAIMS: tuple[Callable[[Path, Thresholds], Verdict], ...] = (
    claim_masks_compete,
    claim_stable_at_init,
    claim_flatter_diagonal,
    claim_basins,
    claim_harder_data,
    claim_tradeoff,
)


def judge(root: str | Path, thresholds: Thresholds = THRESHOLDS) -> list[Verdict]:
    """Every claim judged on the figures under `root` (a report folder)."""
    return [claim(Path(root), thresholds) for claim in CLAIMS]
