"""The explorer in a real browser: JupyterLab on 127.0.0.1 runs `notebooks/explore.ipynb` at the
smoke preset, Debian's chromium (driven by Playwright) checks that the widgets and the plotly
figure render (plotly `FigureWidget`s where anywidget is installed) and that dragging the α
slider moves the marker on the curve, an edit made in place.

Skips only where chromium or Playwright is missing (`.ci/run` installs chromium).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import CHROMIUM, CHROMIUM_FLAGS

from lmc_toolkit.plots.explore import MARKER_TRACES

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "explore.ipynb"
TOKEN = "lmc-toolkit-browser-test"
#: The curve figure's line and α-marker traces, decoded by plotly (`_fullData`).
MARKER_JS = """() => {
    const plots = document.querySelectorAll('.lmc-explorer .js-plotly-plot');
    if (!plots.length) return null;
    const full = plots[0]._fullData;  // plotly's decoded copy of the traces
    if (!full || full.length < 4) return null;
    const m = full[MARKER];
    return {x: Array.from(m.x), y: Array.from(m.y), n: Array.from(full[0].x).length};
}""".replace("MARKER", str(MARKER_TRACES[0]))

pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
    ),
    pytest.mark.timeout(420),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url: str, process: subprocess.Popen, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"JupyterLab exited with code {process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"JupyterLab did not answer at {url} within {timeout} s")


def _write_settings(folder: Path) -> None:
    """JupyterLab settings for a test: every cell kept in the page (no windowing, so the
    explorer renders wherever it is) and no news pop-up."""
    files = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": '{"windowingMode": "none"}',
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": '{"fetchNews": "false"}',
    }
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[str]:
    """A JupyterLab server on 127.0.0.1 whose root holds a copy of the explorer notebook; its
    kernels use a fresh run store. Yields the notebook's URL; the server is killed after."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    home = tmp_path / "jupyter"
    env = {
        **os.environ,
        "LMC_TOOLKIT_STORE": str(tmp_path / "store"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
    }
    _write_settings(home / "settings")
    port = _free_port()
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}", "--allow-root",
        f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    log_path = tmp_path / "jupyterlab.log"
    log = open(log_path, "wb")  # noqa: SIM115 (closed in the finally)
    process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(f"{base}/api/status?token={TOKEN}", process, 60, log_path)
        yield f"{base}/lab/tree/{NOTEBOOK.name}?token={TOKEN}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()


SLICE_JS = """() => {
    const plots = Array.from(document.querySelectorAll('.lmc-explorer .js-plotly-plot'))
        .filter(p => p._fullData && p._fullData.length && p._fullData[0].type === 'contour');
    if (!plots.length || plots[0].getBoundingClientRect().width === 0) return null;
    const z = Array.from(plots[0]._fullData[0].z, row => Array.from(row));
    return {rows: z.length, finite: z.every(row => row.every(Number.isFinite))};
}"""
KERNEL_READY_JS = """() => {
    const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = panel && panel.sessionContext && panel.sessionContext.session
        && panel.sessionContext.session.kernel;
    return kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
}"""
STARTED_JS = """() => Array.from(document.querySelectorAll('.jp-InputPrompt'))
    .some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"""
#: every code cell has run (its prompt shows a number): the kernel is free for the widgets'
#: messages (the notebook's last cells train a pair spawned at k, which keeps it busy)
ALL_RUN_JS = """() => {
    const cells = Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputPrompt'));
    return cells.length > 0 && cells.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""


def _run_all(page) -> None:
    """Run all cells once the kernel is ready; ask again if nothing started (a run-all sent
    while the kernel was still connecting is dropped)."""
    for _ in range(5):
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        try:
            page.wait_for_function(STARTED_JS, timeout=10_000)
            return
        except Exception:
            page.wait_for_function(KERNEL_READY_JS)
    raise TimeoutError("the notebook's cells never started running")


def _marker(page) -> dict | None:
    return page.evaluate(MARKER_JS)


def _wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise TimeoutError(f"{what} did not happen within {timeout} s")


def test_explorer_renders_and_the_alpha_slider_moves_the_marker(lab, tmp_path):
    shot = Path(os.environ.get("LMC_BROWSER_SCREENSHOT", tmp_path / "explorer.png"))
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.set_default_timeout(60_000)
            page.goto(lab)
            page.wait_for_function(KERNEL_READY_JS)
            _run_all(page)
            page.wait_for_function(ALL_RUN_JS, timeout=240_000)
            first = _wait_until(  # the computed curve, not the placeholder of 2 points
                lambda: (m := _marker(page)) and m["n"] > 2 and m, 150, "the explorer's curve"
            )
            page.locator(".lmc-explorer .widget-dropdown").first.wait_for(state="visible")
            assert page.locator(".lmc-explorer .widget-dropdown").count() >= 3
            if importlib.util.find_spec("anywidget"):  # figures are FigureWidgets, not Outputs
                assert page.locator(".lmc-explorer .widget-output").count() == 0
            readout_before = page.locator(
                ".lmc-explorer .widget-label", has_text="α ="
            ).inner_text()
            slider = page.locator(".lmc-explorer .widget-slider", has_text="α").filter(
                has_not_text="points"
            )
            handle = slider.locator(".noUi-handle").first
            track = slider.locator(".noUi-target").first
            track.scroll_into_view_if_needed()  # the last cells' output leaves the page below it
            box, grip = track.bounding_box(), handle.bounding_box()
            page.mouse.move(grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] - 1, box["y"] + box["height"] / 2, steps=8)
            page.mouse.up()
            moved = _wait_until(
                lambda: (m := _marker(page)) and m["x"] == [1.0] and m,  # the slider's end
                30, "the α marker's move",
            )  # fmt: skip
            assert first["x"] == [0.5] and moved["y"] != first["y"]
            readout = page.locator(".lmc-explorer .widget-label", has_text="α =").inner_text()
            assert readout != readout_before and "α = 1.00" in readout
            explorer = page.locator(".lmc-explorer")
            explorer.scroll_into_view_if_needed()
            explorer.screenshot(path=str(shot.with_name(shot.stem + "-curve.png")))
            page.get_by_role("tab", name="landscape slice").click()
            contour = _wait_until(lambda: page.evaluate(SLICE_JS), 30, "the slice's contour map")
            assert contour["finite"] and contour["rows"] >= 2, contour
            explorer.scroll_into_view_if_needed()
            explorer.screenshot(path=str(shot.with_name(shot.stem + "-slice.png")))
        finally:
            page.screenshot(path=str(shot), full_page=True)
            browser.close()
