"""The same sweep in this process and on a 2-worker Dask LocalCluster: speedup and overhead.

    python benchmarks/sweep_dask.py [--units 8] [--epochs 3] [--width 8] [--trivial 50]

The sweep is `--units` dense ticket trainings of a small `convnet3` on the digits (one per data
seed, a few seconds each), run through `lmc_toolkit.sweep.run_units`: in this process (torch's
default threads: every core) and on `LocalCluster(n_workers=2, threads_per_worker=1)`, each on
a fresh temporary store. The cluster is started and its workers have imported the library
and trained once (other seeds, another store) before the timing; the start-up is reported on
its own. The overhead per unit is the time of
`--trivial` units that do nothing (`operator.add`) on the cluster, divided by their number.
"""

from __future__ import annotations

import argparse
import importlib
import json
import operator
import os
import tempfile
import time

import torch

from lmc_toolkit.store import Store, safe_torch_load
from lmc_toolkit.study import StudyConfig, ticket_units
from lmc_toolkit.sweep import Unit, run_units
from lmc_toolkit.training import TrainConfig


def config(args: argparse.Namespace) -> StudyConfig:
    return StudyConfig(
        dataset="digits",
        model_options=(("width", args.width), ("depth", 2)),
        train=TrainConfig(epochs=args.epochs, lr=0.05, batch_size=32),
        rounds=1,
        ticket_rounds=(1,),
        synthetic=(),
        data_seeds=tuple(range(args.units)),
    )


def _warm() -> None:
    """The imports a worker needs before its first unit (seconds, paid once per process)."""
    for module in ("torch._dynamo", "lmc_toolkit.study.units"):
        importlib.import_module(module)


def training_seconds(store: Store) -> float:
    """The summed `TrainResult.seconds` of the stored tickets: the time spent training inside
    the units, as each unit measured it."""
    return sum(float(safe_torch_load(p)["seconds"]) for p in store.root.glob("ticket-*/result.pt"))


def timed_sweep(units_of, scheduler) -> tuple[float, Store]:
    store = Store(tempfile.mkdtemp(prefix="sweep-bench-"))
    units = units_of(store)
    start = time.perf_counter()
    report = run_units(units, scheduler, progress=False)
    seconds = time.perf_counter() - start
    report.raise_for_failures()
    return seconds, store


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--units", type=int, default=8, help="ticket trainings in the sweep")
    p.add_argument("--epochs", type=float, default=3)
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    p.add_argument("--trivial", type=int, default=50, help="units for the overhead")
    p.add_argument("--json", default=None)
    args = p.parse_args()

    from distributed import Client

    from lmc_toolkit.sweep import local_cluster

    cfg = config(args)

    def tickets(store: Store) -> list[Unit]:
        return ticket_units(cfg, store, methods=("dense",), device="cpu")

    def warm_up(store: Store) -> list[Unit]:  # one training per process, other seeds
        seeds = (1000, 1001)
        return ticket_units(cfg, store, methods=("dense",), data_seeds=seeds, device="cpu")

    trivial = [Unit(f"add-{i}", operator.add, (i, 1)) for i in range(args.trivial)]
    rows = []
    _warm()  # both sides start with the imports and a first training done
    timed_sweep(warm_up, None)
    in_process, store = timed_sweep(tickets, None)
    rows.append(("in process", torch.get_num_threads(), in_process, training_seconds(store)))
    local_trivial = run_units(trivial, None, progress=False).seconds

    start = time.perf_counter()
    cluster = local_cluster(args.workers, 1, dashboard_address=None)
    client = Client(cluster)
    client.run(_warm)
    startup = time.perf_counter() - start
    timed_sweep(warm_up, client)
    try:
        on_cluster, store = timed_sweep(tickets, client)
        rows.append((f"LocalCluster {args.workers}x1", 1, on_cluster, training_seconds(store)))
        dask_trivial = run_units(trivial, client, progress=False).seconds
    finally:
        client.close()
        cluster.close()

    print(f"{args.units} dense ticket trainings (digits, convnet3 width {args.width}, depth 2, "
          f"{args.epochs:g} epochs); os.cpu_count() = {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"| {'where':<18} | threads/process | {'wall s':>7} | {'wall s/unit':>11} "
          f"| training s/unit (in the unit) |")  # fmt: skip
    print(f"|{'-' * 20}|-----------------|{'-' * 9}|{'-' * 13}|{'-' * 31}|")
    for name, threads, seconds, inside in rows:
        print(f"| {name:<18} | {threads:>15} | {seconds:>7.2f} | {seconds / args.units:>11.2f} "
              f"| {inside / args.units:>29.2f} |")  # fmt: skip
    speedup = in_process / on_cluster
    per_unit = dask_trivial / args.trivial
    print(
        f"speedup of the cluster: {speedup:.2f}x; cluster start-up (with imports): {startup:.1f} s"
    )
    print(f"overhead per unit: {1e3 * per_unit:.1f} ms on the cluster ({args.trivial} trivial "
          f"units in {dask_trivial:.2f} s), {1e3 * local_trivial / args.trivial:.2f} ms in process")  # fmt: skip
    if args.json:
        record = {
            "units": args.units,
            "in_process_s": in_process,
            "cluster_s": on_cluster,
            "speedup": speedup,
            "startup_s": startup,
            "overhead_per_unit_s": per_unit,
            "load_average": os.getloadavg()[0],
        }
        with open(args.json, "w") as f:
            json.dump(record, f, indent=2)


if __name__ == "__main__":
    main()
