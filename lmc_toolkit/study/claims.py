"""The study's six claims (PAPER.md, "Claims"), judged on a report's figure JSON.

`judge(root)` reads `reports/<preset>/F*/…json` (the files the figure notebooks write) and returns
one `Verdict` per claim: the quantity that tests it and its definition, the measured values with
their noise, the threshold, and a verdict computed from them:

- "holds" / "does not hold": the values decide it beyond their noise;
- "not separable at this scale": the difference the claim needs is inside the noise;
- "not tested at this preset": the figures it needs were not made here.

Every threshold lives in `THRESHOLDS`, with its reason. Noise is what the figures record: the
spread over data seeds (standard error, std/√n), the spread over seed pairs for barriers, and
the test set's resolution (binomial standard error of an error rate on n images) where no
spread exists (one pair of seeds). `lmc_toolkit.study.claims_table` renders the verdicts
(`claims.md` next to the report index, and a section of the index).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmc_toolkit.study.evidence import (
    barrier_noise,
    barrier_rows_with_sizes,
    distilled_first,
    figure_json,
    near,
    number,
    percent,
    slice_barrier,
)

HOLDS, FAILS, UNSEPARABLE, UNTESTED = (
    "holds",
    "does not hold",
    "not separable at this scale",
    "not tested at this preset",
)


@dataclass(frozen=True)
class Thresholds:
    """The numbers the verdicts use, and why."""

    #: Frankle et al. (2020) call a network stable to SGD noise when the error barrier between
    #: two copies is within 2% (their "matching"/"stable" convention).
    stable_barrier: float = 0.02
    #: "Competes with IMP": a test accuracy at most 1 point below IMP's at the same sparsity.
    matching_gap: float = 0.01
    #: "Far fewer training points": at least an order of magnitude fewer sample-gradient
    #: evaluations to find the mask (the study reports ~150×).
    fewer_samples: float = 10.0
    #: How many standard errors make a difference real (two-sided ~95%).
    z: float = 2.0
    #: The sparsities at which the study draws its trade-off (claim 6).
    tradeoff_sparsities: tuple[float, ...] = (0.60, 0.87)


THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Verdict:
    """One claim judged: what tests it, what was measured, against what, and the verdict."""

    claim: str
    statement: str
    quantity: str
    values: str
    threshold: str
    verdict: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return dict(vars(self))


def _untested(claim: str, statement: str, quantity: str, threshold: str, why: str) -> Verdict:
    return Verdict(claim, statement, quantity, "–", threshold, UNTESTED, why)


def _judged(
    claim: str,
    statement: str,
    quantity: str,
    parts: Sequence[str],
    threshold: str,
    outcomes: Sequence[str],
    why: str,
) -> Verdict:
    return Verdict(claim, statement, quantity, "; ".join(parts), threshold, _combine(outcomes), why)


# ----- the claims -----
def claim_masks_compete(root: Path, t: Thresholds = THRESHOLDS) -> Verdict:
    """C1: distilled pruning's masks compete with IMP's at a fraction of the training points."""
    statement = (
        "Distilled pruning finds masks that compete with IMP while touching far fewer "
        "training points per round."
    )
    quantity = (
        "accuracy gap = test accuracy(distilled ticket) − test accuracy(IMP ticket) at the same "
        "sparsity (mean over data seeds; noise: √(sd₁²/n₁ + sd₂²/n₂)), and the ratio of "
        "sample-gradient evaluations IMP / distilled spent finding the mask at that round"
    )
    threshold = (
        f"competes: gap ≥ −{t.matching_gap:.0%}; short beyond noise: gap + {t.matching_gap:.0%} "
        f"< −{t.z:g} SE; far fewer points: IMP / distilled ≥ {t.fewer_samples:g}×"
    )
    table = (figure_json(root, "F1/accuracy_vs_sparsity.json") or {}).get("table", {})
    summary = table.get("summary", [])
    methods = distilled_first(sorted({s["method"] for s in summary}))
    imp = [s for s in summary if s["method"] == "imp"]
    if not methods or not imp:
        return _untested("C1", statement, quantity, threshold, "F1 has no distilled or IMP tickets")
    method = methods[0]
    cost = {
        (r["method"], r["round"]): r["samples"]
        for r in (figure_json(root, "F1/mask_cost.json") or {}).get("rows", [])
    }
    parts, outcomes = [], []
    for s_imp in imp:
        mine = near(summary, method, number(s_imp["sparsity"]), 0.005)
        if mine is None:
            continue
        gap = number(mine["mean"]) - number(s_imp["mean"])
        se = math.sqrt(
            number(mine["std"]) ** 2 / max(mine["n"], 1)
            + number(s_imp["std"]) ** 2 / max(s_imp["n"], 1)
        )
        if gap >= -t.matching_gap:
            outcomes.append(HOLDS)
        elif gap + t.matching_gap < -t.z * se:
            outcomes.append(FAILS)
        else:
            outcomes.append(UNSEPARABLE)
        parts.append(f"{number(s_imp['sparsity']):.0%}: {100 * gap:+.2f} ± {100 * se:.2f} pts")
    if not outcomes:
        return _untested(
            "C1", statement, quantity, threshold, f"no sparsity shared by IMP and {method}"
        )
    ratios = [
        cost[("imp", r)] / cost[(method, r)]
        for (m, r) in cost
        if m == "imp" and (method, r) in cost and cost[(method, r)]
    ]
    fewer = (
        f"; IMP / distilled samples per mask: {min(ratios):.1f}–{max(ratios):.1f}×"
        if ratios
        else ""
    )
    verdict = _combine(outcomes)
    if verdict == HOLDS and ratios and min(ratios) < t.fewer_samples:
        verdict = FAILS
        why = (
            f"{method} competes on accuracy at every sparsity, but its masks cost only "
            f"{min(ratios):.1f}× fewer samples (the claim's 'far fewer': ≥ {t.fewer_samples:g}×)"
        )
    else:
        why = f"{method} vs IMP at {len(outcomes)} sparsities: " + ", ".join(sorted(set(outcomes)))
    return Verdict(
        "C1", statement, quantity, f"{method}: " + "; ".join(parts) + fewer, threshold, verdict, why
    )


def claim_stable_at_init(root: Path, t: Thresholds = THRESHOLDS) -> Verdict:
    """C2: synthetic subnetworks are stable at initialization where dense and IMP are not."""
    statement = (
        "Synthetic subnetworks are stable to SGD noise at initialization (two copies with "
        "different data order are linearly connected) where dense and IMP networks are not."
    )
    quantity = (
        "error barrier between copies trained from the same initialization (k = 0) with different "
        "data seeds: max over α of the error on the segment minus the mean of the endpoints' errors"
    )
    threshold = f"stable: barrier ≤ {t.stable_barrier:.0%}; IMP vs synthetic separated when the difference > {t.z:g} SE"
    rows = barrier_rows_with_sizes(root)
    dense = next((r for r in rows if r.get("method") == "dense"), None)
    methods = distilled_first(sorted({r["method"] for r in rows}))
    if dense is None or not methods or not any(r["method"] == "imp" for r in rows):
        return _untested(
            "C2", statement, quantity, threshold, "F2 lacks dense, IMP or synthetic rows"
        )
    method = methods[0]
    values = [f"dense {percent(number(dense['error_barrier']))}"]
    contrast, synth_unstable, unseparable, seen = 0, 0, 0, 0
    for r in sorted((r for r in rows if r["method"] == method), key=lambda r: r["sparsity"]):
        imp = near(rows, "imp", number(r["sparsity"]), 0.005)
        if imp is None:
            continue
        seen += 1
        b_s, b_i = number(r["error_barrier"]), number(imp["error_barrier"])
        se = math.hypot(barrier_noise(r)[0], barrier_noise(imp)[0])
        rnd = near(rows, "random", number(r["sparsity"]), 0.005)
        values.append(
            f"{number(r['sparsity']):.0%}: {method} {percent(b_s)}, IMP {percent(b_i)}"
            + (f", random {percent(number(rnd['error_barrier']))}" if rnd else "")
            + f" (SE of the difference {percent(se)}, {barrier_noise(r)[1]})"
        )
        if b_s > t.stable_barrier:
            synth_unstable += 1
        elif b_i > t.stable_barrier and b_i - b_s > t.z * se:
            contrast += 1
        elif b_i > t.stable_barrier:
            unseparable += 1  # IMP unstable, but not beyond the noise (or the noise unknown)
    dense_unstable = number(dense["error_barrier"]) > t.stable_barrier
    if not seen:
        verdict, why = UNTESTED, "no sparsity shared by IMP and the synthetic tickets"
    elif not dense_unstable:
        verdict, why = FAILS, "the dense network is itself stable here"
    elif synth_unstable:
        verdict, why = FAILS, f"{method} is unstable at {synth_unstable} of {seen} sparsities"
    elif contrast:
        verdict, why = (
            HOLDS,
            f"dense unstable; {method} stable everywhere; IMP unstable beyond noise at {contrast} of {seen}",
        )
    elif unseparable:
        verdict, why = (
            UNSEPARABLE,
            f"dense unstable and {method} stable; IMP's barrier exceeds it at {unseparable} of "
            f"{seen} sparsities only within the noise",
        )
    else:
        verdict, why = (
            FAILS,
            f"dense unstable and {method} stable, but IMP is as stable at every sparsity (no contrast)",
        )
    return Verdict("C2", statement, quantity, "; ".join(values), threshold, verdict, why)


def claim_flatter_diagonal(root: Path, t: Thresholds = THRESHOLDS) -> Verdict:
    """C3: distilled pruning keeps flatter weights: a smaller Hessian diagonal than IMP's."""
    statement = "Distilled data steers IMP away from sharp parameters: a flatter Hessian diagonal."
    quantity = (
        "mean Hessian diagonal over the kept weights (= trace per weight) of the trained ticket, "
        "distilled vs IMP at the same sparsity; noise: the stochastic trace's standard error per "
        "weight (one network per method: the spread over seeds is not measured)"
    )
    threshold = f"flatter when the distilled mean is lower by more than {t.z:g} SE"
    summaries = (figure_json(root, "F5/sharpness_vs_sparsity.json") or {}).get("summaries", [])
    methods = distilled_first(sorted({s["method"] for s in summaries}))
    if not methods or not any(s["method"] == "imp" for s in summaries):
        return _untested("C3", statement, quantity, threshold, "F5 lacks IMP or synthetic tickets")
    method = methods[0]
    parts, outcomes = [], []
    for s in (s for s in summaries if s["method"] == method):
        imp = near(summaries, "imp", number(s["sparsity"]), 0.005)
        if imp is None:
            continue

        def per_weight(x: Mapping[str, Any]) -> tuple[float, float]:
            count = max(int(x["diagonal"]["count"]), 1)
            return number(x["diagonal"]["mean"]), number(x.get("trace_stderr")) / count

        (m_s, e_s), (m_i, e_i) = per_weight(s), per_weight(imp)
        se = math.hypot(e_s, e_i) if math.isfinite(e_s) and math.isfinite(e_i) else 0.0
        diff = m_s - m_i
        outcomes.append(HOLDS if diff < -t.z * se else FAILS if diff > t.z * se else UNSEPARABLE)
        parts.append(
            f"{number(s['sparsity']):.0%}: {method} {m_s:.3g}, IMP {m_i:.3g} (SE {se:.2g})"
        )
    if not outcomes:
        return _untested("C3", statement, quantity, threshold, "no shared sparsity in F5")
    return _judged(
        "C3",
        statement,
        quantity,
        parts,
        threshold,
        outcomes,
        f"{method} vs IMP at {len(outcomes)} sparsities",
    )


