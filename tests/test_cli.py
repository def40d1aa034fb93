"""The `lmc-toolkit` command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lmc_toolkit.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lmc_toolkit", *args], capture_output=True, text=True, timeout=300
    )


def test_help_lists_the_commands():
    out = run_cli("--help")
    assert out.returncode == 0
    for name in ("train", "reproduce", "datasets", "models"):
        assert name in out.stdout


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "lmc-toolkit"
    if not script.exists():
        pytest.skip("the package is not installed in this environment (pip install -e .)")
    out = subprocess.run([str(script), "models"], capture_output=True, text=True, check=True)
    assert "convnet3" in out.stdout.split()


def test_train_prints_accuracy_and_saves_the_run(tmp_path):
    args = ("train", "--data", "digits", "--model", "mlp", "--epochs", "2", "--lr", "0.05")
    args += ("--store", str(tmp_path), "--no-progress")
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "trained" in first.stdout and "test accuracy 0." in first.stdout
    runs = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]  # (.computed: the counter)
    assert len(runs) == 1 and runs[0].name.startswith("train-digits-mlp-")
    assert (runs[0] / "result.pt").exists()
    second = run_cli(*args)
    assert "loaded from the store" in second.stdout
    accuracy = [line for line in first.stdout.splitlines() if line.startswith("test accuracy")]
    assert accuracy == [
        line for line in second.stdout.splitlines() if line.startswith("test accuracy")
    ]


def test_bad_arguments_are_refused_with_the_allowed_values(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", "imagenet"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'imagenet'" in err and "mnist" in err
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", "digits", "--batch-size", "0", "--no-progress"])
    assert exc.value.code == 2
    assert "argument --batch-size: must be an integer ≥ 1, got '0'" in capsys.readouterr().err


def test_output_paths_are_checked_before_any_work(tmp_path, capsys):
    missing = tmp_path / "no" / "such" / "folder" / "h.json"
    with pytest.raises(SystemExit) as exc:
        main(["hessian", "--data", "digits", "--json", str(missing), "--no-progress"])
    assert exc.value.code == 2
    assert f"argument --json: its folder {str(missing.parent)!r} does not exist" in (
        capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        main(["landscape", "--data", "digits", "--html", str(tmp_path), "--no-progress"])
    assert f"must be a file path, got the folder {str(tmp_path)!r}" in capsys.readouterr().err
