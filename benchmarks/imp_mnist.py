"""IMP vs distilled pruning vs random pruning on the embedded MNIST with convnet3, on a CPU.

    python benchmarks/imp_mnist.py [--store /tmp/store_imp] [--width 32] [--rounds 6] ...

Runs IMP (inner training on the 4000 real training images) and distilled pruning (inner
training on 10 real images per class, the "random subset" stand-in for a distilled set) from the
same θ0, both rewound to θ0 each round; then trains every mask (and random masks at the same
sparsities, and the dense network) on the real data for two data seeds and prints the per-round
tables and the accuracy-vs-sparsity table with wall times. Everything is cached in the store,
so a second run only prints.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import lmc_toolkit as L
from lmc_toolkit.pruning import (
    ImpConfig,
    distilled_pruning,
    evaluate_tickets,
    imp,
    iou,
    random,
    random_iou,
)


def tiny_real_subset(data: L.Dataset, ipc: int, seed: int) -> L.Dataset:
    """`ipc` real images per class: `synth.random_subset` when it is there, else the same
    thing here (a seeded permutation per class)."""
    try:
        from lmc_toolkit.synth import random_subset

        return random_subset(data, ipc, seed)
    except ImportError:
        g = torch.Generator().manual_seed(seed)
        rows = [
            torch.nonzero(data.y == c).flatten()[
                torch.randperm(int((data.y == c).sum()), generator=g)[:ipc]
            ]
            for c in range(data.num_classes)
        ]
        picked = data.subset(torch.cat(rows))
        return L.Dataset(picked.x, picked.y, data.classes, f"{data.name}-random{ipc}", data.meta)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", default="/tmp/store_imp")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--epochs", type=float, default=2, help="real-data training (IMP, tickets)")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--rate", type=float, default=0.4, help="fraction pruned per round")
    p.add_argument("--ticket-rounds", type=int, nargs="+", default=[2, 4, 6])
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--synth-epochs", type=float, default=50)
    p.add_argument("--synth-batch", type=int, default=50)
    p.add_argument("--data-seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", default=None, help="also write the numbers here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    t_all = time.perf_counter()
    store = L.Store(args.store)
    train, test = L.load("mnist"), L.load("mnist", "test")
    synthetic = tiny_real_subset(train, args.ipc, seed=0)
    model = L.build("convnet3", 10, train.in_shape, init_seed=0, width=args.width)
    real_config = L.TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=64)
    synth_config = L.TrainConfig(epochs=args.synth_epochs, lr=args.lr, batch_size=args.synth_batch)
    common = dict(eval_data=test, store=store, progress=False)

    t0 = time.perf_counter()
    imp_run = imp(model, train, ImpConfig(args.rounds, args.rate, train=real_config), **common)
    t_imp = time.perf_counter() - t0
    t0 = time.perf_counter()
    dist_run = distilled_pruning(
        model, train, synthetic, ImpConfig(args.rounds, args.rate, train=synth_config), **common
    )
    t_dist = time.perf_counter() - t0

    print(f"convnet3 width {args.width} on embedded MNIST ({len(train)} train / {len(test)} test)")
    print(f"prunable weights: {imp_run.rounds[0].mask.total}; {args.rate:.0%} pruned per round\n")
    print(f"IMP: inner training {real_config.epochs:g} epochs on {len(train)} real images")
    print(imp_run.format())
    print(f"wall time {t_imp:.1f} s (this call; rounds loaded from the store cost ~0)\n")
    print(
        f"distilled pruning: inner training {synth_config.epochs:g} epochs on "
        f"{len(synthetic)} real images ({args.ipc} per class)"
    )
    print(dist_run.format())
    print(f"wall time {t_dist:.1f} s\n")
    last = args.rounds
    ratio = imp_run.rounds[last].mask_samples / max(dist_run.rounds[last].mask_samples, 1)
    print(
        f"cost of the round-{last} mask: IMP {imp_run.rounds[last].mask_samples:,} sample-"
        f"gradients / {imp_run.rounds[last].mask_seconds:.1f} s; distilled "
        f"{dist_run.rounds[last].mask_samples:,} / {dist_run.rounds[last].mask_seconds:.1f} s "
        f"({ratio:.1f}x fewer sample-gradients); training set {len(train)} vs "
        f"{len(synthetic)} images ({len(train) / len(synthetic):.0f}x fewer)\n"
    )
    print("mask IoU, IMP vs distilled (chance level in brackets):")
    for r in args.ticket_rounds:
        a, b = imp_run.rounds[r].mask, dist_run.rounds[r].mask
        print(f"  round {r} ({a.sparsity:.3f}): {iou(a, b):.3f} ({random_iou(a, b):.3f})")
    print()

    masks = {
        "dense": None,
        "imp": [imp_run.rounds[r].mask for r in args.ticket_rounds],
        "distilled": [dist_run.rounds[r].mask for r in args.ticket_rounds],
        "random": [random(model, imp_run.rounds[r].sparsity, seed=0) for r in args.ticket_rounds],
    }
    seeds = tuple(args.data_seeds)
    table = evaluate_tickets(
        model, masks, train, test, real_config, data_seeds=seeds, store=store, progress=False
    )
    print(
        f"tickets: θ0 ⊙ m trained {real_config.epochs:g} epochs on real data, test accuracy "
        f"over data seeds {tuple(args.data_seeds)} (mean ± std)"
    )
    print(table.format())
    trained = [e for e in table.entries if not e.cached]
    per = sum(e.seconds for e in table.entries) / len(table.entries)
    print(
        f"{len(table.entries)} tickets ({len(trained)} trained now), {per:.1f} s training each; "
        f"wall time {table.seconds:.1f} s"
    )
    print(f"\ntotal wall time {time.perf_counter() - t_all:.1f} s; store {store.root}")
    if args.json:
        out = {
            "args": vars(args),
            "imp": imp_run.table(),
            "distilled": dist_run.table(),
            "tickets": table.to_dict(),
            "seconds": {"imp": t_imp, "distilled": t_dist, "tickets": table.seconds},
        }
        Path(args.json).write_text(json.dumps(out, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