def claim_basins(root: Path, t: Thresholds = THRESHOLDS) -> Verdict:
    """C4: in the plane through the copies, dense and IMP sit in separate basins, synthetic in one."""
    statement = (
        "Landscape slices show dense and IMP solutions in separate basins, synthetic ones in one."
    )
    quantity = (
        "the error barrier read off F4's plane (on real test data) along the segment between the "
        "two SGD-noise copies θ0 and θ1 (bilinear interpolation of the grid); noise: one image of "
        "the plane's test images"
    )
    threshold = f"separate basins: slice barrier > {t.stable_barrier:.0%}; one basin: ≤ {t.stable_barrier:.0%}"
    planes = {
        p.stem.removeprefix("paper_plane_"): figure_json(root / "F4", p.name)
        for p in sorted((root / "F4").glob("paper_plane_*.json"))
        if p.stem != "paper_plane_on_synthetic"
    }
    planes = {k: v for k, v in planes.items() if v and "accuracy" in v}
    synth = distilled_first(list(planes))
    if "dense" not in planes or not synth:
        return _untested(
            "C4", statement, quantity, threshold, "F4 lacks the dense or a synthetic plane"
        )
    barriers = {k: slice_barrier(v) for k, v in planes.items()}
    n = max(int(v.get("meta", {}).get("n") or 0) for v in planes.values())
    sep = {k: b > t.stable_barrier for k, b in barriers.items()}
    values = "; ".join(f"{k} {percent(b)}" for k, b in barriers.items()) + (
        f" (one image = {percent(1 / n)})" if n else ""
    )
    apart = [k for k in ("dense", "imp") if k in sep]
    if all(sep[k] for k in apart) and not sep[synth[0]]:
        verdict, why = HOLDS, f"{', '.join(apart)} in separate basins; {synth[0]} in one"
    else:
        why = ", ".join(f"{k}: {'separate' if sep[k] else 'one basin'}" for k in sep)
        verdict = FAILS
    return Verdict("C4", statement, quantity, values, threshold, verdict, why)


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


