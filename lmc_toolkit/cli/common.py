"""What every subcommand shares: the registry (`command`) and the training and store options."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

COMMANDS: dict[str, Any] = {}


def command(name: str, help: str):
    """Register `fn(args)` as subcommand `name`; `fn.configure(parser)` adds its options."""

    def add(fn):
        COMMANDS[name] = (fn, help)
        return fn

    return add


def model_options(pairs: Sequence[str]) -> tuple[tuple[str, Any], ...]:
    """Parse `--option width=64 --option hidden=300,100` into sorted (key, value) pairs."""
    out = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--option takes key=value, got {pair!r}")
        values = tuple(int(v) if v.lstrip("-").isdigit() else v for v in raw.split(","))
        out[key] = values if "," in raw else values[0]
    return tuple(sorted(out.items()))


def add_train_options(p: argparse.ArgumentParser) -> None:
    from lmc_toolkit.data.dataset import AUGMENTATIONS
    from lmc_toolkit.data.sources import known_datasets
    from lmc_toolkit.models import available
    from lmc_toolkit.training.config import OPTIMIZERS, TrainConfig

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


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=None, help="run store folder (default: $LMC_TOOLKIT_STORE)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: auto)")
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
