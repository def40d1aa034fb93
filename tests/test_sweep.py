"""Sweeps: units on this process, a process pool and a 2-worker Dask LocalCluster.

The Dask tests are the issue's "done when": a small ticket sweep is bit-identical to the
in-process run, survives a killed worker, is a pure store hit the second time, and reports a
failing unit while the others complete.
"""

from __future__ import annotations

import importlib
import operator
import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from lmc_toolkit.store import Store, safe_json_load, safe_torch_load
from lmc_toolkit.study import Study, StudyConfig, study_sweep, ticket_units
from lmc_toolkit.sweep import (
    SweepError,
    SweepReport,
    Unit,
    run_units,
    scheduler_kind,
)
from lmc_toolkit.training import TrainConfig

try:
    import distributed
except ImportError:  # the optional [sweep] extra
    distributed = None

needs_dask = pytest.mark.skipif(
    distributed is None, reason="dask.distributed is not installed (pip install '.[sweep]')"
)

#: 3 sparsities (IMP rounds 1-3) x 3 data seeds of a tiny ConvNet on 200 digits.
CONFIG = StudyConfig(
    dataset="digits",
    train_limit=200,
    test_limit=100,
    model_options=(("width", 4), ("depth", 2)),
    train=TrainConfig(epochs=1, lr=0.05, batch_size=32),
    rounds=3,
    ticket_rounds=(1, 2, 3),
    synthetic=(),
    data_seeds=(0, 1, 2),
)
METHODS = ("imp",)
COMPUTED = 4 + 6  # trainings in the sweep: IMP rounds 0-3 (seed 0), the tickets of seeds 1, 2


@contextmanager
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Store:
    """The in-process run: `Study.trained` for every ticket, one torch thread like a worker."""
    store = Store(tmp_path_factory.mktemp("reference"))
    study = Study(CONFIG, store, device="cpu", progress=False)
    with one_thread():
        for r in CONFIG.ticket_rounds:
            for s in CONFIG.data_seeds:
                study.trained("imp", r, s)
    return store


@pytest.fixture(scope="module")
def client():
    from lmc_toolkit.sweep import local_cluster

    cluster = local_cluster(2, 1, dashboard_address=None)
    c = distributed.Client(cluster)
    # seconds of imports on each worker, done while this process trains the reference
    warm = [
        c.submit(importlib.import_module, module, workers=[w], pure=False)
        for w in c.scheduler_info()["workers"]
        for module in ("torch._dynamo", "lmc_toolkit.study.units")
    ]
    yield c
    del warm
    c.shutdown()


def assert_same_tickets(store: Store, reference: Store) -> None:
    """Every ticket of the sweep loads from `store` (no training) and equals the reference."""
    before = store.computations()
    ours = Study(CONFIG, store, device="cpu", progress=False)
    theirs = Study(CONFIG, reference, device="cpu", progress=False)
    for r in CONFIG.ticket_rounds:
        for s in CONFIG.data_seeds:
            a, b = ours.trained("imp", r, s), theirs.trained("imp", r, s)
            assert a.state.keys() == b.state.keys()
            assert all(torch.equal(a.state[k], b.state[k]) for k in a.state), (r, s)
            assert a.history == b.history and a.final == b.final and a.steps == b.steps
    assert store.computations() == before  # all store hits


def assert_no_partial_files(store: Store) -> None:
    """Every result file loads; the only other files are temporary orphans and lock files."""
    for path in store.root.glob("[!.]*/*"):
        if path.suffix == ".pt":
            safe_torch_load(path)
        elif path.suffix == ".json":
            safe_json_load(path)
        else:
            # temporary orphans, lock files and checksum records (written before their file)
            assert ".tmp-" in path.name or path.suffix in (".lock", ".sha256"), path


# -- scheduler values -----------------------------------------------------------------------