def claim_tradeoff(root: Path, t: Thresholds = THRESHOLDS) -> Verdict:
    """C6: at ~60% and ~87% sparsity, synthetic subnetworks trade accuracy for stability."""
    statement = (
        "Trade-off: at ~60% and ~87% sparsity synthetic subnetworks have a lower barrier than "
        "IMP's at a comparable performance ratio (accuracy / dense accuracy)."
    )
    quantity = "(performance ratio, error barrier) of IMP and the synthetic ticket nearest each target sparsity"
    threshold = (
        f"lower barrier beyond {t.z:g} SE; performance ratio within {t.matching_gap:.0%} of IMP's "
        f"(or not separable from it)"
    )
    rows = barrier_rows_with_sizes(root)
    methods = distilled_first(sorted({r["method"] for r in rows}))
    imp_rows = [r for r in rows if r["method"] == "imp"]
    if not methods or not imp_rows:
        return _untested("C6", statement, quantity, threshold, "F2/F6 lack IMP or synthetic rows")
    method = methods[0]
    parts, outcomes = [], []
    for target in t.tradeoff_sparsities:
        imp = min(imp_rows, key=lambda r: abs(r["sparsity"] - target))
        mine = near(rows, method, imp["sparsity"], 0.005)
        if mine is None or abs(imp["sparsity"] - target) > 0.08:
            continue
        se = math.hypot(barrier_noise(mine)[0], barrier_noise(imp)[0])
        lower = imp["error_barrier"] - mine["error_barrier"] > t.z * se
        higher = mine["error_barrier"] - imp["error_barrier"] > t.z * se
        close = mine["performance_ratio"] >= imp["performance_ratio"] - t.matching_gap
        outcomes.append(HOLDS if lower and close else FAILS if higher or not close else UNSEPARABLE)
        parts.append(
            f"{imp['sparsity']:.0%}: IMP ({imp['performance_ratio']:.3f}, {percent(imp['error_barrier'])}), "
            f"{method} ({mine['performance_ratio']:.3f}, {percent(mine['error_barrier'])}), SE {percent(se)}"
        )
    if not outcomes:
        return _untested("C6", statement, quantity, threshold, "no ticket near 60% or 87% sparsity")
    return _judged(
        "C6",
        statement,
        quantity,
        parts,
        threshold,
        outcomes,
        f"{method} vs IMP at {len(outcomes)} target sparsities",
    )


def _combine(outcomes: Sequence[str]) -> str:
    """One verdict from several comparisons: any failure fails; all holding holds; else the
    difference is inside the noise somewhere."""
    if FAILS in outcomes:
        return FAILS
    return HOLDS if all(o == HOLDS for o in outcomes) else UNSEPARABLE


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
