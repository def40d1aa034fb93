"""What every subcommand shares: the registry (`command`) and the training and store options."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from lmc_toolkit.cli.arguments import (
    device_name,
    key_value,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
)
from lmc_toolkit.cli.inputs import add_data_root

COMMANDS: dict[str, Any] = {}


def command(name: str, help: str):
    """Register `fn(args)` as subcommand `name`; `fn.configure(parser)` adds its options."""

    def add(fn):
        COMMANDS[name] = (fn, help)
        return fn

    return add


def model_options(pairs: Sequence[tuple[str, Any]]) -> tuple[tuple[str, Any], ...]:
    """`--option` pairs (parsed by `arguments.key_value`) as sorted (key, value) pairs."""
    return tuple(sorted(dict(pairs).items()))


def add_train_options(p: argparse.ArgumentParser) -> None:
    from lmc_toolkit.data.dataset import AUGMENTATIONS
    from lmc_toolkit.data.sources import known_datasets
    from lmc_toolkit.models import available
    from lmc_toolkit.training.config import OPTIMIZERS, TrainConfig

    d = TrainConfig()
    p.add_argument("--data", default="mnist", choices=known_datasets())
    p.add_argument("--model", default="convnet3", choices=available())
    p.add_argument(
        "--option",
        action="append",
        default=[],
        type=key_value,
        metavar="KEY=VALUE",
        help="model option (width=64, hidden=300,100)",
    )
    p.add_argument("--epochs", type=positive_float, default=d.epochs)
    p.add_argument("--steps", type=positive_int, default=None, help="train this many steps instead")
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size)
    p.add_argument("--optimizer", default=d.optimizer, choices=OPTIMIZERS)
    p.add_argument("--lr", type=positive_float, default=d.lr)
    p.add_argument("--weight-decay", type=nonnegative_float, default=d.weight_decay)
    p.add_argument("--milestones", type=nonnegative_float, nargs="*", default=list(d.milestones))
    p.add_argument("--augment", default=d.augment, choices=AUGMENTATIONS)
    p.add_argument("--init-seed", type=nonnegative_int, default=0)
    p.add_argument("--data-seed", type=nonnegative_int, default=0)
    add_data_root(p)


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=None, help="run store folder (default: $LMC_TOOLKIT_STORE)")
    p.add_argument(
        "--device", default=None, type=device_name, help="cpu, cuda, cuda:1 ... (default: auto)"
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def train_config_of(args: argparse.Namespace):
    """The `TrainConfig` of the options `add_train_options` added."""
    from lmc_toolkit.training.config import TrainConfig

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


def train_run_of(args: argparse.Namespace):
    from lmc_toolkit.training.runs import TrainRun

    return TrainRun(
        data=args.data,
        model=args.model,
        model_options=model_options(args.option),
        train=train_config_of(args),
        init_seed=args.init_seed,
        data_seed=args.data_seed,
    )
