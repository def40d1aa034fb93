"""The paper preset end to end: `reproduce --preset paper --scale smoke` on CIFAR-10 files in
torchvision's on-disk format that the test writes itself (a few hundred images), so the whole
paper pipeline (narrow ResNet-18, gradient-matching and DM distilled sets, every notebook) runs
on a CPU in minutes and every figure is produced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import F9_SHORT, write_cifar10

from lmc_toolkit.cli import main
from lmc_toolkit.study import FIGURES, study_config


def test_the_smoke_scale_keeps_the_papers_data_and_model():
    paper, quick = study_config("paper"), study_config("paper", scale="smoke")
    assert (quick.dataset, quick.model, quick.synthetic) == (
        paper.dataset,
        paper.model,
        paper.synthetic,
    )
    assert quick.train.augment == paper.train.augment
    # the smoke preset's small distillation network: gradient matching through the default
    # width-128 ConvNet took 197 s of F1's 247 s on 2 cores
    assert quick.synth_options == study_config("smoke").synth_options != paper.synth_options
    assert quick.train.epochs < paper.train.epochs and quick.rounds < paper.rounds
    assert study_config("paper", scale=None) == paper


def run_paper(tmp_path: Path, capsys, only: str | None) -> Path:
    write_cifar10(tmp_path / "data", per_batch=40, test=60)
    args = ["reproduce", "--preset", "paper", "--scale", "smoke", "--no-progress"]
    args += ["--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "reports")]
    code = main(args + (["--only", only] if only else []))
    printed = capsys.readouterr().out
    assert code == 0, printed
    return tmp_path / "reports" / "paper-smoke"


def paper_figures(tmp_path: Path, only: str, parameters: dict) -> Path:
    """`run_figures` for the paper preset at the smoke scale on the files under tmp_path/data,
    with per-figure `parameters` (which the CLI does not take); fails on a failed figure."""
    from lmc_toolkit.study import run_figures

    report = run_figures(
        "paper", only=only, out=tmp_path / "reports", parameters=parameters, progress=False,
        common={"scale": "smoke", "data_root": str(tmp_path / "data"), "progress": False},
    )  # fmt: skip
    assert not report.failed, report.failed
    return report.root


def test_paper_preset_trains_prunes_and_distills_on_cifar10_format_files(tmp_path: Path, capsys):
    """The default run's share (about 70 s): F1 (the data, the narrow ResNet-18, both
    distillations, IMP, distilled and random pruning, tickets). Spawning at k on the ResNet
    (BatchNorm's 0-d step counter in the store keys, which once broke F3 here) is kept by
    tests/test_identity.py and by the slow test below, which runs every figure."""
    root = run_paper(tmp_path, capsys, "F1")
    assert list((root / "F1").glob("*.json")), "F1 wrote no figure"
    config = json.loads((root / "F1" / "accuracy_vs_sparsity.json").read_text())["config"]
    assert (config["dataset"], config["model"]) == ("cifar10", "resnet18")
    assert set(config["synthetic"]) == {"dc", "dm", "random"}


@pytest.mark.slow  # every paper figure, F9 as F9_SHORT: 19.6 minutes on 2 cores (2026-12-06)
def test_paper_preset_runs_every_figure_on_cifar10_format_files(tmp_path: Path, capsys):
    root = run_paper(tmp_path, capsys, ",".join(f for f in FIGURES if f != "F9"))
    paper_figures(tmp_path, "F9", {"F9": F9_SHORT})
    for fid, (notebook, _) in FIGURES.items():
        assert (root / fid / notebook).exists(), f"{fid}: no executed notebook"
        assert list((root / fid).glob("*.json")), f"{fid} wrote no figure"
    config = json.loads((root / "F1" / "accuracy_vs_sparsity.json").read_text())["config"]
    assert (config["dataset"], config["model"]) == ("cifar10", "resnet18")
    assert set(config["synthetic"]) == {"dc", "dm", "random"}
    assert "<h3 id='claims'>" in (root / "index.html").read_text()
    assert "| **C2**" in (root / "claims.md").read_text()
