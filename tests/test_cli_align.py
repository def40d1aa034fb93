"""`lmc-toolkit align` end to end on digits with a small MLP."""

from __future__ import annotations

from lmc_toolkit.cli import main

BASE = "align --data digits --model mlp --option hidden=32 --epochs 2 --lr 0.05 --no-progress"


def test_align_prints_barriers_before_and_after(tmp_path, capsys):
    argv = f"{BASE} --method weights --method activations --alphas 5 --store {tmp_path}"
    assert main(argv.split()) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert {"none", "weights", "activations"} <= set(rows)
    assert "init seeds 0 and 1" in rows["mlp"]


def test_bad_align_arguments_are_refused_before_training(tmp_path, capsys):
    for extra, says in (
        ("--method rebasin", "--method 'rebasin'"),
        ("--init-seed-b 0", "--init-seed-b must differ"),
        ("--alphas 1", "argument --alphas: must be an integer ≥ 2, got '1'"),
    ):
        try:
            code = main(f"{BASE} {extra} --store {tmp_path}".split())
        except SystemExit as exc:  # refused by the parser
            code = exc.code
        assert code == 2
        assert says in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing trained, nothing stored
