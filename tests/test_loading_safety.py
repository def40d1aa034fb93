"""Loading never runs code: pickles planted in a store record, a distilled-set file, a saved
dataset, a mask and a plane's resume file are refused (or, in the store, recomputed), and the
code they carry never runs. Every `torch.load` in the package passes `weights_only=True`, but
for the one place a user explicitly vouches for a whole pickled model (`--trust-checkpoint`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

import lmc_toolkit as L
from lmc_toolkit.store import StoreError
from lmc_toolkit.training.runs import TrainRun, train_run

PACKAGE = Path(L.__file__).parent
#: the files allowed a `torch.load` that may unpickle code, and the guard each must check
CONSENTED = {"cli/inputs.py": "if not args.trust_checkpoint:"}


class Planted:
    """Unpickling this calls `open(marker, "w")`: the marker file appears if the code runs."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def plant(path: Path, marker: Path, **tensors: torch.Tensor) -> None:
    """Overwrite `path` with a pickle that runs code, next to real-looking tensors."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**tensors, "payload": Planted(marker)}, path)


def test_a_planted_store_record_is_recomputed_and_never_run(tmp_path):
    store = L.Store(tmp_path / "store")
    run = TrainRun(data="digits", train=L.TrainConfig(steps=2, batch_size=32))
    first = train_run(run, store, progress=False)
    marker = tmp_path / "ran"
    plant(store.run(run).path / "result.pt", marker, x=torch.ones(1))
    with pytest.warns(RuntimeWarning, match="result.pt"):
        again = train_run(run, store, progress=False)
    assert not marker.exists()
    # retrained (bit for bit: the same run), its weights and checkpoints stored again
    for a, b in zip(first.state.values(), again.state.values(), strict=True):
        assert torch.equal(a, b)
    assert again.checkpoints.keys() == first.checkpoints.keys()
    plant(store.run(run).path / "result.pt", marker)
    with pytest.raises(StoreError, match="result.pt"):  # the record read on its own
        store.run(run).load("result")
    assert not marker.exists()


@pytest.mark.parametrize(
    "loader",
    [L.Dataset.load, L.load_distilled, L.Mask.load, L.Surface.load],
    ids=["dataset", "distilled set", "mask", "surface (a plane's resume file)"],
)
def test_a_planted_file_is_refused_and_never_run(loader, tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "planted.pt"
    plant(path, marker, x=torch.zeros(4, 1, 8, 8), y=torch.zeros(4, dtype=torch.long))
    with pytest.raises((StoreError, ValueError), match="planted.pt"):
        loader(path)
    assert not marker.exists()


def test_a_planted_file_under_an_old_checksum_is_reported_corrupt(tmp_path):
    marker = tmp_path / "ran"
    path = L.Dataset(
        x=torch.zeros(2, 1, 2, 2), y=torch.zeros(2, dtype=torch.long), classes=("a",), name="s"
    ).save(tmp_path / "set.pt")
    plant(path, marker)
    with pytest.raises(L.CorruptFile, match="set.pt is corrupted"):
        L.Dataset.load(path)
    assert not marker.exists()


def test_every_torch_load_is_weights_only():
    calls = []
    for file in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "load"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "torch"
            ):
                weights_only = [k for k in node.keywords if k.arg == "weights_only"]
                ok = weights_only and getattr(weights_only[0].value, "value", None) is True
                calls.append((f"{file.relative_to(PACKAGE)}:{node.lineno}", bool(ok)))
    assert calls, "no torch.load found: the scan is broken"
    unsafe = [where for where, ok in calls if not ok]
    assert [w for w in unsafe if w.split(":")[0] not in CONSENTED] == []
    for where in unsafe:  # a consented load runs only behind its flag, which defaults to off
        assert CONSENTED[where.split(":")[0]] in (PACKAGE / where.split(":")[0]).read_text()


def test_a_pickled_checkpoint_loads_only_with_consent(tmp_path, capsys):
    from torch import nn

    from lmc_toolkit.cli import main

    marker = tmp_path / "ran"
    path = tmp_path / "whole.pt"
    torch.save(Planted(marker), path)
    argv = ["hessian", "--data", "digits", "--checkpoint", str(path), "--no-progress"]
    assert main(argv) == 2 and not marker.exists()
    assert "pass --trust-checkpoint" in capsys.readouterr().err
    torch.save(nn.Linear(2, 2), path)  # a whole model, refused the same way without consent
    assert main(argv) == 2 and "pickled objects" in capsys.readouterr().err
