"""The `instability` and `landscape` subcommands on tiny digits runs."""

from __future__ import annotations

import pytest

from lmc_toolkit.cli import main
from lmc_toolkit.landscape import Surface

TINY = ["--data", "digits", "--option", "width=4", "--steps", "4", "--lr", "0.05", "--no-progress"]


def test_instability_command(tmp_path, capsys):
    html = tmp_path / "f3.html"
    argv = ["instability", *TINY, "--k", "0", "--k", "2", "--alphas", "3", "--store", str(tmp_path)]
    assert main([*argv, "--html", str(html)]) == 0
    out = capsys.readouterr().out
    assert "k=     0" in out and "k=     2" in out and "error barrier" in out
    assert html.exists()


def test_landscape_command_saves_a_resumable_surface(tmp_path, capsys):
    path = tmp_path / "plane.pt"
    argv = ["landscape", *TINY, "--grid", "3", "--images", "50", "--store", str(tmp_path)]
    assert main([*argv, "--out", str(path)]) == 0
    assert "random plane on digits (50 images, 9 points)" in capsys.readouterr().out
    surface = Surface.load(path)
    assert surface.complete and surface.meta["kind"] == "random"
    assert (
        main(
            [
                "landscape",
                *TINY,
                "--kind",
                "paper",
                "--grid",
                "2",
                "--images",
                "50",
                "--store",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert "paper plane" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["landscape", *TINY, "--grid", "1", "--store", str(tmp_path)])
    assert exc.value.code == 2
    assert "argument --grid: must be an integer ≥ 2, got '1'" in capsys.readouterr().err


def test_landscape_precision_is_recorded_or_refused_before_training(tmp_path, capsys, monkeypatch):
    from lmc_toolkit.landscape import bf16_supported
    from lmc_toolkit.landscape.evaluator import precision

    store = tmp_path / "store"
    argv = ["landscape", *TINY, "--grid", "2", "--images", "50", "--store", str(store)]
    if bf16_supported(precision.torch.device("cpu")):
        path = tmp_path / "plane.pt"
        assert main([*argv, "--precision", "bfloat16", "--out", str(path)]) == 0
        assert Surface.load(path).precision == "bfloat16"
    monkeypatch.setattr(precision, "bf16_supported", lambda device: False)
    fresh = tmp_path / "fresh"
    argv[-1] = str(fresh)
    assert main([*argv, "--precision", "bfloat16"]) == 2
    assert "precision='bfloat16' needs" in capsys.readouterr().err
    assert not fresh.exists() or not any(fresh.iterdir())  # refused before any training
