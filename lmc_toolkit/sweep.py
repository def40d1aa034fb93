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
(IMP runs, tickets, instability, landscape tiles) are made in `lmc_toolkit.sweep_units`.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from lmc_toolkit.lazy import lazy_exports

__all__ = [
    "SCHEDULERS",
    "SweepError",
    "SweepReport",
    "Unit",
    "UnitFailure",
    "connected",
    "local_cluster",
    "run_units",
    "scheduler_kind",
]

#: The unit factories, importable from here too (`from lmc_toolkit.sweep import study_sweep`).
_FACTORIES = {
    "imp_units": "sweep_units",
    "ticket_units": "sweep_units",
    "study_sweep": "sweep_units",
    "instability_units": "sweep_units",
    "instability_sweep": "sweep_units",
    "plane_tile_units": "sweep_tiles",
    "assemble_tiles": "sweep_tiles",
}


__getattr__ = lazy_exports(__name__, _FACTORIES)


#: What `scheduler` may be, as shown in error messages.
SCHEDULERS = (
    "None or 'local' (in this process), 'processes' or 'processes:N' (a local process pool), "
    "a dask.distributed.Client, or a scheduler address such as 'tcp://host:8786'"
)
_ADDRESS = re.compile(r"^(tcp|tls|ucx|ws|wss|inproc)://\S+$")


@dataclass(frozen=True)
class Unit:
    """One independent piece of work: `fn(*args)`. `fn` must be a module-level function and
    `args` picklable (they travel to other processes); `config` holds plain values that
    describe the unit in failure reports."""

    label: str
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label:
            raise ValueError(f"a unit's label must be a non-empty string, got {self.label!r}")
        if not callable(self.fn):
            raise TypeError(f"unit {self.label!r}: fn must be callable, got {self.fn!r}")
        if not isinstance(self.args, tuple):
            raise TypeError(f"unit {self.label!r}: args must be a tuple, got {self.args!r}")

    def __call__(self) -> Any:
        return self.fn(*self.args)

    @property
    def key(self) -> str:
        """The Dask task key: the label and a hash of the function and its arguments."""
        name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", self.label).strip("_") or "unit"
        return f"{name}-{_token(self.fn, self.args)}"


def _token(fn: Callable[..., Any], args: tuple[Any, ...]) -> str:
    from lmc_toolkit.store import _canonical

    what = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"
    try:
        payload = json.dumps([what, _canonical(list(args))], sort_keys=True).encode()
    except TypeError:  # tensors, datasets: hash their pickle
        payload = what.encode() + pickle.dumps(args, protocol=4)
    return hashlib.sha256(payload).hexdigest()[:16]


@dataclass(frozen=True)
class UnitFailure:
    """A unit that raised (after its retries): what it was and why it failed."""

    label: str
    config: Mapping[str, Any]
    error_type: str
    message: str
    traceback: str

    def format(self) -> str:
        config = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{self.label} ({config}): {self.error_type}: {self.message}"


def _failure(unit: Unit, exc: BaseException, tb: Any = None) -> UnitFailure:
    if tb is not None:
        text = "".join(traceback.format_tb(tb)) + f"{type(exc).__name__}: {exc}\n"
    else:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return UnitFailure(unit.label, dict(unit.config), type(exc).__name__, str(exc), text)


class SweepError(RuntimeError):
    """Some units of a sweep failed; `failures` lists them (label, config, traceback)."""

    def __init__(self, failures: Sequence[UnitFailure], total: int):
        self.failures = tuple(failures)
        lines = [f"{len(self.failures)} of {total} units failed:"]
        lines += [f"  - {f.format()}" for f in self.failures]
        if self.failures:
            lines += ["traceback of the first failure:", self.failures[0].traceback.rstrip()]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class SweepReport:
    """The outcome of a sweep: `results[i]` is what unit i returned (None if it failed)."""

    labels: tuple[str, ...]
    results: tuple[Any, ...]
    failures: tuple[UnitFailure, ...]
    seconds: float
    scheduler: str = "local"

    @property
    def ok(self) -> bool:
        return not self.failures

    def __len__(self) -> int:
        return len(self.labels)

    def result(self, label: str) -> Any:
        """The result of the unit called `label`."""
        if label not in self.labels:
            raise KeyError(f"no unit {label!r} in this sweep")
        return self.results[self.labels.index(label)]

    def raise_for_failures(self) -> SweepReport:
        """Raise `SweepError` listing every failed unit; return the report when none failed."""
        if self.failures:
            raise SweepError(self.failures, len(self.labels))
        return self

    def format(self) -> str:
        done = len(self.labels) - len(self.failures)
        lines = [
            f"{done} of {len(self.labels)} units done, {len(self.failures)} failed, "
            f"{self.seconds:.1f} s ({self.scheduler})"
        ]
        lines += [f"  failed: {f.format()}" for f in self.failures]
        return "\n".join(lines)

    @staticmethod
    def combine(*reports: SweepReport) -> SweepReport:
        """Several phases of one sweep as one report."""
        return SweepReport(
            labels=tuple(label for r in reports for label in r.labels),
            results=tuple(x for r in reports for x in r.results),
            failures=tuple(f for r in reports for f in r.failures),
            seconds=sum(r.seconds for r in reports),
            scheduler=reports[0].scheduler if reports else "local",
        )


