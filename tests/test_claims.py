"""The claims' verdicts on made-up figure JSON: one report per verdict of each judged claim, the
noise rules, the plane-slice reading, and the rendered table and index section."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from lmc_toolkit.study import claims as C
from lmc_toolkit.study.claims_table import markdown, write_claims
from lmc_toolkit.study.evidence import barrier_noise, slice_barrier
from lmc_toolkit.study.reports import FigureStatus, write_index

SPARSITIES = (0.59, 0.87)


def write(root: Path, name: str, payload) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


def barrier_row(method, sparsity, barrier, acc=0.97, std=0.002, pairs=3, images=1000):
    return {
        "method": method,
        "round": 0 if method == "dense" else 4,
        "sparsity": sparsity,
        "error_barrier": barrier,
        "loss_barrier": barrier * 3,
        "accuracy": acc,
        "accuracy_std": 0.002,
        "performance_ratio": acc / 0.97,
        "error_barrier_std": std,
        "pairs": pairs,
        "test_images": images,
    }


def report(tmp_path: Path, imp: float, synth: float, dense: float = 0.30, **kw) -> Path:
    """F2 rows: dense at `dense`, IMP and distilled-dm at `imp` / `synth` at every sparsity."""
    rows = [barrier_row("dense", 0.0, dense, **kw)]
    for s in SPARSITIES:
        rows += [barrier_row("imp", s, imp, **kw), barrier_row("distilled-dm", s, synth, **kw)]
    write(tmp_path, "F2/barrier_vs_sparsity.json", {"rows": rows})
    return tmp_path


@pytest.mark.parametrize(
    ("imp", "synth", "dense", "std", "verdict"),
    [
        (0.10, 0.005, 0.30, 0.004, C.HOLDS),  # IMP unstable beyond noise, synthetic stable
        (0.005, 0.005, 0.30, 0.004, C.FAILS),  # IMP as stable: no contrast
        (0.10, 0.05, 0.30, 0.004, C.FAILS),  # the synthetic ticket is unstable
        (0.05, 0.005, 0.01, 0.004, C.FAILS),  # the dense network is stable
        (0.03, 0.015, 0.30, 0.03, C.UNSEPARABLE),  # IMP above 2%, but within 2 SE of synthetic
    ],
)
def test_stability_claim_verdicts(tmp_path, imp, synth, dense, std, verdict):
    v = C.claim_stable_at_init(report(tmp_path, imp, synth, dense, std=std))
    assert v.verdict == verdict, v.reason
    assert "dense" in v.values and "59%" in v.values


def test_untested_without_the_figures(tmp_path):
    verdicts = C.judge(tmp_path)
    assert [v.claim for v in verdicts] == ["C1", "C2", "C3", "C4", "C5", "C6"]
    assert all(v.verdict == C.UNTESTED for v in verdicts)


def test_noise_of_a_barrier_from_pairs_and_the_test_set():
    """Spread over pairs ⊕ the paired test-set error √(d/n), d ≥ the barrier (one image)."""
    se, how = barrier_noise(barrier_row("imp", 0.5, 0.04, std=0.01, pairs=4, images=10_000))
    assert se == pytest.approx(math.hypot(0.01 / 2, math.sqrt(0.04 / 10_000)))
    assert "4 pairs" in how and "10000 images" in how
    se, how = barrier_noise(barrier_row("imp", 0.5, 0.03, acc=0.97, pairs=1, images=1000))
    assert se == pytest.approx(math.sqrt(0.03 / 1000)) and "one pair" in how
    # a barrier of zero still has one image's worth of test-set noise
    se, _ = barrier_noise(barrier_row("imp", 0.5, 0.0, pairs=1, images=1000))
    assert se == pytest.approx(1 / 1000)
    se, how = barrier_noise(barrier_row("imp", 0.5, 0.04, std=0.01, pairs=4, images=0))
    assert se == pytest.approx(0.005) and "not recorded" in how
    se, how = barrier_noise(barrier_row("imp", 0.5, 0.03, pairs=1, images=0))
    assert math.isnan(se) and "not recorded" in how


def test_noise_of_a_barrier_agrees_with_the_connectivity_estimate():
    """The claims and `connectivity.estimate` give one barrier the same standard error."""
    from lmc_toolkit.connectivity import estimate, paired_stderr

    barriers = [0.031, 0.045, 0.022]
    n = 2000
    mean = sum(barriers) / 3
    std = math.sqrt(sum((b - mean) ** 2 for b in barriers) / 2)
    row = barrier_row("imp", 0.5, mean, std=std, pairs=3, images=n)
    expected = estimate(barriers, paired_stderr(mean, n), n).stderr
    assert barrier_noise(row)[0] == pytest.approx(expected)


def accuracy_report(tmp_path: Path, imp: float, synth: float, std: float) -> Path:
    summary = [{"method": "dense", "sparsity": 0.0, "mean": 0.97, "std": std, "n": 3}]
    for s in SPARSITIES:
        summary += [
            {"method": "imp", "sparsity": s, "mean": imp, "std": std, "n": 3},
            {"method": "distilled-dm", "sparsity": s, "mean": synth, "std": std, "n": 3},
            {"method": "distilled-random", "sparsity": s, "mean": 0.5, "std": std, "n": 3},
        ]
    write(tmp_path, "F1/accuracy_vs_sparsity.json", {"table": {"summary": summary}})
    cost = [{"method": "imp", "round": 4, "samples": 150_000, "sparsity": 0.59}]
    cost += [{"method": "distilled-dm", "round": 4, "samples": 1000, "sparsity": 0.59}]
    write(tmp_path, "F1/mask_cost.json", {"rows": cost})
    return tmp_path


@pytest.mark.parametrize(
    ("imp", "synth", "std", "verdict"),
    [
        (0.97, 0.965, 0.002, C.HOLDS),  # half a point below IMP
        (0.97, 0.93, 0.002, C.FAILS),  # 4 points below, well beyond the noise
        (0.97, 0.95, 0.03, C.UNSEPARABLE),  # 2 points below, inside the spread
    ],
)
def test_masks_compete_verdicts(tmp_path, imp, synth, std, verdict):
    v = C.claim_masks_compete(accuracy_report(tmp_path, imp, synth, std))
    assert v.verdict == verdict, v.reason
    # the genuinely distilled method is judged, not the random-subset stand-in
    assert v.values.startswith("distilled-dm") and "150.0–150.0×" in v.values


def test_masks_that_compete_but_cost_about_as_much_do_not_make_the_claim(tmp_path):
    accuracy_report(tmp_path, 0.97, 0.968, 0.002)
    cost = [
        {"method": "imp", "round": 4, "samples": 8000, "sparsity": 0.59},
        {"method": "distilled-dm", "round": 4, "samples": 5000, "sparsity": 0.59},
    ]
    write(tmp_path, "F1/mask_cost.json", {"rows": cost})
    v = C.claim_masks_compete(tmp_path)
    assert v.verdict == C.FAILS and "only 1.6× fewer samples" in v.reason


def curvature_report(tmp_path: Path, imp: float, synth: float, stderr: float) -> Path:
    def summary(method, s, mean):
        return {
            "method": method,
            "sparsity": s,
            "diagonal": {"mean": mean, "count": 1000},
            "trace": mean * 1000,
            "trace_stderr": stderr,
        }

    rows = [
        summary(m, s, x) for s in SPARSITIES for m, x in (("imp", imp), ("distilled-dm", synth))
    ]
    write(tmp_path, "F5/sharpness_vs_sparsity.json", {"summaries": rows})
    return tmp_path


@pytest.mark.parametrize(
    ("imp", "synth", "stderr", "verdict"),
    [
        (2e-3, 1e-3, 0.1, C.HOLDS),
        (1e-3, 2e-3, 0.1, C.FAILS),
        (1.0e-3, 0.9e-3, 0.5, C.UNSEPARABLE),
    ],
)
def test_flatter_diagonal_verdicts(tmp_path, imp, synth, stderr, verdict):
    assert (
        C.claim_flatter_diagonal(curvature_report(tmp_path, imp, synth, stderr)).verdict == verdict
    )


def plane(ridge: float) -> dict:
    """A 5×5 accuracy grid, θ0 at (1, 0) and θ1 at (−1, 0), with a ridge of `ridge` error
    between them at x = 0."""
    xs = [-2.0, -1.0, 0.0, 1.0, 2.0]
    acc = [[0.95 - (ridge if x == 0.0 else 0.0) for x in xs] for _ in xs]
    markers = [{"label": "θ0", "x": 1.0, "y": 0.0}, {"label": "θ1", "x": -1.0, "y": 0.0}]
    return {"x": xs, "y": xs, "accuracy": acc, "markers": markers, "meta": {"n": 500}}


def test_slice_barrier_reads_the_ridge_between_the_copies():
    assert slice_barrier(plane(0.30)) == pytest.approx(0.30)
    assert slice_barrier(plane(0.0)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    ("dense", "imp", "synth", "verdict"),
    [(0.3, 0.2, 0.0, C.HOLDS), (0.3, 0.0, 0.0, C.FAILS), (0.3, 0.2, 0.1, C.FAILS)],
)
def test_basin_verdicts(tmp_path, dense, imp, synth, verdict):
    for name, ridge in (("dense", dense), ("imp", imp), ("distilled-dm", synth)):
        write(tmp_path, f"F4/paper_plane_{name}.json", plane(ridge))
    v = C.claim_basins(tmp_path)
    assert v.verdict == verdict, v.reason
    assert "one image = 0.20%" in v.values


@pytest.mark.parametrize(
    ("imp", "synth", "acc_synth", "verdict"),
    [
        (0.10, 0.005, 0.97, C.HOLDS),
        (0.10, 0.005, 0.90, C.FAILS),  # stable, but 7 points of performance ratio lost
        (0.01, 0.08, 0.97, C.FAILS),  # the synthetic barrier is the higher one
        (0.011, 0.009, 0.97, C.UNSEPARABLE),  # 0.2 points apart, SE of the difference 0.16
    ],
)
def test_tradeoff_verdicts(tmp_path, imp, synth, acc_synth, verdict):
    rows = [barrier_row("dense", 0.0, 0.3)]
    for s in SPARSITIES:
        rows += [barrier_row("imp", s, imp), barrier_row("distilled-dm", s, synth, acc=acc_synth)]
    write(tmp_path, "F2/barrier_vs_sparsity.json", {"rows": rows})
    assert C.claim_tradeoff(tmp_path).verdict == verdict


def test_harder_data_is_never_judged_inside_one_preset(tmp_path):
    assert C.claim_harder_data(report(tmp_path, 0.1, 0.0)).verdict == C.UNTESTED


def test_claims_file_and_index_section(tmp_path):
    report(tmp_path, 0.10, 0.005)
    path, verdicts = write_claims(tmp_path)
    text = path.read_text()
    assert path.name == "claims.md" and text == markdown(verdicts)
    assert "| **C2**" in text and "**holds**" in text and "Thresholds" in text
    index = write_index(tmp_path, [FigureStatus("F2", "barriers", None, 1.0)], "made-up")
    page = index.read_text()
    assert "id='claims'" in page and "href='claims.md'" in page and "not tested" in page
