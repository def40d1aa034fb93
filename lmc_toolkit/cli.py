"""The `lmc-toolkit` command line: one subcommand per job, each a thin layer over the library."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import sys
from collections.abc import Iterator, Sequence
from typing import Any

COMMANDS: dict[str, Any] = {}


def command(name: str, help: str):
    """Register `fn(args)` as subcommand `name`; `fn.configure(parser)` adds its options."""

    def add(fn):
        COMMANDS[name] = (fn, help)
        return fn

    return add


def _model_options(pairs: Sequence[str]) -> tuple[tuple[str, Any], ...]:
    """Parse `--option width=64 --option hidden=300,100` into sorted (key, value) pairs."""
    out = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--option takes key=value, got {pair!r}")
        values = tuple(int(v) if v.lstrip("-").isdigit() else v for v in raw.split(","))
        out[key] = values if "," in raw else values[0]
    return tuple(sorted(out.items()))


def _add_train_options(p: argparse.ArgumentParser) -> None:
    from lmc_toolkit.data import AUGMENTATIONS, known_datasets
    from lmc_toolkit.models import available
    from lmc_toolkit.train import OPTIMIZERS, TrainConfig

    d = TrainConfig()
    p.add_argument("--data", default="mnist", choices=known_datasets())
    p.add_argument("--model", default="convnet3", choices=available())
    p.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="model option"
    )
    p.add_argument("--epochs", type=float, default=d.epochs)
    p.add_argument("--steps", type=int, default=None, help="train this many steps instead")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--optimizer", default=d.optimizer, choices=OPTIMIZERS)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--milestones", type=float, nargs="*", default=list(d.milestones))
    p.add_argument("--augment", default=d.augment, choices=AUGMENTATIONS)
    p.add_argument("--init-seed", type=int, default=0)
    p.add_argument("--data-seed", type=int, default=0)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=None, help="run store folder (default: $LMC_TOOLKIT_STORE)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: auto)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _train_config(args: argparse.Namespace):
    """The `TrainConfig` of the options `_add_train_options` added."""
    from lmc_toolkit.train import TrainConfig

    return TrainConfig(
        epochs=args.epochs,
        steps=args.steps,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        weight_decay=args.weight_decay,
        milestones=tuple(args.milestones),
        augment=args.augment,
    )


def _train_run(args: argparse.Namespace):
    from lmc_toolkit.train import TrainRun

    return TrainRun(
        data=args.data,
        model=args.model,
        model_options=_model_options(args.option),
        train=_train_config(args),
        init_seed=args.init_seed,
        data_seed=args.data_seed,
    )


@command("train", "train a model on a dataset, print its test accuracy, save it in the store")
def cmd_train(args: argparse.Namespace) -> int:
    from lmc_toolkit.store import Store
    from lmc_toolkit.train import train_run

    run = _train_run(args)
    store = Store(args.store)
    cached = store.run(run).has("result", ".pt")
    result = train_run(run, store, device=args.device, progress=not args.no_progress)
    _print_result(run, result, store, cached)
    return 0


def _configure_train(p: argparse.ArgumentParser) -> None:
    _add_train_options(p)
    _add_common(p)


cmd_train.configure = _configure_train


def _print_result(run, result, store, cached: bool) -> None:
    print(f"{run.model} on {run.data} ({'loaded from the store' if cached else 'trained'})")
    for h in result.history:
        held = "" if h.eval_accuracy is None else f"  test acc {h.eval_accuracy:.4f}"
        print(f"  epoch {h.epoch + 1:>3}  loss {h.loss:.4f}  train acc {h.accuracy:.4f}{held}")
    if result.final is not None:
        print(
            f"test accuracy {result.final.accuracy:.4f} (loss {result.final.loss:.4f}, "
            f"{result.final.n} images) after {result.steps} steps in {result.seconds:.1f} s"
        )
    print(f"run saved in {store.run(run).path}")


@command("reproduce", "the main job: run the figure notebooks into reports/<preset>/")
def cmd_reproduce(args: argparse.Namespace) -> int:
    from lmc_toolkit.figures import run_figures

    if args.store:
        os.environ["LMC_TOOLKIT_STORE"] = str(args.store)
    if args.device:
        os.environ["LMC_TOOLKIT_DEVICE"] = str(args.device)
    common: dict[str, Any] = {"progress": False}
    if args.data_root:
        common["data_root"] = str(args.data_root)
    cluster_workers = _cluster_workers(args.scheduler)
    if args.scheduler and cluster_workers is None:
        from lmc_toolkit.sweep import scheduler_kind

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
    from lmc_toolkit.sweep import local_cluster

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
    from lmc_toolkit.figures import PRESETS

    p.add_argument("--preset", default="cpu", choices=PRESETS, help="scale (default: cpu)")
    p.add_argument("--only", default=None, metavar="F2,F4", help="run only these figures")
    p.add_argument("--out", default="reports", help="report folder (default: reports/)")
    p.add_argument("--notebooks", default=None, help="notebook folder (default: the shipped one)")
    p.add_argument("--data-root", default=None, help="torchvision dataset folder (paper preset)")
    p.add_argument("--scheduler", default=None, metavar="WHERE", help=SCHEDULER_HELP)
    _add_common(p)


cmd_reproduce.configure = _configure_reproduce


@command("datasets", "list the dataset names")
def cmd_datasets(args: argparse.Namespace) -> int:
    from lmc_toolkit.data import known_datasets

    print("\n".join(known_datasets()))
    return 0


@command("models", "list the model names")
def cmd_models(args: argparse.Namespace) -> int:
    from lmc_toolkit.models import available

    print("\n".join(available()))
    return 0


def _load_command_modules() -> None:
    """Import every module of `lmc_toolkit.commands`: each registers its subcommands."""
    from lmc_toolkit import commands

    for info in pkgutil.iter_modules(commands.__path__):
        importlib.import_module(f"{commands.__name__}.{info.name}")


def parser() -> argparse.ArgumentParser:
    _load_command_modules()
    p = argparse.ArgumentParser(
        prog="lmc-toolkit",
        description="Linear mode connectivity, landscapes, Hessians and lottery tickets.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, (fn, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        configure = getattr(fn, "configure", None)
        if configure:
            configure(sp)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if not args.command:
        p.print_help()
        return 1
    try:
        return COMMANDS[args.command][0](args)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"lmc-toolkit {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