# -- schedulers ------------------------------------------------------------------------------


def _is_client(value: Any) -> bool:
    return type(value).__name__ == "Client" and type(value).__module__.startswith("distributed")


def scheduler_kind(scheduler: Any) -> tuple[str, Any]:
    """Check `scheduler` (see `SCHEDULERS`) before any work: `("local", None)`,
    `("processes", n)`, `("client", client)` or `("address", address)`."""
    if scheduler is None or scheduler == "local":
        return "local", None
    if _is_client(scheduler):
        return "client", scheduler
    if isinstance(scheduler, str):
        if scheduler == "processes":
            return "processes", max(1, _cores())
        if scheduler.startswith("processes:"):
            n = scheduler.removeprefix("processes:")
            if n.isdigit() and int(n) >= 1:
                return "processes", int(n)
            raise ValueError(
                f"scheduler {scheduler!r}: the number of processes must be an int ≥ 1 "
                f"(e.g. 'processes:2'); allowed: {SCHEDULERS}"
            )
        if _ADDRESS.match(scheduler):
            return "address", scheduler
    raise ValueError(f"unknown scheduler {scheduler!r}; allowed: {SCHEDULERS}")


#: Dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536, which makes glibc hand memory
#: back after every large free: torch's training loops then slow down ~2x (measured here: a
#: 2-worker LocalCluster on 2 cores ran a ticket sweep at 0.82x the in-process speed with it,
#: 1.43x without it). Workers started through `local_cluster` keep glibc's default.
TORCH_FRIENDLY_DASK = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


def local_cluster(workers: int, threads: int | None = None, **options: Any) -> Any:
    """A `distributed.LocalCluster` of `workers` processes on 127.0.0.1 with `threads` threads
    each (default: cores // workers), set up for torch (see `TORCH_FRIENDLY_DASK`)."""
    import dask
    from distributed import LocalCluster

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int ≥ 1, got {workers!r}")
    threads = threads or max(1, _cores() // workers)
    with dask.config.set(TORCH_FRIENDLY_DASK):
        return LocalCluster(
            n_workers=workers, threads_per_worker=threads, processes=True,
            host=options.pop("host", "127.0.0.1"), **options,
        )  # fmt: skip


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def connected(scheduler: Any) -> Iterator[Any]:
    """`scheduler` with an address replaced by a connected `Client` (closed on exit), so that
    several phases of one sweep share one connection."""
    kind, value = scheduler_kind(scheduler)
    if kind != "address":
        yield scheduler
        return
    client = _client(value)
    try:
        yield client
    finally:
        client.close()


def _client(address: str) -> Any:
    try:
        from distributed import Client
    except ImportError as exc:
        raise ImportError(
            "a Dask scheduler needs dask.distributed: pip install 'lmc_toolkit[sweep]'"
        ) from exc
    return Client(address)


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
    """
    kind, value = scheduler_kind(scheduler)
    units = list(units)
    bad = [u for u in units if not isinstance(u, Unit)]
    if bad:
        raise TypeError(f"units must be Unit objects, got {type(bad[0]).__name__}")
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise ValueError(f"retries must be an int ≥ 0, got {retries!r}")
    start = time.perf_counter()
    bar = _Progress(len(units), desc, progress)
    try:
        if kind == "local":
            results, failures = _run_local(units, bar)
            name = "local"
        elif kind == "processes":
            from lmc_toolkit.sweep_executors import _run_pool

            results, failures = _run_pool(units, value, retries, bar)
            name = f"processes:{value}"
        else:
            from lmc_toolkit.sweep_executors import _run_dask

            with connected(value if kind == "address" else scheduler) as client:
                results, failures = _run_dask(units, client, retries, bar)
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


class _Progress:
    """A bar over units with `done`, `running` and `failed` counts."""

    def __init__(self, total: int, desc: str, enabled: bool):
        self.bar = tqdm(total=total, desc=desc, disable=not enabled, unit="unit")
        self.done = self.failed = self.running = 0
        self._shown = 0.0

    def update(
        self, *, done: int = 0, failed: int = 0, running: int | None = None, force: bool = False
    ):
        self.done += done
        self.failed += failed
        if running is not None:
            self.running = running
        self.bar.update(done + failed)
        now = time.monotonic()
        if force or now - self._shown > 0.2 or done + failed:
            self.bar.set_postfix(done=self.done, running=self.running, failed=self.failed)
            self._shown = now

    def close(self) -> None:
        self.bar.set_postfix(done=self.done, running=0, failed=self.failed)
        self.bar.close()


def _run_local(units: list[Unit], bar: _Progress) -> tuple[list[Any], list[UnitFailure]]:
    results: list[Any] = [None] * len(units)
    failures = []
    for i, unit in enumerate(units):
        bar.update(running=1, force=True)
        try:
            results[i] = unit()
        except Exception as exc:
            failures.append(_failure(unit, exc))
            bar.update(failed=1, running=0)
        else:
            bar.update(done=1, running=0)
    return results, failures
