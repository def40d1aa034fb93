"""Sweeps: hand out independent units of work, here or on a Dask cluster, and report on them.

A `Unit` is one independent computation (a training, a spawn point, a tile of a landscape
grid): a module-level function and picklable arguments. Units read their inputs from the run
store and write their results there (through `Store.cached`, which computes each result once
under a lock), so a unit that was done before is a store hit, and whoever runs the same
analysis later, in a notebook or on another machine, loads what the sweep computed.

`run_units(units, scheduler)` runs them:

- `None` or `"local"`: in this process, one after the other (the default: nothing to start);
- `"processes"` or `"processes:N"`: a local pool of N processes (default: one per CPU core),
  each with `cores // N` torch threads;
- a `dask.distributed.Client`, e.g. of a `LocalCluster`, a dask-jobqueue SLURM cluster or a
  Kubernetes one: the units become Dask tasks (`retries` re-runs a unit that raised or whose
  worker was lost; the dashboard at `client.dashboard_link` shows them);
- a scheduler address `"tcp://host:port"`: a client is connected for the sweep and closed.

The result is a `SweepReport`: every unit's return value in order, and the failures with their
configuration and traceback (a unit that raises does not stop the others). The study's units
(IMP runs, tickets, instability, landscape tiles) are made in `lmc_toolkit.study.units`; landscape tiles in `lmc_toolkit.sweep.tiles`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from lmc_toolkit.sweep.executors import run_dask, run_local, run_pool
from lmc_toolkit.sweep.progress import Progress
from lmc_toolkit.sweep.schedulers import connected, scheduler_kind
from lmc_toolkit.sweep.units import SweepReport, Unit


def run_units(
    units: Sequence[Unit],
    scheduler: Any = None,
    *,
    progress: bool = True,
    retries: int = 2,
    desc: str = "sweep",
) -> SweepReport:
    """Run every unit on `scheduler` (see the module docstring) and report on them.

    A unit that raises is reported (label, config, traceback) while the others go on; with a
    process pool or Dask it is first re-run up to `retries` times (a lost worker's units are
    re-run the same way). In this process a unit runs once: there is no worker to lose.

    Args:
        units: The units (independent: no unit waits for another).
        scheduler: None or "local" (this process), "processes:N", "cluster:N", a Dask `Client`
            or a scheduler's address.
        progress: Show a progress bar over the units.
        retries: Re-runs of a failed unit on a pool or cluster.
        desc: The progress bar's label.

    Returns:
        A `SweepReport`: per unit its result or its failure; `raise_for_failures()` raises a
        `SweepError` naming the failed ones.
    """
    kind, value = scheduler_kind(scheduler)
    units = list(units)
    bad = [u for u in units if not isinstance(u, Unit)]
    if bad:
        raise TypeError(f"units must be Unit objects, got {type(bad[0]).__name__}")
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise ValueError(f"retries must be an int ≥ 0, got {retries!r}")
    start = time.perf_counter()
    bar = Progress(len(units), desc, progress)
    try:
        if kind == "local":
            results, failures = run_local(units, bar)
            name = "local"
        elif kind == "processes":
            results, failures = run_pool(units, value, retries, bar)
            name = f"processes:{value}"
        else:
            with connected(value if kind == "address" else scheduler) as client:
                results, failures = run_dask(units, client, retries, bar)
                name = str(getattr(client.scheduler, "address", "dask"))
    finally:
        bar.close()
    order = {u.label: i for i, u in enumerate(units)}
    return SweepReport(
        labels=tuple(u.label for u in units),
        results=tuple(results),
        failures=tuple(sorted(failures, key=lambda f: order.get(f.label, 0))),
        seconds=time.perf_counter() - start,
        scheduler=name,
    )
