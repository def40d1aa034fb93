"""`lmc-toolkit align`: two networks of one recipe from different initializations, the
barrier between them before and after permutation alignment."""

from __future__ import annotations

import argparse
from dataclasses import replace

from lmc_toolkit.cli.arguments import int_at_least, nonnegative_int
from lmc_toolkit.cli.common import add_common, add_train_options, command, train_run_of
from lmc_toolkit.cli.inputs import add_checkpoints, read_checkpoint, read_data


@command("align", "barriers between two inits before and after permutation alignment")
def cmd_align(args: argparse.Namespace) -> int:
    from lmc_toolkit.connectivity.aligned import ALIGN_METHODS
    from lmc_toolkit.connectivity.interpolation import interpolate
    from lmc_toolkit.store.runs import Store
    from lmc_toolkit.training.runs import train_run

    methods = args.method or ["weights"]
    bad = [m for m in methods if m not in ALIGN_METHODS[1:]]
    if bad:
        raise ValueError(f"--method {bad[0]!r}: use one of {ALIGN_METHODS[1:]}")
    if args.checkpoint and len(args.checkpoint) != 2:
        raise ValueError(f"align takes 2 --checkpoint files (a and b), got {len(args.checkpoint)}")
    init_b = args.init_seed + 1 if args.init_seed_b is None else args.init_seed_b
    if init_b == args.init_seed and not args.checkpoint:
        raise ValueError(f"--init-seed-b must differ from --init-seed ({init_b}): same network")
    run_a = train_run_of(args)
    run_b = replace(run_a, init_seed=init_b, data_seed=run_a.data_seed + 1)
    store, progress = Store(args.store), not args.no_progress
    test = read_data(run_a.data, "test", args.data_root)
    train = read_data(run_a.data, "train", args.data_root)
    if args.checkpoint:
        a, b = (read_checkpoint(f, args, train, args.device) for f in args.checkpoint)
        pair = f"checkpoints {args.checkpoint[0]} and {args.checkpoint[1]}"
    else:
        a, b = (
            train_run(r, store, args.device, progress, args.data_root).model(device=args.device)
            for r in (run_a, run_b)
        )
        pair = f"init seeds {run_a.init_seed} and {init_b}"
    print(f"{run_a.model} on {run_a.data}: {pair}, test set ({len(test)} images)")
    print(f"{'alignment':<12} {'error barrier':>14} {'loss barrier':>13} {'seconds':>8}")
    for method in methods:
        curve = interpolate(
            a, b, test, alphas=args.alphas, bn=args.bn, bn_data=train, align=method,
            align_data=train, progress=progress,
        )  # fmt: skip
        if method == methods[0]:
            before = curve.before
            print(
                f"{'none':<12} {100 * before.barrier('error').value:>13.2f}% {before.barrier('loss').value:>13.4f}"
            )
        after, seconds = curve.after, curve.alignment.seconds
        print(
            f"{method:<12} {100 * after.barrier('error').value:>13.2f}% "
            f"{after.barrier('loss').value:>13.4f} {seconds:>8.2f}"
        )
    return 0


def _configure(p: argparse.ArgumentParser) -> None:
    from lmc_toolkit.training.batchnorm import BN_POLICIES

    add_train_options(p)
    add_checkpoints(p, "these 2 networks (a, then b)")
    p.add_argument(
        "--init-seed-b", type=nonnegative_int, default=None, help="b's init seed (default: a's + 1)"
    )
    p.add_argument(
        "--method", action="append", default=None, help="weights (default), activations; repeatable"
    )
    p.add_argument("--alphas", type=int_at_least(2), default=11, help="points along the path")
    p.add_argument("--bn", default="recalibrate", choices=BN_POLICIES)
    add_common(p)


cmd_align.configure = _configure
