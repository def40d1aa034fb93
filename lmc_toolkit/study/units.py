"""The study's independent trainings as sweep units (see `lmc_toolkit.sweep`).

Every unit rebuilds `Study(config, store, device)` on its worker and calls the same library
functions as the in-process path, so its results land under the same store keys: a later
`Study(config, store)` in a notebook loads them instead of training.

- `imp_units`: IMP on real data and distilled pruning per synthetic source (one unit each;
  the synthetic set is made inside its distilled unit, through the store);
- `ticket_units`: one unit per (method, round, data seed), the dense network once per seed
  (= `Study.trained`); they need the masks, so `study_sweep` runs the IMP units first;
- `instability_units` / `instability_sweep`: the spawn points (one unit per k > 0), then the
  children (one per k and child seed), under `instability()`'s keys;
- `plane_tile_units` / `assemble_tiles` (in `lmc_toolkit.sweep.tiles`): a landscape grid split into tiles.

The store must be a path every worker can reach (a shared filesystem for a cluster of several
machines). `device=None` lets each worker choose its default (CUDA when it has a GPU, as
`Study` does); results land under the same keys whatever the device.

Example (a local cluster of 2 worker processes; any `Client` or `"tcp://host:port"` works; in
a script, under `if __name__ == "__main__":`)::

    from dask.distributed import Client, LocalCluster
    from lmc_toolkit.study import Study, study_config, study_sweep

    config = study_config("smoke")
    with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster) as client:
        print(client.dashboard_link)
        study_sweep(config, "store", client).raise_for_failures()
    Study(config, "store").tickets()  # every ticket is a store hit
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmc_toolkit.store.locks import RunLock
from lmc_toolkit.store.naming import run_name
from lmc_toolkit.store.runs import Store
from lmc_toolkit.study.presets import StudyConfig
from lmc_toolkit.study.runs import Study
from lmc_toolkit.sweep.runner import run_units
from lmc_toolkit.sweep.schedulers import connected
from lmc_toolkit.sweep.units import SweepReport, Unit, UnitFailure

__all__ = [
    "imp_units",
    "instability_sweep",
    "instability_units",
    "study_sweep",
    "ticket_units",
]


@dataclass(frozen=True)
class UnitContext:
    """What every unit of a sweep shares, as workers receive it: the study's config, the
    store's absolute path (a worker's working folder may differ) and lock timeout, the device."""

    config: StudyConfig
    store_path: str
    lock_stale: float
    device: Any = None

    @staticmethod
    def of(config: StudyConfig, store: Store | str | Path | None, device: Any) -> UnitContext:
        s = store if isinstance(store, Store) else Store(store)
        return UnitContext(config, os.path.abspath(s.root), s.lock_stale, device)

    def study(self) -> Study:
        """The study of a unit, kept per process (`_study`): the units a worker runs one after
        the other load the data and build θ0 once."""
        return _study(self)


@dataclass(frozen=True)
class SpawnPoint:
    """Where an instability unit's copies come from: the mask of `method` at `round`, spawned
    at step `k` of the run with data seed `spawn_seed`."""

    method: str
    round: int
    k: int
    spawn_seed: int


@functools.lru_cache(maxsize=4)
def _study(ctx: UnitContext) -> Study:
    store = Store(ctx.store_path, lock_stale=ctx.lock_stale)
    return Study(ctx.config, store, device=ctx.device, progress=False)


def _check_config(config: Any) -> None:
    if not isinstance(config, StudyConfig):
        raise TypeError(f"config must be a StudyConfig, got {type(config).__name__}")


def _pruning_run(study: Study, method: str):
    """`study.run_of(method)` under a lock, so that two units never train the same IMP run."""
    token = hashlib.sha256(
        json.dumps([run_name(study.config), method], sort_keys=True).encode()
    ).hexdigest()[:16]
    lock = RunLock(study.store.root / ".locks" / f"pruning-{token}.lock", study.store.lock_stale)
    lock.acquire()
    try:
        return study.run_of(method)
    finally:
        lock.release()


def _mask(study: Study, method: str, level: int):
    """The mask `Study.trained(method, level, ·)` trains, computing only `method`'s run."""
    from lmc_toolkit.pruning.prune import random as random_mask

    c = study.config
    if method == "dense":
        return None
    if method == "random":
        return random_mask(study.model0, c.sparsity(level), seed=c.init_seed) if level else None
    return _pruning_run(study, method).rounds[level].mask


# -- IMP and distilled pruning ---------------------------------------------------------------


def _imp_unit(ctx: UnitContext, method: str) -> dict:
    study = ctx.study()
    result = _pruning_run(study, method)
    return {"method": method, "rounds": len(result.rounds) - 1}


def imp_units(
    config: StudyConfig,
    store: Store | str | Path | None = None,
    methods: Sequence[str] | None = None,
    device: Any = None,
) -> list[Unit]:
    """One unit per pruning run: "imp" and each "distilled-<source>" of `config` (or those of
    `methods` among them)."""
    _check_config(config)
    pruned = [m for m in config.methods if m not in ("dense", "random")]
    chosen = pruned if methods is None else [m for m in methods if m in pruned]
    unknown = [m for m in methods or () if m not in config.methods]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r}; methods: {config.methods}")
    ctx = UnitContext.of(config, store, device)
    return [
        Unit(f"prune-{m}", _imp_unit, (ctx, m), {"method": m, "rounds": config.rounds})
        for m in chosen
    ]


