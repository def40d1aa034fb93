"""What the data entrance costs: the same work on a toolkit `Dataset` (the fast path) and on a
`DataLoader`, an `(X, Y)` pair, a `TensorDataset` of the same images and a `Stream` (the loader
read batch by batch on every pass, never held whole), interleaved.

The work: `evaluate`, an 11-point `interpolate` and 20 Hessian-vector products of a trained
`convnet3` (width 32) on the 1000 embedded MNIST test images, and 1 epoch of `train` on the
4000 training images (a `Stream` cannot train: training draws examples at random). A loader is
read once per call (`as_dataset`), so its cost over the fast path is that reading; a `Stream`
re-reads its loader on every pass (every point chunk, every product).

    python benchmarks/data_entrance.py [--rounds 4] [--only 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
from torch.utils.data import DataLoader, TensorDataset

import lmc_toolkit as L


def kinds(data: L.Dataset) -> dict[str, object]:
    return {
        "Dataset (fast path)": data,
        "DataLoader (batches of 100)": DataLoader(TensorDataset(data.x, data.y), batch_size=100),
        "(X, Y) pair": (data.x, data.y),
        "TensorDataset": TensorDataset(data.x, data.y),
        "Stream (DataLoader, batches of 100)": L.stream(
            DataLoader(TensorDataset(data.x, data.y), batch_size=100)
        ),
    }


STREAMED = "Stream (DataLoader, batches of 100)"


def rotated(items: dict[str, object], r: int) -> list[tuple[str, object]]:
    """The kinds in round `r`'s order: each starts a round once (no place in the order is
    always the first after another task)."""
    pairs = list(items.items())
    return pairs[r % len(pairs) :] + pairs[: r % len(pairs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--json", default=None)
    parser.add_argument(
        "--only", default=None, help="time only the work whose name starts with this (e.g. 20)"
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    train, test = L.load("mnist"), L.load("mnist", "test")
    model = L.build("convnet3", 10, train.in_shape, init_seed=0, width=32)
    config = L.TrainConfig(epochs=1, lr=0.05)
    a = L.train(model, train, config, data_seed=0, progress=False).model()
    b = L.train(model, train, config, data_seed=1, progress=False).model()
    v = torch.randn(
        sum(p.numel() for p in a.parameters()), generator=torch.Generator().manual_seed(0)
    )

    def hvps(data: object) -> None:
        H = L.Hessian(a, data, batch_size=100)
        for _ in range(20):
            H.hvp(v)

    work: dict[str, Callable[[object], object]] = {
        "evaluate": lambda d: L.evaluate(a, d),
        "interpolate (11 points)": lambda d: L.interpolate(
            a, b, d, alphas=11, bn="eval", progress=False, compile=False
        ),
        "20 Hessian-vector products": hvps,
    }
    if args.only:
        work = {k: f for k, f in work.items() if k.startswith(args.only)}
    with_train = not args.only or "train".startswith(args.only)
    times: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        for task, fn in work.items():
            for kind, data in rotated(kinds(test), r):
                start = time.perf_counter()
                fn(data)
                times.setdefault((task, kind), []).append(time.perf_counter() - start)
        for kind, data in rotated(kinds(train), r):
            if kind == STREAMED or not with_train:
                continue
            start = time.perf_counter()
            L.train(model, data, config, data_seed=0, progress=False)
            times.setdefault(("train (1 epoch, 4000 images)", kind), []).append(
                time.perf_counter() - start
            )
    rows = []
    print(f"| work | data | s (median of {args.rounds}) [range] | vs the fast path |")
    print("|---|---|---|---|")
    for task in [*work, *(["train (1 epoch, 4000 images)"] if with_train else [])]:
        base = statistics.median(times[(task, "Dataset (fast path)")])
        for kind in kinds(test):
            if (task, kind) not in times:
                continue
            t = statistics.median(times[(task, kind)])
            lo, hi = min(times[(task, kind)]), max(times[(task, kind)])
            rows.append({"work": task, "data": kind, "seconds": t, "ratio": t / base})
            print(f"| {task} | {kind} | {t:.3f} [{lo:.3f}-{hi:.3f}] | {t / base:.2f}× |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
