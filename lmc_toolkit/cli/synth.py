"""`lmc-toolkit distill`: make a synthetic set, save it, and draw its images."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from lmc_toolkit.cli.arguments import nonnegative_int, output_file, positive_float, positive_int
from lmc_toolkit.cli.common import add_common, command
from lmc_toolkit.cli.inputs import add_data_root, read_data

if TYPE_CHECKING:
    from lmc_toolkit.data.dataset import Dataset
    from lmc_toolkit.store.runs import Store

METHODS = ("random", "herding", "dm", "gm")


@command("distill", "make a synthetic set (random, herding, dm, gm), save it and draw it")
def cmd_distill(args: argparse.Namespace) -> int:
    import torch

    from lmc_toolkit.store.runs import Store
    from lmc_toolkit.training.runs import default_device

    store = Store(args.store)
    device = torch.device(args.device) if args.device else default_device()
    data = read_data(args.data, "train", args.data_root).to(device)
    made = _make(args, data, store)
    out = Path(args.out) if args.out else _default_path(store, made, args)
    made.save(out)
    how = "loaded from the store" if store.computed == 0 else "made"
    print(f"{made.name}: {len(made)} images ({made.class_counts().tolist()} per class), {how}")
    if "seconds" in made.meta:
        print(f"distillation took {made.meta['seconds']:.1f} s")
    print(f"saved to {out}")
    if not args.no_figure:
        from lmc_toolkit.plots.synth import plot_synthetic

        figure = Path(args.figure) if args.figure else out.with_suffix(".html")
        plot_synthetic(made).write_html(figure, include_plotlyjs="directory")
        print(f"figure: {figure}")
    return 0


def _make(args: argparse.Namespace, data: Dataset, store: Store) -> Dataset:
    """The synthetic set `args.method` makes (or loads from `store`) from the real `data`."""
    from lmc_toolkit import synth

    options = {"width": args.width} if args.width else {}
    progress = not args.no_progress
    if args.method == "random":
        made = synth.random_subset(data, args.ipc, args.seed, store=store)
    elif args.method == "herding":
        made = synth.herding(
            data, args.ipc, seed=args.seed, model_options=options, store=store, progress=progress
        )
    elif args.method == "dm":
        made = synth.distribution_matching(
            data,
            args.ipc,
            args.iterations if args.iterations is not None else 1000,
            lr=args.lr if args.lr is not None else 1.0,
            real_batch=args.real_batch,
            init=args.init,
            augment=not args.no_augment,
            seed=args.seed,
            model_options=options,
            factor=args.factor,
            store=store,
            progress=progress,
        )
    else:
        made = synth.gradient_matching(
            data,
            args.ipc,
            outer_loops=args.outer_loops,
            inner_loops=args.inner_loops,
            iterations=args.iterations if args.iterations is not None else 100,
            lr=args.lr if args.lr is not None else 0.1,
            real_batch=args.real_batch,
            init=args.init,
            augment=not args.no_augment,
            distance=args.distance,
            factor=args.factor,
            seed=args.seed,
            model_options=options,
            store=store,
            progress=progress,
        )
    return made


def _default_path(store, made, args: argparse.Namespace) -> Path:
    name = f"{args.data}-{args.method}-ipc{args.ipc}-seed{args.seed}"
    if args.method in ("dm", "gm"):
        name += f"-it{made.meta['iterations']}"
    if args.factor != 1 and args.method in ("dm", "gm"):
        name += f"-f{args.factor}"
    return store.root / "synthetic" / f"{name}.pt"


def _configure(p: argparse.ArgumentParser) -> None:
    from lmc_toolkit.data.sources import known_datasets
    from lmc_toolkit.synth.gradient_matching import DISTANCES
    from lmc_toolkit.synth.matching import INITS

    p.add_argument("--data", default="mnist", choices=known_datasets())
    add_data_root(p)
    p.add_argument("--method", default="dm", choices=METHODS)
    p.add_argument("--ipc", type=positive_int, default=10, help="images per class (stored)")
    p.add_argument(
        "--iterations",
        type=nonnegative_int,
        default=None,
        help="dm: steps (1000); gm: networks (100)",
    )
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--width", type=positive_int, default=None, help="convnet3 width (default 128)")
    p.add_argument(
        "--lr", type=positive_float, default=None, help="image learning rate (dm 1.0, gm 0.1)"
    )
    p.add_argument(
        "--real-batch", type=positive_int, default=256, help="real images per class and step"
    )
    p.add_argument("--init", default="real", choices=INITS)
    p.add_argument("--no-augment", action="store_true", help="no siamese augmentation")
    p.add_argument("--factor", type=positive_int, default=1, help="multi-formation factor (dm, gm)")
    p.add_argument(
        "--outer-loops", type=positive_int, default=10, help="gm: matching steps per network"
    )
    p.add_argument(
        "--inner-loops", type=nonnegative_int, default=50, help="gm: network steps in between"
    )
    p.add_argument("--distance", default="cosine", choices=DISTANCES, help="gm distance")
    p.add_argument("--out", type=output_file, default=None, help="where to save the set (.pt)")
    p.add_argument("--figure", default=None, help="where to write the image grid (.html)")
    p.add_argument("--no-figure", action="store_true")
    add_common(p)


cmd_distill.configure = _configure
