"""`lmc-toolkit hessian` end to end on digits with a tiny convnet3."""

from __future__ import annotations

import json

from lmc_toolkit.cli import main


def test_hessian_command_prints_and_writes_results(tmp_path, capsys):
    out = tmp_path / "h.json"
    argv = "hessian --data digits --model convnet3 --option width=2 --option depth=1 --steps 5"
    argv += " --images 64 --k 2 --probes 6 --diagonal ggn --runs 1 --slq-steps 5 --no-progress"
    argv += f" --store {tmp_path / 'store'} --json {out}"
    assert main(argv.split()) == 0
    printed = capsys.readouterr().out
    assert "top-2 (LA)" in printed and "trace" in printed and "density" in printed
    saved = json.loads(out.read_text())
    assert len(saved["eigen"]["values"]) == 2
    assert saved["eigen"]["values"][0] >= saved["eigen"]["values"][1]
    assert saved["diagonal"]["route"] == "ggn" and not saved["diagonal"]["exact"]
    assert saved["operator"]["n"] == 64
