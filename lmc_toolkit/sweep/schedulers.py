"""Where units run: the scheduler values `run_units` accepts, local Dask clusters set up for torch,
and connections to running Dask schedulers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: What `scheduler` may be, as shown in error messages.
SCHEDULERS = (
    "None or 'local' (in this process), 'processes' or 'processes:N' (a local process pool), "
    "a dask.distributed.Client, or a scheduler address such as 'tcp://host:8786'"
)


_ADDRESS = re.compile(r"^(tcp|tls|ucx|ws|wss|inproc)://\S+$")


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
            return "processes", max(1, cores())
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
    threads = threads or max(1, cores() // workers)
    with dask.config.set(TORCH_FRIENDLY_DASK):
        return LocalCluster(
            n_workers=workers, threads_per_worker=threads, processes=True,
            host=options.pop("host", "127.0.0.1"), **options,
        )  # fmt: skip


def cores() -> int:
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