# -- tickets ----------------------------------------------------------------------------------


def _ticket_unit(ctx: UnitContext, method: str, level: int, data_seed: int) -> dict:
    from lmc_toolkit.pruning.tickets import ticket_key, train_ticket

    study, train = ctx.study(), ctx.config.train
    mask = _mask(study, method, level)
    result = train_ticket(
        study.model0, mask, study.train_data, train, data_seed, store=study.store, progress=False
    )
    key = ticket_key(study.model0, mask, study.train_data, train, data_seed)
    final = None if result.final is None else result.final.accuracy
    return {
        "method": method,
        "round": level,
        "data_seed": data_seed,
        "run": run_name(key),
        "train_accuracy": final,
    }


def ticket_units(
    config: StudyConfig,
    store: Store | str | Path | None = None,
    methods: Sequence[str] | None = None,
    rounds: Sequence[int] | None = None,
    data_seeds: Sequence[int] | None = None,
    device: Any = None,
) -> list[Unit]:
    """One unit per trained ticket (`Study.trained(method, round, data_seed)`): every method
    (default `config.methods`) at every round (default `config.ticket_rounds`) for every data
    seed (default `config.data_seeds`); the dense network once per seed (round 0)."""
    _check_config(config)
    methods = tuple(config.methods if methods is None else methods)
    rounds = tuple(config.ticket_rounds if rounds is None else rounds)
    seeds = tuple(config.data_seeds if data_seeds is None else data_seeds)
    unknown = [m for m in methods if m not in config.methods]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r}; methods: {config.methods}")
    wrong = [r for r in rounds if not (isinstance(r, int) and 0 <= r <= config.rounds)]
    if wrong:
        raise ValueError(f"round {wrong[0]!r} lies outside the IMP run (0 to {config.rounds})")
    if any(isinstance(s, bool) or not isinstance(s, int) for s in seeds):
        raise ValueError(f"data_seeds must be ints, got {seeds!r}")
    ctx = UnitContext.of(config, store, device)
    units = []
    for method in methods:
        for r in (0,) if method == "dense" else rounds:
            for s in seeds:
                sparsity = round(config.sparsity(r), 4)
                cfg = {"method": method, "round": r, "sparsity": sparsity, "data_seed": s}
                label = f"ticket-{method}-r{r}-s{s}"
                units.append(Unit(label, _ticket_unit, (ctx, method, r, s), cfg))
    return units


def _then(
    units: list[Unit],
    field: str,
    failed: set,
    scheduler: Any,
    progress: bool,
    retries: int,
    desc: str,
) -> SweepReport:
    """Run the units of a second phase; those whose `config[field]` is in `failed` (their first
    phase failed) are reported as failed ("Skipped") without running."""
    todo = [u for u in units if u.config[field] not in failed]
    report = run_units(todo, scheduler, progress=progress, retries=retries, desc=desc)
    skipped = [
        UnitFailure(u.label, dict(u.config), "Skipped",
                    f"its first phase failed for {field}={u.config[field]!r}", "")
        for u in units if u.config[field] in failed
    ]  # fmt: skip
    if not skipped:
        return report
    return SweepReport(
        report.labels + tuple(f.label for f in skipped),
        report.results + (None,) * len(skipped),
        report.failures + tuple(skipped),
        report.seconds,
        report.scheduler,
    )


def study_sweep(
    config: StudyConfig,
    store: Store | str | Path | None = None,
    scheduler: Any = None,
    *,
    methods: Sequence[str] | None = None,
    rounds: Sequence[int] | None = None,
    data_seeds: Sequence[int] | None = None,
    device: Any = None,
    progress: bool = True,
    retries: int = 2,
) -> SweepReport:
    """The study's trainings as a sweep: the pruning runs first, then every ticket (figure F1's
    table and what the other figures analyse). Tickets of a method whose pruning run failed
    are reported as failed without running.

    Args:
        config: The study's configuration.
        store: The run store every worker reaches (its path).
        scheduler: Where the units run (`run_units`' values; None: this process).
        methods: The methods whose runs and tickets are trained (default: the config's).
        rounds: The ticket rounds (default: `config.ticket_rounds`).
        data_seeds: The tickets' data seeds (default: the config's).
        device: Where each worker trains (None: its own default).
        progress: Show the sweep's progress.
        retries: Re-runs of a failed unit on a pool or cluster.

    Returns:
        The `SweepReport`: each unit's result or failure.
    """
    pruning = imp_units(config, store, methods, device)
    tickets = ticket_units(config, store, methods, rounds, data_seeds, device)
    with connected(scheduler) as sched:
        first = run_units(pruning, sched, progress=progress, retries=retries, desc="pruning")
        failed = {f.config["method"] for f in first.failures}
        second = _then(tickets, "method", failed, sched, progress, retries, "tickets")
    return SweepReport.combine(first, second)


