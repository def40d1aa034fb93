"""`lmc-toolkit instability` and `lmc-toolkit landscape`: thin layers over the library."""

from __future__ import annotations

import argparse

from lmc_toolkit.cli.arguments import (
    int_at_least,
    nonnegative_int,
    output_file,
    positive_float,
    positive_int,
)
from lmc_toolkit.cli.common import add_common, add_train_options, command, train_run_of
from lmc_toolkit.cli.inputs import add_checkpoints, read_checkpoint, read_data


def _add_bn(p: argparse.ArgumentParser, default: str = "recalibrate") -> None:
    from lmc_toolkit.training.batchnorm import BN_POLICIES

    p.add_argument("--bn", default=default, choices=BN_POLICIES, help="BatchNorm policy")


@command("instability", "instability analysis: barriers between copies spawned at steps k")
def cmd_instability(args: argparse.Namespace) -> int:
    from lmc_toolkit.connectivity.instability_analysis import instability_vs_k
    from lmc_toolkit.models import build
    from lmc_toolkit.store.runs import Store
    from lmc_toolkit.training.runs import default_device

    run = train_run_of(args)
    train_data = read_data(run.data, "train", args.data_root)
    test_data = read_data(run.data, "test", args.data_root)
    device = args.device or default_device()
    model = build(
        run.model,
        train_data.num_classes,
        train_data.image_shape,
        run.init_seed,
        device,
        **dict(run.model_options),
    )
    result = instability_vs_k(
        model,
        train_data,
        test_data,
        run.train,
        args.k or [0],
        data_seeds=(run.data_seed, run.data_seed + 1),
        pairs=args.pairs,
        store=Store(args.store),
        alphas=args.alphas,
        bn=args.bn,
        progress=not args.no_progress,
    )
    print(f"{run.model} on {run.data}: test error barrier between children spawned at step k")
    for r in result.results:
        print(
            f"  k={r.k:>6}  error barrier {100 * r.error_barrier:6.2f}% "
            f"± {100 * r.error_barrier_std:.2f}  loss barrier {r.loss_barrier:.4f}  "
            f"({len(r.pairs)} pair(s), {r.meta['seconds']:.1f} s)"
        )
    if args.html:
        result.plot().write_html(args.html, include_plotlyjs=True)
        print(f"figure written to {args.html}")
    return 0


def _configure_instability(p: argparse.ArgumentParser) -> None:
    add_train_options(p)
    p.add_argument(
        "--k", type=nonnegative_int, action="append", help="spawn step (repeat; default 0)"
    )
    p.add_argument("--pairs", type=positive_int, default=1, help="disjoint pairs of children per k")
    p.add_argument("--alphas", type=int_at_least(2), default=31)
    p.add_argument(
        "--html", type=output_file, default=None, help="write the barrier-vs-k figure here"
    )
    _add_bn(p)
    add_common(p)


cmd_instability.configure = _configure_instability


@command("landscape", "a loss-landscape plane: random around a model, or through four seeds")
def cmd_landscape(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import torch

    from lmc_toolkit.landscape.evaluator.precision import check_precision
    from lmc_toolkit.landscape.planes import paper_plane, random_plane
    from lmc_toolkit.store.runs import Store
    from lmc_toolkit.training.runs import default_device, train_run

    # refused before any training: a precision this device cannot run natively
    check_precision(args.precision, torch.device(args.device or default_device()))
    run = train_run_of(args)
    store = Store(args.store)
    progress = not args.no_progress
    wanted = 1 if args.kind == "random" else 4
    if args.checkpoint and len(args.checkpoint) != wanted:
        raise ValueError(
            f"a {args.kind} plane takes {wanted} --checkpoint file(s), got {len(args.checkpoint)}"
        )
    data = read_data(run.data, args.split, args.data_root)
    if args.images:
        data = data[: args.images]
    grid = (-args.span, args.span, args.grid)
    options = {"x": grid, "y": grid, "bn": args.bn, "path": args.out, "progress": progress}
    options["precision"] = args.precision
    loaded = [read_checkpoint(f, args, data, args.device) for f in args.checkpoint]
    seeds = [run.data_seed + i for i in range(wanted)]
    models = loaded or [
        train_run(replace(run, data_seed=s), store, args.device, progress, args.data_root).model(
            device=args.device
        )
        for s in seeds
    ]
    if args.kind == "random":
        surface = random_plane(models[0], data, seeds=(args.seed, args.seed + 1), **options)
    else:
        labels = [f"seed {s}" for s in seeds] if not loaded else [f"θ{i}" for i in range(4)]
        surface = paper_plane(models, data, labels=labels, **options)
    i, j = divmod(int(surface.loss.argmin()), len(surface.x))
    print(
        f"{args.kind} plane on {data.name} ({len(data)} images, {surface.loss.size} points): "
        f"loss {surface.loss.min():.4f} to {surface.loss.max():.4f}, lowest at "
        f"({surface.x[j]:.2f}, {surface.y[i]:.2f}); {surface.meta['seconds']:.1f} s"
    )
    if args.out:
        print(f"surface saved in {args.out}")
    if args.html:
        surface.plot(log=args.log).write_html(args.html, include_plotlyjs=True)
        print(f"figure written to {args.html}")
    return 0


def _configure_landscape(p: argparse.ArgumentParser) -> None:
    from lmc_toolkit.landscape.evaluator.precision import PRECISIONS

    add_train_options(p)
    p.add_argument("--kind", default="random", choices=("random", "paper"))
    add_checkpoints(p, "1 network (random plane) or 4 (paper plane)")
    p.add_argument("--split", default="test", choices=("train", "test"))
    p.add_argument(
        "--images", type=nonnegative_int, default=0, help="evaluate on the first N images"
    )
    p.add_argument("--grid", type=int_at_least(2), default=21, help="points per axis")
    p.add_argument(
        "--span", type=positive_float, default=1.0, help="the grid covers [-span, span]²"
    )
    p.add_argument(
        "--seed", type=nonnegative_int, default=0, help="first direction seed (random plane)"
    )
    p.add_argument(
        "--out", type=output_file, default=None, help="save (and resume) the surface here"
    )
    p.add_argument("--html", type=output_file, default=None, help="write the figure here")
    p.add_argument("--log", action="store_true", help="log-scale figure")
    p.add_argument(
        "--precision",
        default="float32",
        choices=PRECISIONS,
        help="arithmetic of the forward passes (bfloat16: faster where the CPU or GPU has it)",
    )
    _add_bn(p)
    add_common(p)


cmd_landscape.configure = _configure_landscape
