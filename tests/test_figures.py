"""The figure runner: parameters checked first, notebooks executed, failures recorded, index."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from lmc_toolkit.study.figures import parameters
from lmc_toolkit.study.figures import pipeline as figures

GOOD = """
import plotly.graph_objects as go
from lmc_toolkit.plots import figure_output
o = figure_output("F1", out, static=static)
fig = go.Figure(go.Scatter(x=[0, 1, 2], y=[n, n + 1, n + 2]))
o.save("line", fig, {"y": [n, n + 1, n + 2]})
o.headline("accuracy", [{"method": "dense", "accuracy": 0.5 + n / 100}])
"""


def _notebook(path: Path, body: str, parameters: str) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


@pytest.fixture
def notebooks(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    defaults = 'preset = "smoke"\nout = "reports"\nn = 1\nstatic = False\n'
    _notebook(folder / figures.FIGURES["F1"][0], GOOD, defaults)
    _notebook(folder / figures.FIGURES["F2"][0], "raise RuntimeError('boom ' + str(n))", defaults)
    return folder


def test_runs_records_failures_and_writes_the_index(notebooks: Path, tmp_path: Path):
    report = figures.run_figures(
        "smoke",
        only="F1,F2",
        out=tmp_path / "reports",
        parameters={"F1": {"n": 7}, "F2": {"n": 3}},
        notebooks=notebooks,
        progress=False,
    )
    root = tmp_path / "reports" / "smoke"
    assert report.root == root
    f1, f2 = report.statuses
    assert f1.ok and not f2.ok
    assert "RuntimeError" in f2.error and "boom 3" in f2.error
    assert [s.figure for s in report.failed] == ["F2"]
    # the executed notebooks are kept, the failing one too
    assert (root / "F1" / "F1_accuracy.ipynb").exists()
    assert (root / "F2" / "F2_interpolation.ipynb").exists()
    # the figure's data and offline HTML (one shared plotly.js)
    assert (root / "F1" / "line.json").read_text().count("7") >= 1
    html = (root / "F1" / "line.html").read_text()
    assert "../plotly.min.js" in html and (root / "plotly.min.js").stat().st_size > 1_000_000
    index = report.index.read_text()
    for target in ("F1/line.html", "F1/line.json", "F1/F1_accuracy.ipynb", "boom 3", "0.57"):
        assert target in index


def test_a_run_of_some_figures_keeps_the_others_in_the_index(notebooks: Path, tmp_path: Path):
    from lmc_toolkit.study.figures.reports import STATUS, recorded_statuses

    out = tmp_path / "reports"
    run = {"out": out, "notebooks": notebooks, "progress": False}
    first = figures.run_figures("smoke", "F1,F2", parameters={"F2": {"n": 3}}, **run)
    again = figures.run_figures("smoke", "F1", parameters={"F1": {"n": 9}}, **run)
    assert [s.figure for s in again.statuses] == ["F1"]
    index = again.index.read_text()
    # F2's entry (its error, its notebook) is kept from its recorded run; F1's is the new one
    assert "boom 3" in index and "F2/F2_interpolation.ipynb" in index
    assert "0.59" in index and "0.51" not in index
    kept = recorded_statuses(first.root, list(figures.FIGURES))
    assert kept["F2"] == first.statuses[1] and kept["F1"] == again.statuses[0]
    # a record that is not a status is skipped, not fatal
    (first.root / "F2" / STATUS).write_text('{"figure": "F2"}')
    assert "F2" not in recorded_statuses(first.root, ["F2"])


def test_static_png_is_written_when_a_browser_is_there(notebooks: Path, tmp_path: Path):
    from lmc_toolkit.plots import figure_output

    go = pytest.importorskip("plotly.graph_objects")
    out = figure_output("F9", tmp_path)
    artifact = out.save("bars", go.Figure(go.Bar(x=["a", "b"], y=[1, 2])), {"y": [1, 2]})
    if artifact.png is None:
        assert artifact.png_error  # the reason is recorded, the HTML and JSON still exist
        pytest.skip(f"no static export here: {artifact.png_error}")
    png = (tmp_path / artifact.png).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_bad_parameters_are_refused_before_running(notebooks: Path, tmp_path: Path):
    out = tmp_path / "reports"
    with pytest.raises(
        ValueError, match=r"no parameter 'epochs'.*\['n', 'out', 'preset', 'static'\]"
    ):
        figures.run_figures("smoke", "F1", out, {"F1": {"epochs": 3}}, notebooks, progress=False)
    with pytest.raises(ValueError, match=r"n=.*must be int"):
        figures.run_figures("smoke", "F1", out, {"F1": {"n": "x"}}, notebooks, progress=False)
    with pytest.raises(
        ValueError, match=r"'laptop' is not one of \['cpu', 'fashion', 'paper', 'smoke'\]"
    ):
        figures.run_figures("laptop", "F1", out, None, notebooks, progress=False)
    with pytest.raises(ValueError, match=r"unknown figure 'F12'"):
        figures.run_figures("smoke", "F1,F12", out, None, notebooks, progress=False)
    with pytest.raises(FileNotFoundError, match="F3"):
        figures.run_figures("smoke", "F3", out, None, notebooks, progress=False)
    assert not out.exists()  # nothing ran


def test_shared_parameters_are_checked_against_the_library():
    with pytest.raises(ValueError, match=r"'imagenet1k' is not one of .*'mnist'"):
        parameters.VALIDATORS["dataset"]("dataset", "imagenet1k")
    parameters.VALIDATORS["model"]("model", "convnet3")
    with pytest.raises(ValueError, match=r"align='none': 'none' is not one of \['activations'"):
        parameters.VALIDATORS["align"]("align", "none")
    with pytest.raises(ValueError, match=r"unknown scheduler 'threads:2'; allowed: None"):
        parameters.VALIDATORS["scheduler"]("scheduler", "threads:2")
    with pytest.raises(ValueError, match="must be a string"):
        parameters.VALIDATORS["scheduler"]("scheduler", 2)
    for ok in (None, "processes:2", "tcp://127.0.0.1:8786"):
        parameters.VALIDATORS["scheduler"]("scheduler", ok)
    assert figures.parse_only(None) == list(figures.FIGURES)
    assert figures.parse_only("f2, F4") == ["F2", "F4"]