def test_scheduler_values_are_checked_before_any_work():
    assert scheduler_kind(None) == ("local", None)
    assert scheduler_kind("local") == ("local", None)
    assert scheduler_kind("processes:3") == ("processes", 3)
    assert scheduler_kind("processes")[0] == "processes"
    assert scheduler_kind("tcp://10.0.0.1:8786") == ("address", "tcp://10.0.0.1:8786")
    for bad in ("processes:0", "processes:x", "dask", "10.0.0.1:8786", 3):
        with pytest.raises(ValueError, match="allowed: None or 'local'"):
            scheduler_kind(bad)
    ran = []
    with pytest.raises(ValueError, match="unknown scheduler 'threads'"):
        run_units([Unit("u", ran.append, (1,))], "threads")
    assert ran == []
    with pytest.raises(TypeError, match="Unit objects"):
        run_units([operator.add], None)
    with pytest.raises(ValueError, match="retries"):
        run_units([], None, retries=-1)
    with pytest.raises(ValueError, match="label"):
        Unit("", operator.add)


def test_units_in_this_process_report_failures_and_go_on():
    units = [
        Unit("a", operator.add, (1, 2)),
        Unit("div", operator.truediv, (1, 0), {"numerator": 1}),
        Unit("b", operator.mul, (3, 4)),
    ]
    report = run_units(units, progress=False)
    assert report.results == (3, None, 12) and not report.ok
    (f,) = report.failures
    assert (f.label, dict(f.config), f.error_type) == ("div", {"numerator": 1}, "ZeroDivisionError")
    assert "ZeroDivisionError" in f.traceback and "2 of 3 units done, 1 failed" in report.format()
    with pytest.raises(SweepError, match=r"1 of 3 units failed:\n  - div \(numerator=1\)"):
        report.raise_for_failures()
    assert report.result("b") == 12
    assert len(SweepReport.combine(report, report)) == 6


def test_a_process_pool_runs_units_and_retries_failures():
    units = [Unit(f"pow{i}", pow, (2, i), {"i": i}) for i in range(4)]
    units.append(Unit("bad", int, ("x",), {"value": "x"}))
    report = run_units(units, "processes:1", progress=False, retries=1)
    assert report.results[:4] == (1, 2, 4, 8) and report.scheduler == "processes:1"
    (f,) = report.failures
    assert f.label == "bad" and f.error_type == "ValueError" and "invalid literal" in f.message


def test_unit_keys_name_the_unit_and_its_arguments():
    a, b = Unit("t-1", operator.add, (1, 2)), Unit("t-1", operator.add, (1, 3))
    assert a.key.startswith("t-1-") and a.key != b.key
    assert a.key == Unit("t-1", operator.add, (1, 2)).key
    units = ticket_units(CONFIG, "/nowhere", methods=("dense", "imp"))
    assert len(units) == 3 + 9 and len({u.key for u in units}) == len(units)
    assert units[3].config == {"method": "imp", "round": 1, "sparsity": 0.2, "data_seed": 0}
    with pytest.raises(ValueError, match="unknown method 'lth'"):
        ticket_units(CONFIG, "/nowhere", methods=("lth",))
    with pytest.raises(ValueError, match="round 4 lies outside"):
        ticket_units(CONFIG, "/nowhere", rounds=(4,))


def test_instability_units_leave_only_the_interpolation(tmp_path):
    from lmc_toolkit.connectivity import instability_vs_k
    from lmc_toolkit.study import instability_sweep, instability_units

    store = Store(tmp_path)
    spawns, kids = instability_units(CONFIG, store, "dense", 0, [0, 3], pairs=1)
    assert [u.label for u in spawns] == ["spawn-dense-r0-k3"]  # k = 0 children are tickets
    assert len(kids) == 4 and kids[-1].config == {"method": "dense", "round": 0, "k": 3,
                                                  "data_seed": 1}  # fmt: skip
    with one_thread():
        assert instability_sweep(CONFIG, store, None, "dense", 0, [0, 3], progress=False).ok
    assert store.computations() == 1 + 4
    study = Study(CONFIG, store, device="cpu", progress=False)
    curve = instability_vs_k(
        study.model0, study.train_data, study.test_data, CONFIG.train, [0, 3],
        data_seeds=CONFIG.data_seeds[:2], store=store, alphas=3, progress=False,
    )  # fmt: skip
    assert store.computations() == 5 and len(curve.results) == 2
    with pytest.raises(ValueError, match="unknown method 'lth'"):
        instability_units(CONFIG, store, "lth", 1, [0])


