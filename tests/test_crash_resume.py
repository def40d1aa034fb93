"""The main job survives crashes: `reproduce --preset smoke` killed with SIGKILL (the whole
process group, notebook kernels included) during a training, during a plane and while the
figures are being written, then run again, ends with the same report JSON as an uninterrupted
run, and no partial file is ever visible in `reports/` or the store.

Slow (four runs of the smoke preset): `make test-slow`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lmc_toolkit.store.files import TMP_MARK, safe_torch_load

pytestmark = pytest.mark.slow

#: Keys that say how a value was obtained (wall-clock times, loaded from the store or not),
#: which differ between any two runs; every other value must be identical.
PROVENANCE_KEYS = {"time", "cached"}


def start(out: Path, store: Path) -> subprocess.Popen:
    argv = [sys.executable, "-m", "lmc_toolkit", "reproduce", "--preset", "smoke"]
    argv += ["--out", str(out), "--store", str(store), "--no-progress"]
    return subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )


#: Run folders of trainings: IMP rounds, tickets (masks trained on real data), spawned children.
TRAININGS = ("train-", "imp-", "ticket-", "child-")


def locks_in(store: Path, *prefixes: str) -> bool:
    """Whether a run whose folder name starts with one of `prefixes` is being computed (its
    lock is held)."""
    return any(p.parent.name.startswith(prefixes) for p in store.glob("*/*.lock"))


def partial_notebook(out: Path, figure: str) -> bool:
    """Whether the notebook of `figure` is running (its executed copy still temporary)."""
    return any((out / "smoke" / figure).glob(f"*{TMP_MARK}*.ipynb"))


def kill_when(out: Path, store: Path, hit: Callable[[], bool], limit: float = 600) -> bool:
    """Run the job until `hit()` holds, then SIGKILL its process group; True if killed."""
    proc = start(out, store)
    deadline = time.monotonic() + limit
    while proc.poll() is None and time.monotonic() < deadline:
        if hit():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    return False


def assert_nothing_partial(out: Path, store: Path) -> int:
    """Every visible file is complete: reports' JSON and notebooks parse, HTML ends, stored
    tensors pass their checksums. Returns how many files were checked."""
    checked = 0
    for path in [*out.rglob("*"), *store.rglob("*")]:
        if not path.is_file() or TMP_MARK in path.name:
            continue
        if path.suffix in (".json", ".ipynb") and ".computed" not in path.parts:
            json.loads(path.read_text())
        elif path.suffix == ".html":
            assert path.read_text().rstrip().endswith("</html>"), path
        elif path.suffix == ".pt":
            safe_torch_load(path)  # checks the checksum record, then loads weights-only
        else:
            continue
        checked += 1
    return checked


def without_timings(value):
    if isinstance(value, dict):
        return {
            k: without_timings(v)
            for k, v in value.items()
            if k not in PROVENANCE_KEYS and not k.endswith("seconds")
        }
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def report_json(out: Path) -> dict[str, object]:
    root = out / "smoke"
    return {
        str(p.relative_to(root)): without_timings(json.loads(p.read_text()))
        for p in sorted(root.rglob("*.json"))
    }


def test_killed_runs_resume_to_the_same_report(tmp_path):
    reference = tmp_path / "reference"
    proc = start(reference / "reports", reference / "store")
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err.decode()[-2000:]

    out, store = tmp_path / "reports", tmp_path / "store"
    points = {
        "during a training": lambda: locks_in(store, *TRAININGS),
        "during a plane": lambda: locks_in(store, "paper-plane-", "random-plane-"),
        "while figures are written": lambda: partial_notebook(out, "F6"),
    }
    checked = []
    for name, hit in points.items():
        assert kill_when(out, store, hit), f"the run finished before it could be killed {name}"
        checked.append(assert_nothing_partial(out, store))
    assert checked[-1] > 0  # by the last kill there is something to check
    proc = start(out, store)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert assert_nothing_partial(out, store) > 0
    assert not list(out.rglob(f"*{TMP_MARK}*")), "a temporary file is left in the report"
    assert report_json(out) == report_json(reference / "reports")
