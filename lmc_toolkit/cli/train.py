"""`lmc-toolkit train`, `datasets` and `models`: one training, and the names it accepts."""

from __future__ import annotations

import argparse

from lmc_toolkit.cli.common import add_common, add_train_options, command, train_run_of


@command("train", "train a model on a dataset, print its test accuracy, save it in the store")
def cmd_train(args: argparse.Namespace) -> int:
    from lmc_toolkit.store.runs import Store
    from lmc_toolkit.training.runs import train_run

    run = train_run_of(args)
    store = Store(args.store)
    cached = store.run(run).has("result", ".pt")
    result = train_run(
        run, store, device=args.device, progress=not args.no_progress, root=args.data_root
    )
    _print_result(run, result, store, cached)
    return 0


def _configure_train(p: argparse.ArgumentParser) -> None:
    add_train_options(p)
    add_common(p)


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


@command("datasets", "list the dataset names")
def cmd_datasets(args: argparse.Namespace) -> int:
    from lmc_toolkit.data.sources import known_datasets

    print("\n".join(known_datasets()))
    return 0


@command("models", "list the model names")
def cmd_models(args: argparse.Namespace) -> int:
    from lmc_toolkit.models import available

    print("\n".join(available()))
    return 0