def test_plane_tiles_assemble_to_the_whole_grid(tmp_path, digits_small):
    from lmc_toolkit.landscape import plane, random_direction
    from lmc_toolkit.models import build
    from lmc_toolkit.sweep import assemble_tiles, plane_tile_units

    net = build("mlp", 10, digits_small.in_shape, 0)
    d1, d2 = random_direction(net, 1), random_direction(net, 2)
    data = digits_small[:100]
    x, y = (-1.0, 1.0, 4), [-1.0, -0.5, 0.0, 0.5, 1.0]
    whole = plane(net, d1, d2, data, x, y, compile=False, progress=False)
    store = Store(tmp_path)
    units = plane_tile_units(net, d1, d2, data, x, y, store, rows=2)
    assert [u.config["rows"] for u in units] == [(0, 2), (2, 5)]  # no one-row tile
    assert run_units(units, progress=False).ok
    tiled = assemble_tiles(units, store)
    assert tiled.loss.shape == whole.loss.shape == (5, 4)
    assert (tiled.loss == whole.loss).all() and (tiled.accuracy == whole.accuracy).all()
    assert (tiled.y == whole.y).all() and tiled.meta["fingerprint"] == whole.meta["fingerprint"]
    before = store.computations()
    run_units(units, progress=False)
    assert store.computations() == before == 2


# -- a 2-worker Dask LocalCluster ----------------------------------------------------------------


@needs_dask
def test_a_dask_sweep_equals_the_in_process_run_and_reruns_as_store_hits(
    tmp_path, client, reference
):
    store = Store(tmp_path)
    report = study_sweep(CONFIG, store, client, methods=METHODS, progress=False)
    assert report.ok, report.format()
    assert report.labels[0] == "prune-imp" and len(report) == 1 + 9
    # IMP trains rounds 0-3 as tickets of data seed 0 (the same keys as those tickets), then
    # the 6 tickets of seeds 1 and 2: each once
    assert store.computations() == COMPUTED
    assert_same_tickets(store, reference)
    again = study_sweep(CONFIG, store, client, methods=METHODS, progress=False)
    assert again.ok and store.computations() == COMPUTED
    assert run_units(ticket_units(CONFIG, store, METHODS), None, progress=False).ok
    assert store.computations() == COMPUTED


@needs_dask
def test_a_failing_unit_is_reported_while_the_others_complete(tmp_path, client):
    units = ticket_units(CONFIG, tmp_path, methods=("dense",), data_seeds=(0, 1))
    units.insert(1, Unit("div", operator.truediv, (1, 0), {"numerator": 1}))
    report = run_units(units, client, progress=False, retries=1)
    assert [r is None for r in report.results] == [False, True, False]
    (f,) = report.failures
    assert f.label == "div" and f.config == {"numerator": 1}
    assert f.error_type == "ZeroDivisionError" and "ZeroDivisionError" in f.traceback
    with pytest.raises(SweepError, match="div"):
        report.raise_for_failures()
    assert Store(tmp_path).computations() == 2
    assert Path(report.results[0]["run"]).name.startswith("ticket-digits-convnet3")


@needs_dask
def test_a_killed_worker_still_completes_the_sweep(tmp_path, client, reference):
    # last in this file: the cluster does not wait for the worker its nanny restarts
    store = Store(tmp_path)
    pids = client.run(os.getpid)  # worker address -> pid
    killed, finished = [], threading.Event()

    def kill_one_mid_sweep() -> None:  # the worker running a unit, once 2 trainings are done
        while not finished.is_set():
            busy = [w for w, tasks in client.processing().items() if tasks]
            if store.computations() >= 2 and busy:
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(busy[0])
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_one_mid_sweep, daemon=True)
    killer.start()
    report = study_sweep(CONFIG, store, client, methods=METHODS, progress=False)
    finished.set()
    killer.join()
    assert killed and report.ok, report.format()
    assert COMPUTED <= store.computations() <= COMPUTED + 1  # the lost unit may count twice
    assert_no_partial_files(store)
    assert_same_tickets(store, reference)
