"""The connectivity checks of the cpu scale: instability of dense convnet3 on embedded MNIST at
k = 0 and a later k, and the study's plane through four seeds.

Children are trained with Frankle et al.'s recipe (`connectivity.instability`) and cached in the
store, so a rerun only re-evaluates. The k = 0 run trains two pairs of children (data seeds
0-3) from the same init: exactly the four solutions the paper plane goes through.

    python benchmarks/lmc_cpu.py --store /tmp/store_lmc --json lmc_cpu.json
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
from lmc_toolkit.landscape import paper_plane
from lmc_toolkit.store import Store
from lmc_toolkit.training import TrainConfig


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--store", default="/tmp/store_lmc")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--epochs", type=float, default=6)
    p.add_argument(
        "--lr",
        type=float,
        default=0.3,
        help="0.3: the dense network is unstable at init at this scale",
    )
    p.add_argument("--later-k", type=int, default=None, help="default: one epoch of steps")
    p.add_argument("--alphas", type=int, default=11)
    p.add_argument("--grid", type=int, default=21)
    p.add_argument("--plane-images", type=int, default=1000)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    train_data, test_data = D.load("mnist", "train"), D.load("mnist", "test")
    model = models.build("convnet3", 10, train_data.in_shape, init_seed=0, width=args.width)
    config = TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=64)
    steps_per_epoch = -(-len(train_data) // config.batch_size)
    later = args.later_k if args.later_k is not None else steps_per_epoch
    store = Store(args.store)
    out: dict[str, Any] = {
        "setting": {
            "model": f"convnet3 width {args.width}",
            "train": f"embedded MNIST {len(train_data)} images",
            "eval": f"embedded MNIST test {len(test_data)} images",
            "config": str(config),
            "threads": torch.get_num_threads(),
            "load_average": os.getloadavg(),
        }
    }
    runs = {}
    for k, pairs in ((0, 2), (later, 1)):
        start = time.perf_counter()
        r = instability(
            model, train_data, test_data, config, k=k, pairs=pairs, store=store,
            alphas=args.alphas, progress=False,
        )  # fmt: skip
        runs[k] = r
        out[f"instability_k{k}"] = {
            "k": k,
            "pairs": [list(pr) for pr in r.pairs],
            "error_barriers_pct": [100 * v for v in r.error_barriers],
            "error_barrier_mean_pct": 100 * r.error_barrier,
            "error_barrier_std_pct": 100 * r.error_barrier_std,
            "loss_barrier_mean": r.loss_barrier,
            "child_test_accuracy": r.meta["child_accuracy"],
            "train_seconds": r.meta["train_seconds"],
            "seconds": time.perf_counter() - start,
            "interpolation_seconds": [c.meta["seconds"] for c in r.curves],
        }
        print(json.dumps(out[f"instability_k{k}"]), flush=True)
    four = [runs[0].children[s].model(model) for s in (0, 1, 2, 3)]
    start = time.perf_counter()
    surface = paper_plane(
        four, test_data[: args.plane_images], x=(-2.0, 2.0, args.grid), y=(-2.0, 2.0, args.grid),
        progress=False,
    )  # fmt: skip
    out["paper_plane"] = {
        "grid": f"{args.grid}x{args.grid}",
        "images": args.plane_images,
        "seconds": time.perf_counter() - start,
        "s_per_point": (time.perf_counter() - start) / surface.loss.size,
        "markers": [vars(m) for m in surface.markers],
        "loss_min": float(surface.loss.min()),
        "loss_at_centre": surface.at(0, 0)[0],
        "evaluator": surface.meta["evaluator"],
    }
    surface.save(os.path.join(args.store, "paper_plane.pt"))
    print(json.dumps(out["paper_plane"], default=str), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2, default=str)


if __name__ == "__main__":
    main()
