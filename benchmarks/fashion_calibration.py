"""Calibration of the `fashion` preset: is the dense ConvNet-3 unstable at initialization on
Fashion-MNIST, and what does one training cost?

For each training-set size and learning rate, Frankle et al.'s instability analysis at k = 0:
two disjoint pairs of children (data seeds 0-3) trained from the same init with the recipe the
preset would use (4 epochs, batch 64, LR ×0.2 after epoch 3), each pair interpolated on the test
images. Prints per setting the children's test accuracy, each pair's error barrier (mean-of-
endpoints form), and the seconds per training, so that the preset can be chosen where the dense
network is clearly unstable (error barrier well above 2%) and trains properly, within the time
budget.

    python benchmarks/fashion_calibration.py --limits 4000 8000 --lrs 0.1 0.2 --json cal.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import torch

from lmc_toolkit import data as D
from lmc_toolkit import models
from lmc_toolkit.connectivity import instability
from lmc_toolkit.store import Store
from lmc_toolkit.study.runs import subsample
from lmc_toolkit.training import TrainConfig


def one_setting(
    train_all: D.Dataset, test: D.Dataset, limit: int, lr: float, width: int, store: Store
) -> dict[str, Any]:
    train = subsample(train_all, limit, 0)
    model = models.build("convnet3", 10, train.in_shape, init_seed=0, width=width)
    config = TrainConfig(epochs=4, lr=lr, batch_size=64, milestones=(3,))
    start = time.perf_counter()
    result = instability(
        model, train, test, config, k=0, data_seeds=(0, 1, 2, 3), pairs=2, store=store,
        alphas=11, progress=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    return {
        "train_images": len(train),
        "lr": lr,
        "width": width,
        "test_accuracy": result.meta["child_accuracy"],  # each child's end of its curve
        "pairs": [list(p) for p in result.pairs],
        "error_barriers": [float(b) for b in result.error_barriers],
        "loss_barriers": [float(b) for b in result.loss_barriers],
        "seconds_per_training": seconds / len(result.children),
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--limits", type=int, nargs="+", default=[4000, 8000])
    p.add_argument("--lrs", type=float, nargs="+", default=[0.1, 0.2])
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--test-images", type=int, default=2000)
    p.add_argument("--store", default="/tmp/store_fashion_calibration")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    torch.set_num_threads(2)
    train_all = D.load("fashion-mnist", "train")
    test = subsample(D.load("fashion-mnist", "test"), args.test_images, 0)
    store = Store(args.store)
    rows = []
    print(json.dumps({"load_average": os.getloadavg(), "test_images": len(test)}), flush=True)
    for limit in args.limits:
        for lr in args.lrs:
            row = one_setting(train_all, test, limit, lr, args.width, store)
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"test_images": len(test), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
