"""`lmc-toolkit reproduce`: the main job, every figure notebook into reports/<preset>/."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from typing import Any

from lmc_toolkit.cli.common import add_common, command


@command("reproduce", "the main job: run the figure notebooks into reports/<preset>/")
def cmd_reproduce(args: argparse.Namespace) -> int:
    from lmc_toolkit.study.figures.pipeline import run_figures

    if args.store:
        os.environ["LMC_TOOLKIT_STORE"] = str(args.store)
    if args.device:
        os.environ["LMC_TOOLKIT_DEVICE"] = str(args.device)
    common: dict[str, Any] = {"progress": False}
    if args.data_root:
        common["data_root"] = str(args.data_root)
    if args.scale:
        common["scale"] = args.scale
    cluster_workers = _cluster_workers(args.scheduler)
    if args.scheduler and cluster_workers is None:
        from lmc_toolkit.sweep.schedulers import scheduler_kind

        scheduler_kind(args.scheduler)  # refused here, before any work, when it is bad
        common["scheduler"] = args.scheduler
    with contextlib.ExitStack() as stack:
        if cluster_workers is not None:
            cluster = stack.enter_context(_local_cluster(cluster_workers))
            common["scheduler"] = cluster.scheduler_address
        report = run_figures(
            args.preset,
            args.only,
            args.out,
            notebooks=args.notebooks,
            progress=not args.no_progress,
            common=common,
        )
    for s in report.statuses:
        state = "ok" if s.ok else f"FAILED: {s.error}"
        print(f"{s.figure}  {s.title:<55} {s.seconds:7.1f} s  {state}")
    print(f"report: {report.index}")
    return 1 if report.failed else 0


def _cluster_workers(scheduler: str | None) -> int | None:
    """N for `--scheduler cluster:N` (a local Dask cluster started here), else None."""
    if not scheduler or not scheduler.startswith("cluster"):
        return None
    n = scheduler.removeprefix("cluster").removeprefix(":") or str(os.cpu_count() or 1)
    if not n.isdigit() or int(n) < 1:
        raise ValueError(f"--scheduler {scheduler!r}: use cluster:N with N ≥ 1 worker processes")
    return int(n)


@contextlib.contextmanager
def _local_cluster(workers: int) -> Iterator[Any]:
    """A Dask LocalCluster of `workers` processes on 127.0.0.1 (its dashboard link printed),
    shut down afterwards."""
    from lmc_toolkit.sweep.schedulers import local_cluster

    threads = max(1, (os.cpu_count() or 1) // workers)
    with local_cluster(workers, threads) as cluster:
        print(f"dask cluster: {workers} workers × {threads} threads at {cluster.scheduler_address}")
        print(f"dashboard: {cluster.dashboard_link}")
        yield cluster


SCHEDULER_HELP = (
    "where the trainings run: omitted = in each notebook's process; processes:N = a local "
    "process pool; cluster:N = a local Dask cluster of N workers started for this run (with a "
    "dashboard); tcp://host:8786 = a running Dask scheduler"
)


def _configure_reproduce(p: argparse.ArgumentParser) -> None:
    from lmc_toolkit.study.figures.parameters import PRESETS
    from lmc_toolkit.study.presets import SCALES

    p.add_argument(
        "--preset", default="cpu", choices=PRESETS, help="the study's settings (default: cpu)"
    )
    p.add_argument("--only", default=None, metavar="F2,F4", help="run only these figures")
    p.add_argument("--out", default="reports", help="report folder (default: reports/)")
    p.add_argument("--notebooks", default=None, help="notebook folder (default: the shipped one)")
    p.add_argument("--data-root", default=None, help="torchvision dataset folder (paper preset)")
    p.add_argument(
        "--scale",
        default=None,
        choices=SCALES,
        help="run the preset's data and model on another schedule: 'smoke' (epochs, rounds and "
        "distillation of the smoke preset; into reports/<preset>-smoke/), a quick end-to-end check",
    )
    p.add_argument("--scheduler", default=None, metavar="WHERE", help=SCHEDULER_HELP)
    add_common(p)


cmd_reproduce.configure = _configure_reproduce
