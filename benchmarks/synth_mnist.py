"""Synthetic MNIST at ipc 10: random subset vs herding vs distribution matching vs gradient
matching, each judged by a convnet3 trained on its 100 images and tested on 1000 real ones.

    python benchmarks/synth_mnist.py                     # one set per method (seed 0)
    for s in 0 1 2; do python benchmarks/synth_mnist.py --set-seed $s --json s$s.json; done
    python benchmarks/synth_mnist.py --methods random dm --dm-iterations 300

Every set is made once (`--set-seed`, default 0) and cached in the run store (`--store`,
default $LMC_TOOLKIT_STORE); the making time is recorded in the set's meta when it is made, so
a rerun reports the same time. Distillation starts from the random subset of the same seed, so
"dm" minus "random" at one seed is what distillation adds. Each set then trains `--eval-seeds`
convnet3s (init and data order from the same seed) with one training config for all methods.
The distillation budgets are small enough for a 2-core CPU: see `--dm-*` and `--gm-*` (the
image learning rates are 10x the papers' because the runs are 100-500x shorter).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from lmc_toolkit import synth
from lmc_toolkit.data import Dataset, load
from lmc_toolkit.models import build
from lmc_toolkit.store import Store
from lmc_toolkit.training import TrainConfig, evaluate, train

METHODS = ("random", "herding", "dm", "gm")


def make(method: str, data: Dataset, args: argparse.Namespace, store: Store) -> Dataset:
    options = {"width": args.distill_width}
    common = {"store": store, "progress": not args.no_progress}
    if method == "random":
        return synth.random_subset(data, args.ipc, args.set_seed, store=store)
    if method == "herding":
        return synth.herding(data, args.ipc, seed=args.set_seed, model_options=options, **common)
    if method == "dm":
        return synth.distribution_matching(
            data,
            args.ipc,
            args.dm_iterations,
            lr=args.dm_lr,
            real_batch=args.real_batch,
            model_options=options,
            seed=args.set_seed,
            **common,
        )
    return synth.gradient_matching(
        data,
        args.ipc,
        outer_loops=args.gm_outer,
        inner_loops=args.gm_inner,
        iterations=args.gm_iterations,
        lr=args.gm_lr,
        real_batch=args.real_batch,
        model_options=options,
        seed=args.set_seed,
        **common,
    )


def judge(s: Dataset, test: Dataset, config: TrainConfig, args: argparse.Namespace) -> list[float]:
    """Test accuracy of a convnet3 trained on `s`, one per evaluation seed."""
    accs = []
    for seed in range(args.eval_seeds):
        net = build("convnet3", s.num_classes, s.in_shape, seed, width=args.eval_width)
        # no eval_data: train() would test after every 2-step epoch of a 100-image set
        result = train(net, s, config, data_seed=seed, progress=False)
        accs.append(evaluate(result.model(net), test).accuracy)
    return accs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--set-seed", type=int, default=0, help="the seed each set is made with")
    p.add_argument("--distill-width", type=int, default=32)
    p.add_argument("--real-batch", type=int, default=64)
    p.add_argument("--dm-iterations", type=int, default=100)
    p.add_argument("--dm-lr", type=float, default=10.0)
    p.add_argument("--gm-iterations", type=int, default=2)
    p.add_argument("--gm-outer", type=int, default=10)
    p.add_argument("--gm-inner", type=int, default=10)
    p.add_argument("--gm-lr", type=float, default=1.0)
    p.add_argument("--eval-width", type=int, default=32)
    p.add_argument("--eval-steps", type=int, default=100)
    p.add_argument("--eval-seeds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--store", default=None)
    p.add_argument("--json", default=None, help="write the results here as they come")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    store = Store(args.store)
    data, test = load("mnist", "train"), load("mnist", "test")
    config = TrainConfig(steps=args.eval_steps, batch_size=50, lr=0.01, augment="crop")
    results = {"settings": vars(args), "train_config": repr(config), "methods": {}}
    for method in args.methods:
        start = time.perf_counter()
        s = make(method, data, args, store)
        wall = time.perf_counter() - start
        seconds = s.meta.get("seconds", wall)
        accs = judge(s, test, config, args)
        row = {
            "accuracies": accs,
            "mean": statistics.mean(accs),
            "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "seconds": seconds,
        }
        results["methods"][method] = row
        print(
            f"{method:8s} {100 * row['mean']:.2f} ± {100 * row['std']:.2f} %  "
            f"({', '.join(f'{100 * a:.1f}' for a in accs)})  made in {seconds:.1f} s",
            flush=True,
        )
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
