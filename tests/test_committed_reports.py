"""The committed reports open from a clone: every link and image of every committed
`reports/<preset>/index.html` (and every script a linked figure page loads) is a file that git
tracks, and a real browser opens `reports/cpu/index.html` and one interactive figure as files
(no server) and draws the figure with the report's own committed plotly.js.

Set LMC_TOOLKIT_SCREENSHOTS=<folder> to keep the browser's screenshots.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

import pytest
from helpers import CHROMIUM, CHROMIUM_FLAGS

ROOT = Path(__file__).resolve().parent.parent


def tracked_files() -> set[str]:
    """Paths (relative to the repository, '/'-separated) that git tracks under `reports/`."""
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout: the committed files cannot be listed")
    out = subprocess.run(
        ["git", "ls-files", "-z", "reports"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    return {p for p in out.decode().split("\0") if p}


class Links(HTMLParser):
    """Every href and src of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [v for k, v in attrs if k in ("href", "src") and v]


def local_links(page: Path) -> list[str]:
    """The page's links to files, resolved to repository paths; anchors and web links left out."""
    parser = Links()
    parser.feed(page.read_text(encoding="utf-8"))
    base = PurePosixPath(page.relative_to(ROOT).as_posix()).parent
    paths = []
    for link in parser.found:
        parts = urlsplit(link)
        if parts.scheme or parts.netloc or not parts.path:  # http(s):, data:, '#anchor'
            continue
        paths.append(os.path.normpath(str(base / unquote(parts.path))).replace(os.sep, "/"))
    return paths


def committed_indexes(tracked: set[str]) -> list[Path]:
    return sorted(ROOT / p for p in tracked if PurePosixPath(p).name == "index.html")


def test_the_parser_finds_links_and_leaves_out_anchors():
    page = ROOT / "reports" / "cpu" / "index.html"
    links = local_links(page)
    assert "reports/cpu/claims.md" in links
    assert not [p for p in links if p.startswith(("http", "#"))]


def test_every_link_of_every_committed_index_is_a_committed_file():
    tracked = tracked_files()
    indexes = committed_indexes(tracked)
    assert {p.parent.name for p in indexes} >= {"cpu"}, "reports/cpu/index.html is not committed"
    for index in indexes:
        links = local_links(index)
        assert any(p.endswith(".html") for p in links), f"{index} links no interactive figure"
        missing = sorted({p for p in links if p not in tracked})
        assert not missing, f"{index.relative_to(ROOT)} links files git does not track: {missing}"
        for page in sorted({p for p in links if p.endswith(".html")}):
            scripts = local_links(ROOT / page)
            assert scripts, f"{page} loads no script (plotly.js)"
            absent = sorted(p for p in scripts if p not in tracked)
            assert not absent, f"{page} loads files git does not track: {absent}"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
@pytest.mark.timeout(180)
def test_the_committed_cpu_report_opens_as_a_file_and_draws_its_figures(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is missing")
    shots = Path(os.environ.get("LMC_TOOLKIT_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    index = ROOT / "reports" / "cpu" / "index.html"
    figure = next(p for p in local_links(index) if p.endswith(".html"))
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            page.goto(index.as_uri())
            page.wait_for_load_state("load")
            broken = page.evaluate(
                "() => Array.from(document.images).filter(i => !i.naturalWidth).map(i => i.src)"
            )
            assert page.evaluate("() => document.images.length") > 0
            assert not broken, f"images the index cannot show: {broken}"
            page.screenshot(path=str(shots / "index.png"))
            page.goto((ROOT / figure).as_uri())
            # plotly draws its SVG only when the committed ../plotly.min.js loaded and ran
            page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
            traces = page.evaluate(
                "() => document.querySelector('.js-plotly-plot')._fullData.length"
            )
            assert traces > 0, f"{figure} drew no trace"
            page.screenshot(path=str(shots / "figure.png"))
        finally:
            browser.close()
