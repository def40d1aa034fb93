"""`lmc-toolkit imp` (IMP or distilled pruning, a per-round table) and `lmc-toolkit tickets`
(train the masks of an IMP run, random masks and the dense network on real data)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lmc_toolkit.cli.arguments import nonnegative_int, open_fraction, positive_int
from lmc_toolkit.cli.common import (
    add_common,
    add_train_options,
    command,
    model_options,
    train_config_of,
)
from lmc_toolkit.cli.inputs import read_data


def _add_imp_options(p: argparse.ArgumentParser) -> None:
    from lmc_toolkit.pruning.imp_config import ImpConfig
    from lmc_toolkit.pruning.prune import SCOPES

    d = ImpConfig()
    p.add_argument(
        "--rounds", type=positive_int, default=d.rounds, help="pruning rounds (default 10)"
    )
    p.add_argument("--rate", type=open_fraction, default=d.rate, help="fraction pruned per round")
    p.add_argument("--scope", default=d.scope, choices=SCOPES)
    p.add_argument(
        "--rewind",
        default="init",
        metavar="init|K|lr|finetune",
        help="reset to θ0 (init), to step K of round 0, keep the weights and replay the "
        "schedule (lr), or fine-tune at the final rate (finetune)",
    )
    p.add_argument(
        "--prune-data",
        default="real",
        metavar="real|PATH",
        help="the inner loop's data: the real training set, or a saved synthetic set "
        "(Dataset.save) for distilled pruning",
    )
    p.add_argument("--keep-first", action="store_true", help="never prune the first layer")
    p.add_argument("--keep-last", action="store_true", help="never prune the classifier")


def _setup(args: argparse.Namespace):
    """Data, θ0, the ImpConfig and the pruning data the command line asks for."""
    from lmc_toolkit.data.dataset import Dataset
    from lmc_toolkit.models import build
    from lmc_toolkit.pruning.imp_config import ImpConfig, parse_rewind
    from lmc_toolkit.training.runs import default_device

    train_config = train_config_of(args)
    config = ImpConfig(
        rounds=args.rounds,
        rate=args.rate,
        scope=args.scope,
        rewind=parse_rewind(args.rewind),
        train=train_config,
        prune_first=not args.keep_first,
        prune_last=not args.keep_last,
    )
    device = args.device or default_device()
    prune_data = None
    if args.prune_data != "real":  # read (and refused, when bad) before the real data loads
        path = Path(args.prune_data)
        if not path.is_file():
            raise FileNotFoundError(f"--prune-data: no file {path} (give 'real' or a saved set)")
        prune_data = Dataset.load(path).to(device)
    train_data = read_data(args.data, "train", args.data_root).to(device)
    test_data = read_data(args.data, "test", args.data_root).to(device)
    model = build(
        args.model,
        train_data.num_classes,
        train_data.image_shape,
        args.init_seed,
        device,
        **dict(model_options(args.option)),
    )
    return model, train_data, test_data, prune_data, config


@command("imp", "iterative magnitude pruning (or distilled pruning); prints a per-round table")
def cmd_imp(args: argparse.Namespace) -> int:

    start = time.perf_counter()
    _, _, test_data, prune_data, config, store, result = _run_imp(args)
    source = "real data" if prune_data is None else f"{prune_data.name} ({len(prune_data)} images)"
    print(
        f"IMP of {args.model} on {args.data}, inner training on {source}, rewind "
        f"{config.rewind}, {config.rate:.0%} per round ({config.scope})"
    )
    print(result.format())
    print(f"accuracy: {test_data.name} test split; wall time {time.perf_counter() - start:.1f} s")
    print(f"rounds saved in {store.root / result.run}")
    return 0


def _run_imp(args: argparse.Namespace):
    """The IMP run the command line asks for (loaded from the store when it is there), with
    what it was run on."""
    from lmc_toolkit.pruning.imp_rounds import imp
    from lmc_toolkit.store.runs import Store

    model, train_data, test_data, prune_data, config = _setup(args)
    store = Store(args.store)
    result = imp(
        model,
        train_data,
        config,
        prune_data=prune_data,
        eval_data=test_data,
        data_seed=args.data_seed,
        store=store,
        progress=not args.no_progress,
    )
    return model, train_data, test_data, prune_data, config, store, result


def _configure_imp(p: argparse.ArgumentParser) -> None:
    add_train_options(p)
    _add_imp_options(p)
    add_common(p)


cmd_imp.configure = _configure_imp


@command("tickets", "train IMP's masks, random masks and the dense network; accuracy table")
def cmd_tickets(args: argparse.Namespace) -> int:
    from lmc_toolkit.pruning.prune import random
    from lmc_toolkit.pruning.tickets import evaluate_tickets

    model, train_data, test_data, prune_data, config, store, result = _run_imp(args)
    progress = not args.no_progress
    method = "imp" if prune_data is None else "distilled"
    masks = {
        "dense": None,
        method: list(result.masks[1:]),
        "random": [random(model, s, seed=args.init_seed) for s in result.sparsities[1:]],
    }
    table = evaluate_tickets(
        model,
        masks,
        train_data,
        test_data,
        config.train,
        data_seeds=tuple(args.data_seeds),
        store=store,
        progress=progress,
    )
    print(table.format())
    print(f"wall time {table.seconds:.1f} s; tickets stored in {store.root}")
    return 0


def _configure_tickets(p: argparse.ArgumentParser) -> None:
    _configure_imp(p)
    p.add_argument("--data-seeds", type=nonnegative_int, nargs="+", default=[0, 1])


cmd_tickets.configure = _configure_tickets
