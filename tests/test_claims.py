"""The claims' verdicts on made-up figure JSON: for every claim, evidence that puts its interval
wholly on the claim's side (holds), across its threshold (not separable), wholly on the other
side (does not hold), and with one replicate (not judged); the pre-registered rules' hash, the
plane-slice reading, and the rendered table and index section."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lmc_toolkit.landscape.curve import Curve
from lmc_toolkit.study.figures.reports import FigureStatus, write_index
from lmc_toolkit.study.verdicts import claims as C
from lmc_toolkit.study.verdicts import rules as R
from lmc_toolkit.study.verdicts.evidence import load_evidence, slice_barrier
from lmc_toolkit.study.verdicts.table import markdown, write_claims

SPARSITIES = (0.59, 0.87)
N = 1000
ALPHAS = np.linspace(0, 1, 11)


def write(root: Path, name: str, payload) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


def pair_curve(barrier: float, end_error: float = 0.03, offset: int = 0) -> dict:
    """A curve on N images whose ends err on the same `end_error` of them and whose middle
    errs on `barrier` more (nested, so the barrier above the line is exactly `barrier`)."""
    right = np.ones((11, N), bool)
    wrong_ends = round(end_error * N)
    right[:, :wrong_ends] = False
    extra = round(barrier * N)
    bump = np.clip(1 - np.abs(ALPHAS - 0.5) / 0.25, 0, 1)
    for i, h in enumerate(bump):
        k = round(h * extra)
        start = wrong_ends + offset
        right[i, start : start + k] = False
    return Curve(ALPHAS, np.zeros(11), right.mean(1), correct=right).to_dict()


def evidence_rows(barriers: dict[tuple[str, float], list[float]]) -> dict:
    rows = []
    for (method, s), values in barriers.items():
        curves = [pair_curve(b, offset=7 * i) for i, b in enumerate(values)]
        rows.append({"method": method, "round": 0, "sparsity": s, "curves": curves})
    return {"rows": rows}


def barrier_report(tmp_path: Path, imp, synth, dense=(0.30, 0.32, 0.31)) -> Path:
    """F2 evidence: dense, IMP and distilled-dm pairs with the given barriers per pair."""
    barriers = {("dense", 0.0): list(dense)}
    for s in SPARSITIES:
        barriers[("imp", s)] = list(imp)
        barriers[("distilled-dm", s)] = list(synth)
    write(tmp_path, "F2/barrier_evidence.json", evidence_rows(barriers))
    return tmp_path


@pytest.mark.parametrize(
    ("imp", "synth", "dense", "verdict"),
    [
        ((0.10, 0.12, 0.11), (0.002, 0.004, 0.003), (0.30, 0.32, 0.31), C.HOLDS),
        # IMP as stable as the synthetic tickets: no contrast
        ((0.002, 0.004, 0.003), (0.002, 0.004, 0.003), (0.30, 0.32, 0.31), C.FAILS),
        # the synthetic tickets are unstable
        ((0.10, 0.12, 0.11), (0.08, 0.09, 0.10), (0.30, 0.32, 0.31), C.FAILS),
        # the dense network is stable
        ((0.10, 0.12, 0.11), (0.002, 0.004, 0.003), (0.002, 0.003, 0.004), C.FAILS),
        # the synthetic barrier straddles 2%
        ((0.10, 0.12, 0.11), (0.0, 0.02, 0.04), (0.30, 0.32, 0.31), C.UNSEPARABLE),
        # one pair: no SGD-noise estimate
        ((0.10,), (0.002,), (0.30,), C.UNJUDGED),
    ],
)
def test_stability_claim_verdicts(tmp_path, imp, synth, dense, verdict):
    v = C.claim_stable_at_init(barrier_report(tmp_path, imp, synth, dense))
    assert v.verdict == verdict, v.reason
    assert "dense" in v.values and "59%" in v.values and "mean-of-ends" in v.values
    assert v.would_change != "–"


def test_the_mean_of_ends_barrier_does_not_decide(tmp_path):
    """Copies 4 points apart in error with a straight path: 2% above the mean of the ends but
    nothing above the line, so the tickets are stable by the deciding (linear) barrier."""
    barrier_report(tmp_path, (0.10, 0.12, 0.11), (0.0, 0.0, 0.0))
    data = json.loads((tmp_path / "F2/barrier_evidence.json").read_text())
    for row in data["rows"]:
        if row["method"] == "distilled-dm":
            for d in row["curves"]:
                c = Curve.from_dict(d)
                right = c.correct.copy()
                for i, a in enumerate(ALPHAS):  # the far end errs on 40 more images
                    right[i, 500 : 500 + round(a * 40)] = False
                d.update(Curve(ALPHAS, c.loss, right.mean(1), correct=right).to_dict())
    (tmp_path / "F2/barrier_evidence.json").write_text(json.dumps(data))
    curve = load_evidence(tmp_path).curves("distilled-dm", 0.59)[0]
    assert curve.barrier("error", "mean").value == pytest.approx(0.02)
    assert curve.barrier("error", "linear").value == pytest.approx(0.0, abs=1e-3)
    assert C.claim_stable_at_init(tmp_path).verdict == C.HOLDS


def test_untested_without_the_figures(tmp_path):
    verdicts = C.judge(tmp_path)
    assert [v.claim for v in verdicts] == ["C1", "C2", "C3", "C4", "C5", "C6"]
    assert all(v.verdict == C.UNTESTED for v in verdicts)


def accuracy_report(tmp_path: Path, imp, synth, imp_points=4000, synth_points=100) -> Path:
    entries = [{"method": "dense", "sparsity": 0.0, "accuracy": a} for a in (0.97, 0.972, 0.968)]
    for s in SPARSITIES:
        for m, accs in (("imp", imp), ("distilled-dm", synth), ("distilled-random", (0.5,) * 3)):
            entries += [{"method": m, "sparsity": s, "accuracy": a} for a in accs]
    write(tmp_path, "F1/accuracy_vs_sparsity.json", {"table": {"entries": entries}})
    cost = [
        {"method": "imp", "round": 4, "samples": 64_000, "sparsity": 0.59, "seconds": 300.0,
         "prune_images": imp_points},
        {"method": "distilled-dm", "round": 4, "samples": 40_000, "sparsity": 0.59,
         "seconds": 60.0, "prune_images": synth_points, "distill_images": 4000,
         "distill_samples": 64_000, "distill_seconds": 30.0},
    ]  # fmt: skip
    write(tmp_path, "F1/mask_cost.json", {"rows": cost})
    return tmp_path


@pytest.mark.parametrize(
    ("imp", "synth", "verdict"),
    [
        ((0.97, 0.971, 0.969), (0.966, 0.965, 0.967), C.HOLDS),  # 0.4 below, tight
        ((0.97, 0.971, 0.969), (0.93, 0.931, 0.929), C.FAILS),  # 4 points below, tight
        ((0.97, 0.971, 0.969), (0.93, 0.96, 0.99), C.UNSEPARABLE),  # the spread spans −1
        ((0.97,), (0.966,), C.UNJUDGED),  # one seed each
    ],
)
def test_masks_compete_verdicts(tmp_path, imp, synth, verdict):
    v = C.claim_masks_compete(accuracy_report(tmp_path, imp, synth))
    assert v.verdict == verdict, v.reason
    # the genuinely distilled method is judged, not the random-subset stand-in
    assert v.values.startswith("distilled-dm")
    assert "dataset points per round 40.0× (with distillation 1.0×)" in v.values
    assert "sample gradients 1.6× (with distillation 0.6×)" in v.values
    assert "wall seconds as recorded 5.0× (with distillation 3.3×)" in v.values


def test_masks_compete_reads_the_re_timed_seconds_where_f1_has_them(tmp_path):
    accuracy_report(tmp_path, (0.97, 0.971, 0.969), (0.966, 0.965, 0.967))
    rows = json.loads((tmp_path / "F1/mask_cost.json").read_text())["rows"]
    rows[0]["quiet_seconds"], rows[0]["quiet_distill_seconds"] = 80.0, 0.0
    rows[1]["quiet_seconds"], rows[1]["quiet_distill_seconds"] = 20.0, 20.0
    write(tmp_path, "F1/mask_cost.json", {"rows": rows})
    v = C.claim_masks_compete(tmp_path)
    assert (
        "wall seconds re-timed (medians of interleaved repeats) 4.0× (with distillation 2.0×)"
        in v.values
    )
    assert "as recorded" not in v.values


def test_masks_that_compete_but_touch_about_as_many_points_do_not_make_the_claim(tmp_path):
    accuracy_report(tmp_path, (0.97, 0.971, 0.969), (0.966, 0.965, 0.967), synth_points=1000)
    v = C.claim_masks_compete(tmp_path)
    assert v.verdict == C.FAILS and "only 4.0× fewer dataset points" in v.reason


def diagonal_report(tmp_path: Path, imp, synth) -> Path:
    rows = [
        {"method": m, "round": 4, "sparsity": s, "means": list(x), "seeds": list(range(len(x)))}
        for s in SPARSITIES
        for m, x in (("imp", imp), ("distilled-dm", synth))
    ]
    write(tmp_path, "F5/diagonal_replicates.json", {"rows": rows})
    return tmp_path


@pytest.mark.parametrize(
    ("imp", "synth", "verdict"),
    [
        ((2.0e-3, 2.1e-3, 1.9e-3), (1.0e-3, 1.1e-3, 0.9e-3), C.HOLDS),
        ((1.0e-3, 1.1e-3, 0.9e-3), (2.0e-3, 2.1e-3, 1.9e-3), C.FAILS),
        ((1.0e-3, 2.0e-3, 0.5e-3), (0.9e-3, 1.5e-3, 0.4e-3), C.UNSEPARABLE),
        ((2.0e-3,), (1.0e-3,), C.UNJUDGED),
    ],
)
def test_flatter_diagonal_verdicts(tmp_path, imp, synth, verdict):
    assert C.claim_flatter_diagonal(diagonal_report(tmp_path, imp, synth)).verdict == verdict


def plane(ridges: tuple[float, float]) -> dict:
    """A 5×5 accuracy grid with θ0 at (1, 1), θ1 at (−1, 1), θ2 at (1, −1), θ3 at (−1, −1): a
    ridge of `ridges[0]` error at x = 0 between θ0 and θ1 and of `ridges[1]` between θ2 and
    θ3."""
    xs = [-2.0, -1.0, 0.0, 1.0, 2.0]
    ridge = {1.0: ridges[0], -1.0: ridges[1]}
    acc = [[0.95 - (ridge.get(y, 0.0) if x == 0.0 else 0.0) for x in xs] for y in xs]
    markers = [
        {"label": "θ0", "x": 1.0, "y": 1.0},
        {"label": "θ1", "x": -1.0, "y": 1.0},
        {"label": "θ2", "x": 1.0, "y": -1.0},
        {"label": "θ3", "x": -1.0, "y": -1.0},
    ]
    return {"x": xs, "y": xs, "accuracy": acc, "markers": markers, "meta": {"n": 500}}


def test_slice_barrier_reads_the_ridge_between_the_copies():
    p = plane((0.30, 0.10))
    assert slice_barrier(p) == pytest.approx(0.30)
    assert slice_barrier(p, "θ2", "θ3") == pytest.approx(0.10)
    assert slice_barrier(plane((0.0, 0.0))) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    ("dense", "imp", "synth", "verdict"),
    [
        ((0.3, 0.31), (0.2, 0.21), (0.0, 0.001), C.HOLDS),
        ((0.3, 0.31), (0.0, 0.001), (0.0, 0.001), C.FAILS),  # IMP in one basin
        ((0.3, 0.31), (0.2, 0.21), (0.0, 0.2), C.UNSEPARABLE),  # the segments disagree
    ],
)
def test_basin_verdicts(tmp_path, dense, imp, synth, verdict):
    for name, ridges in (("dense", dense), ("imp", imp), ("distilled-dm", synth)):
        write(tmp_path, f"F4/paper_plane_{name}.json", plane(ridges))
    v = C.claim_basins(tmp_path)
    assert v.verdict == verdict, v.reason
    assert "one image = 0.20%" in v.values and "2 segments" in v.values


@pytest.mark.parametrize(
    ("imp", "synth", "acc_synth", "verdict"),
    [
        ((0.10, 0.12, 0.11), (0.002, 0.004, 0.003), (0.97, 0.971, 0.969), C.HOLDS),
        # stable, but 7 points of performance ratio lost
        ((0.10, 0.12, 0.11), (0.002, 0.004, 0.003), (0.90, 0.901, 0.899), C.FAILS),
        # the synthetic barrier is the higher one
        ((0.002, 0.004, 0.003), (0.10, 0.12, 0.11), (0.97, 0.971, 0.969), C.FAILS),
        # the ratio gap straddles −0.01 (the review's case: "not separable", not "fails")
        ((0.10, 0.12, 0.11), (0.002, 0.004, 0.003), (0.94, 0.96, 0.98), C.UNSEPARABLE),
    ],
)
def test_tradeoff_verdicts(tmp_path, imp, synth, acc_synth, verdict):
    barrier_report(tmp_path, imp, synth)
    accuracy_report(tmp_path, (0.97, 0.971, 0.969), acc_synth)
    v = C.claim_tradeoff(tmp_path)
    assert v.verdict == verdict, v.reason
    assert "ratio gap" in v.values


def test_harder_data_is_never_judged_inside_one_preset(tmp_path):
    v = C.claim_harder_data(barrier_report(tmp_path, (0.1, 0.1), (0.0, 0.0)))
    assert v.verdict == C.UNTESTED


def test_the_rules_hash_changes_with_a_threshold():
    assert R.rules_hash() == R.rules_hash(R.Thresholds())
    assert R.rules_hash(replace(R.THRESHOLDS, stable_barrier=0.03)) != R.rules_hash()


def test_what_would_change_names_the_deciding_bound():
    from lmc_toolkit.connectivity.intervals import interval

    iv = interval(0.01, [[0.009, 0.01, 0.011]], None)
    assert R.read(iv, 0.02, "below") == R.HOLDS
    assert "upper bound crossed 2.00" in R.what_would_change(iv, 0.02, "below")
    assert R.read(iv, 0.0, "below") == R.FAILS
    assert "lower bound crossed 0.00" in R.what_would_change(iv, 0.0, "below")
    assert R.read(iv, 0.01, "below") == R.UNSEPARABLE
    assert R.combine([R.HOLDS, R.UNJUDGED]) == R.UNJUDGED
    assert R.combine([R.UNJUDGED, R.FAILS]) == R.FAILS


def test_claims_file_and_index_section(tmp_path):
    barrier_report(tmp_path, (0.10, 0.12, 0.11), (0.002, 0.004, 0.003))
    path, verdicts = write_claims(tmp_path)
    text = path.read_text()
    assert path.name == "claims.md" and text == markdown(verdicts)
    assert "| **C2**" in text and "**holds**" in text and R.rules_hash() in text
    assert "what would change it" in text and "Rules:" in text
    index = write_index(tmp_path, [FigureStatus("F2", "barriers", None, 1.0)], "made-up")
    page = index.read_text()
    assert "id='claims'" in page and "href='claims.md'" in page and "not tested" in page


def test_masks_compete_reads_the_spread_between_mask_finding_runs(tmp_path):
    """Tight data-seed spreads, but two mask-finding runs of each method 3 points apart: the
    verdict reads the runs and cannot separate the gap from −1 point."""
    accuracy_report(tmp_path, (0.97, 0.971, 0.969), (0.966, 0.965, 0.967))
    rows = [
        {"method": m, "sparsity": s, "mask_seed": k, "accuracy": a}
        for s in SPARSITIES
        for m, accs in (("imp", (0.97, 0.971)), ("distilled-dm", (0.95, 0.98)))
        for k, a in enumerate(accs)
    ]
    write(tmp_path, "F1/mask_replicates.json", {"rows": rows})
    v = C.claim_masks_compete(tmp_path)
    assert v.verdict == C.UNSEPARABLE, v.reason
    assert "2 mask-finding runs" in v.values and "data seeds only" not in v.reason
    (tmp_path / "F1/mask_replicates.json").unlink()
    v = C.claim_masks_compete(tmp_path)
    assert v.verdict == C.HOLDS and "data seeds only" in v.reason
