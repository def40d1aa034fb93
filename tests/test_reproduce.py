"""`lmc-toolkit reproduce --preset smoke`: every figure notebook runs and the report links all."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lmc_toolkit.cli import main
from lmc_toolkit.study import FIGURES


def test_smoke_preset_writes_every_artifact_and_an_index_that_links_them(tmp_path: Path, capsys):
    code = main(["reproduce", "--preset", "smoke", "--out", str(tmp_path), "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    root = tmp_path / "smoke"
    index = (root / "index.html").read_text()
    links = set(re.findall(r"(?:href|src)='([^']+)'", index))
    for fid, (notebook, _) in FIGURES.items():
        folder = root / fid
        assert (folder / notebook).exists(), f"{fid}: no executed notebook"
        figures = sorted(p.stem for p in folder.glob("*.html"))
        assert figures, f"{fid} wrote no figure"
        for name in figures:
            for suffix in (".png", ".json", ".html"):
                path = folder / f"{name}{suffix}"
                assert path.exists() and path.stat().st_size > 0, path
                assert f"{fid}/{name}{suffix}" in links, f"the index does not link {path}"
            json.loads((folder / f"{name}.json").read_text())
        assert f"{fid}/{notebook}" in links
    assert (root / "plotly.min.js").exists()
    for table in ("test accuracy", "error barrier", "curvature"):
        assert table in index, f"the headline table {table!r} is missing"
    # the merged table: one row per method and sparsity, with F1's, F2's and F5's numbers
    summary = (root / "headline.md").read_text()
    assert (
        "| method | sparsity | test accuracy |" in summary and "top Hessian eigenvalue" in summary
    )
    assert "<table class='summary'>" in index
    # the claims' verdicts, from the same figures
    assert "<h3 id='claims'>" in index and "| **C1**" in (root / "claims.md").read_text()
    header = [c.strip() for c in summary.splitlines()[0].strip("|").split("|")]
    dense = next(line for line in summary.splitlines() if line.startswith("| dense |"))
    cells = dict(zip(header, (c.strip() for c in dense.strip("|").split("|")), strict=True))
    assert "error barrier, two inits" in cells and "after weight matching" in cells  # F9
    assert cells.pop("mask IoU after alignment") == "–"  # a dense network has no mask
    missing = [c for c, v in cells.items() if v == "–"]
    assert not missing, f"the dense row misses {missing}: {dense}"
    for link in links:
        assert (root / link).exists(), f"the index links a missing file {link}"


def test_a_failing_notebook_is_reported_and_the_exit_code_is_non_zero(tmp_path: Path, capsys):
    import nbformat

    folder = tmp_path / "notebooks"
    folder.mkdir()
    for fid, (name, _) in FIGURES.items():
        nb = nbformat.v4.new_notebook()
        params = nbformat.v4.new_code_cell('preset = "smoke"\nout = None\nprogress = True')
        params.metadata["tags"] = ["parameters"]
        body = "raise ValueError('no data for ' + preset)" if fid == "F3" else "x = 1"
        nb.cells = [params, nbformat.v4.new_code_cell(body)]
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        nbformat.write(nb, folder / name)
    args = ["reproduce", "--preset", "smoke", "--only", "F2,F3", "--out", str(tmp_path / "r")]
    code = main([*args, "--notebooks", str(folder), "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 1
    assert "F3" in printed and "FAILED: ValueError: no data for smoke" in printed
    assert re.search(r"F2 .* ok", printed)


def test_bad_preset_or_figure_is_refused_before_any_work(tmp_path: Path, capsys):
    assert main(["reproduce", "--preset", "smoke", "--only", "F99", "--out", str(tmp_path)]) == 2
    assert "unknown figure 'F99'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_bad_scheduler_is_refused_before_any_notebook_runs(tmp_path: Path, capsys):
    for bad, message in (("threads:2", "allowed"), ("cluster:x", "cluster:N")):
        code = main(["reproduce", "--preset", "smoke", "--out", str(tmp_path), "--scheduler", bad])
        assert code == 2 and message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.slow  # 70 s; test_sweep covers process pools and Dask in the default run
def test_a_figure_notebook_hands_its_trainings_to_a_process_pool(tmp_path: Path, capsys):
    """F1 with `--scheduler processes:2`: the same accuracies as the in-process run."""
    from lmc_toolkit.store import Store

    tables = {}
    for name, extra in (("pool", ["--scheduler", "processes:2"]), ("here", [])):
        store = tmp_path / f"store-{name}"
        args = ["reproduce", "--preset", "smoke", "--only", "F1", "--no-progress"]
        code = main([*args, "--out", str(tmp_path / name), "--store", str(store), *extra])
        assert code == 0, capsys.readouterr()
        tables[name] = json.loads((tmp_path / name / "smoke" / "F1" / "headline.json").read_text())
        if name == "pool":  # every ticket was trained by the pool, then loaded by the notebook
            assert Store(store).computations() > 0
    accuracy = "test accuracy (mean ± std over data seeds)"  # (the cost table holds seconds)
    assert tables["pool"][accuracy] == tables["here"][accuracy]
