"""How `run_units` runs units: in this process, in a local process pool, and on Dask."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from typing import Any

from lmc_toolkit.sweep.progress import Progress
from lmc_toolkit.sweep.schedulers import cores
from lmc_toolkit.sweep.units import Unit, UnitFailure, failure

# -- in this process --------------------------------------------------------------------------


def run_local(units: list[Unit], bar: Progress) -> tuple[list[Any], list[UnitFailure]]:
    results: list[Any] = [None] * len(units)
    failures = []
    for i, unit in enumerate(units):
        bar.update(running=1, force=True)
        try:
            results[i] = unit()
        except Exception as exc:
            failures.append(failure(unit, exc))
            bar.update(failed=1, running=0)
        else:
            bar.update(done=1, running=0)
    return results, failures


# -- a local process pool --------------------------------------------------------------------


def _pool_init(threads: int) -> None:
    """Each pool process gets `threads` torch threads (torch reads the variable on import)."""
    import sys

    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _pool(n: int) -> cf.ProcessPoolExecutor:
    threads = max(1, cores() // n)
    return cf.ProcessPoolExecutor(
        max_workers=n,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_pool_init,
        initargs=(threads,),
    )


def run_pool(
    units: list[Unit], n: int, retries: int, bar: Progress
) -> tuple[list[Any], list[UnitFailure]]:
    results: list[Any] = [None] * len(units)
    failures: list[UnitFailure] = []
    tries = [0] * len(units)
    pool = _pool(n)
    pending: dict[cf.Future, int] = {}

    def submit(i: int) -> None:
        tries[i] += 1
        pending[pool.submit(units[i].fn, *units[i].args)] = i

    try:
        for i in range(len(units)):
            submit(i)
        while pending:
            running = sum(1 for f in pending if f.running())
            bar.update(running=min(running, n))
            finished, _ = cf.wait(pending, timeout=1.0, return_when=cf.FIRST_COMPLETED)
            broken, retry = False, []
            for fut in finished:
                i = pending.pop(fut)
                exc = fut.exception()
                if exc is None:
                    results[i] = fut.result()
                    bar.update(done=1)
                    continue
                broken |= isinstance(exc, cf.process.BrokenProcessPool)
                if tries[i] <= retries:
                    retry.append(i)
                else:
                    failures.append(failure(units[i], exc))
                    bar.update(failed=1)
            if broken:  # a worker process died: the pool and every unit pending in it are lost
                retry += list(pending.values())
                pending.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = _pool(n)
            for i in retry:
                submit(i)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results, failures


# -- Dask --------------------------------------------------------------------------------------


def _run_on_worker(unit: Unit) -> Any:
    """Run `unit` on a Dask worker with as many torch threads as the worker has threads."""
    import torch

    try:
        from distributed import get_worker

        worker = get_worker()
        threads = getattr(worker, "nthreads", None) or worker.state.nthreads
    except Exception:  # not on a worker (e.g. a synchronous client)
        threads = None
    if threads and torch.get_num_threads() != threads:
        torch.set_num_threads(int(threads))
    return unit()


def run_dask(
    units: list[Unit], client: Any, retries: int, bar: Progress
) -> tuple[list[Any], list[UnitFailure]]:
    from distributed import as_completed

    results: list[Any] = [None] * len(units)
    failures = []
    futures = [
        client.submit(_run_on_worker, u, key=u.key, retries=retries, pure=False) for u in units
    ]
    where: dict[str, list[int]] = {}
    for i, f in enumerate(futures):
        where.setdefault(f.key, []).append(i)
    waiting = set(where)
    seen: set[int] = set()
    for fut in as_completed(futures):
        i = next(j for j in where[fut.key] if j not in seen)
        seen.add(i)
        waiting.discard(fut.key)
        if fut.status == "finished":
            results[i] = fut.result()
            bar.update(done=1, running=_processing(client, waiting))
        else:
            try:
                exc, tb = fut.exception(), fut.traceback()
            except Exception as lost:  # cancelled (e.g. the client lost its scheduler)
                exc, tb = lost, None
            failures.append(failure(units[i], exc, tb))
            bar.update(failed=1, running=_processing(client, waiting))
    for f in futures:
        f.release()
    return results, failures


def _processing(client: Any, keys: set[Any]) -> int:
    """How many of `keys` run on a worker now."""
    if not keys:
        return 0
    try:
        on_workers = client.processing()
    except Exception:
        return 0
    return sum(1 for tasks in on_workers.values() for k in tasks if k in keys)