# -- instability --------------------------------------------------------------------------------


def _instability_inputs(study: Study, point: SpawnPoint):
    from lmc_toolkit.connectivity.spawning import spawn_run

    mask = _mask(study, point.method, point.round)
    train = study.config.train
    key = spawn_run(study.model0, study.train_data, train, point.k, point.spawn_seed, mask)
    return mask, key


def _spawn_unit(ctx: UnitContext, point: SpawnPoint) -> dict:
    from lmc_toolkit.connectivity.spawning import train_spawn

    study = ctx.study()
    mask, key = _instability_inputs(study, point)
    train_spawn(study.model0, study.train_data, ctx.config.train, key, mask, study.store, False)
    return {"k": point.k, "run": run_name(key)}


def _child_unit(ctx: UnitContext, point: SpawnPoint, seed: int) -> dict:
    from lmc_toolkit.connectivity.spawning import ChildRun, train_child, train_spawn
    from lmc_toolkit.pruning.tickets import ticket_key, train_ticket

    study = ctx.study()
    mask, key = _instability_inputs(study, point)
    data, store, train = study.train_data, study.store, ctx.config.train
    if point.k == 0:  # copies spawned at init are the tickets (as `instability()` stores them)
        train_ticket(study.model0, mask, data, train, seed, store=store, progress=False)
        name = run_name(ticket_key(study.model0, mask, data, train, seed))
        return {"k": 0, "data_seed": seed, "run": name}
    spawn = train_spawn(study.model0, data, train, key, mask, store, False)
    child = ChildRun(key, seed)
    train_child(study.model0, data, spawn, child, mask, store, False)
    return {"k": point.k, "data_seed": seed, "run": run_name(child)}


def instability_units(
    config: StudyConfig,
    store: Store | str | Path | None,
    method: str,
    level: int,
    ks: Sequence[int],
    pairs: int = 1,
    data_seeds: Sequence[int] | None = None,
    device: Any = None,
) -> tuple[list[Unit], list[Unit]]:
    """The trainings of `instability_vs_k(study.model0, study.train_data, ·, config.train, ks,
    mask=study.mask(method, level), data_seeds, pairs, store)` (data seeds default to the
    first two of the config, as in figure F3): spawn units (one per k), then child units (one
    per k and child seed; at k = 0 the children are the tickets). Run the first list before
    the second (`instability_sweep`)."""
    from lmc_toolkit.connectivity.spawning import child_seeds

    _check_config(config)
    if method not in config.methods:
        raise ValueError(f"unknown method {method!r}; methods: {config.methods}")
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 0:
        raise ValueError(f"ks must be spawn steps ≥ 0, got {ks!r}")
    seeds = tuple(config.data_seeds[:2] if data_seeds is None else data_seeds)
    children = [s for pair in child_seeds(seeds, pairs) for s in pair]
    ctx, s0 = UnitContext.of(config, store, device), int(seeds[0])
    base = {"method": method, "round": level}
    points = {k: SpawnPoint(method, level, k, s0) for k in ks}
    spawns = [
        Unit(
            f"spawn-{method}-r{level}-k{k}",
            _spawn_unit,
            (ctx, points[k]),
            {**base, "k": k, "spawn_seed": s0},
        )
        for k in ks
        if k > 0  # at k = 0 the children start from θ0 itself
    ]
    kids = [
        Unit(
            f"child-{method}-r{level}-k{k}-s{s}",
            _child_unit,
            (ctx, points[k], s),
            {**base, "k": k, "data_seed": s},
        )
        for k in ks
        for s in children
    ]
    return spawns, kids


def instability_sweep(
    config: StudyConfig,
    store: Store | str | Path | None,
    scheduler: Any,
    method: str,
    level: int,
    ks: Sequence[int],
    pairs: int = 1,
    data_seeds: Sequence[int] | None = None,
    *,
    device: Any = None,
    progress: bool = True,
    retries: int = 2,
) -> SweepReport:
    """`instability_units` in two phases (spawn points, then children); `instability_vs_k`
    afterwards only interpolates.

    Args:
        config: The study's configuration.
        store: The run store every worker reaches (its path).
        scheduler: Where the units run (`run_units`' values).
        method: The pruning method whose mask is analysed (or "dense").
        level: The IMP round whose mask is used.
        ks: The spawn steps.
        pairs: Disjoint pairs of children per spawn step.
        data_seeds: The spawn run's and the children's data seeds (default: the config's first
            two).
        device: Where each worker trains (None: its own default).
        progress: Show the sweep's progress.
        retries: Re-runs of a failed unit on a pool or cluster.

    Returns:
        The `SweepReport` of both phases.
    """
    spawns, kids = instability_units(config, store, method, level, ks, pairs, data_seeds, device)
    with connected(scheduler) as sched:
        first = run_units(spawns, sched, progress=progress, retries=retries, desc="spawn points")
        bad = {f.config["k"] for f in first.failures}
        second = _then(kids, "k", bad, sched, progress, retries, "children")
    return SweepReport.combine(first, second)
