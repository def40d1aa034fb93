"""Benchmark: planes of a trained `convnet3` on embedded MNIST, the toolkit against the best
simple loop, loss-landscapes and the floor of the convolutions, at float32 and bfloat16.

On the CPU, per width (default 32 and 64), on the 1000 embedded MNIST test images, 2 threads:

1. the toolkit: `landscape.plane` over the whole grid (first: including its one-time compile),
   at float32 and at `precision="bfloat16"`, and per point once compiled;
2. the naive loop at chunk sizes 100, 250, 500 and 1000 (the fastest is *the* baseline);
3. loss-landscapes' `random_plane` with a metric that scores the data in the same chunks;
4. the floor: the network's convolutions alone at float32, at their fastest chunk size and
   layout (all of them, and the later ones the toolkit runs as such).

The per-point figures are medians over rounds that run every way in turn on the same points
(`landscape_loops.interleave`). loss-landscapes draws its own directions and walks its grid in
place, so its directions are read back from the points it evaluates and the toolkit evaluates
exactly that plane; values are compared where the grids coincide. The bfloat16 plane is
compared with the float32 one point by point (|Δloss|, and the points whose accuracy differs);
the naive loop under bfloat16 autocast gives the exact count of images whose predicted class
flips.

    python benchmarks/landscape.py --json out.json                # widths 32 and 64, 11x11
    python benchmarks/landscape.py --widths 64 --grid 21
    python benchmarks/landscape.py --device cuda --json gpu.json  # on a GPU

On a GPU, TF32 is switched off so that the ways agree to float32 tolerance.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from typing import Any

import numpy as np
import torch
from landscape_loops import (
    CHUNKS,
    conv_floor,
    conv_inputs,
    interleave,
    loss_landscapes_plane,
    naive_loop,
    walk_coords,
)

from lmc_toolkit import data as D
from lmc_toolkit import models
from lmc_toolkit.landscape import Evaluator, plane
from lmc_toolkit.landscape.evaluator.points import grid_coords
from lmc_toolkit.training import TrainConfig, train


def toolkit_plane(model, data, base, d1, d2, xs, ys, **options) -> dict[str, Any]:
    names = [k for k, _ in model.named_parameters()]
    center = dict(zip(names, base, strict=True))
    dir1, dir2 = dict(zip(names, d1, strict=True)), dict(zip(names, d2, strict=True))
    start = time.perf_counter()
    s = plane(center, dir1, dir2, data, xs, ys, bn="eval", model=model, progress=False, **options)
    seconds = time.perf_counter() - start
    return {
        "surface": s,
        "seconds": seconds,
        "per_point": seconds / s.loss.size,
        "evaluator": s.meta["evaluator"],
    }


def unflatten(flat: torch.Tensor, like: list[torch.Tensor]) -> list[torch.Tensor]:
    parts = torch.split(flat, [t.numel() for t in like])
    return [p.view_as(t).clone() for p, t in zip(parts, like, strict=True)]


def benchmark_model(width: int, in_shape: tuple[int, int, int]) -> torch.nn.Module:
    """convnet3 with small nonzero biases: loss-landscapes' filter normalization divides by
    zero on the all-zero biases of a fresh network."""
    model = models.build("convnet3", 10, in_shape, init_seed=0, width=width).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(0.01 * torch.randn(p.shape, generator=gen))
    return model


def trained_model(width: int, device: str = "cpu") -> torch.nn.Module:
    """convnet3 after one epoch on the 4000 embedded MNIST training images: a real landscape
    around a trained network (its loss varies over orders of magnitude across the plane)."""
    data = D.load("mnist", "train")
    template = models.build("convnet3", 10, data.in_shape, init_seed=0, width=width)
    result = train(template, data, TrainConfig(epochs=1, lr=0.05), data_seed=0, progress=False)
    return result.model(device=device).eval()


def plane_of_walk(model, test, steps: int, seed: int, chunk: int):
    """loss-landscapes' first 2·steps+1 points, and its plane (origin, two step directions)."""
    ll = loss_landscapes_plane(model, test.x, test.y, steps, 2 * steps + 1, seed, chunk)
    like = [p.detach() for p in model.parameters()]
    walk = walk_coords(steps, len(ll["points"]))
    p0 = ll["points"][0][0]  # column 0, offset 1
    d2 = ll["points"][1][0] - p0
    d1 = ll["points"][walk.index((1, 1))][0] - p0
    base = unflatten(p0 - d2, like)  # the walk's origin: column 0, offset 0
    return ll, walk, base, unflatten(d1, like), unflatten(d2, like)


def precision_errors(low, ref, n: int) -> dict[str, Any]:
    """The bfloat16 surface against the float32 one, point by point."""
    diff = np.abs(low.loss - ref.loss).ravel()
    relative = diff / np.abs(ref.loss).ravel()
    correct = np.rint(np.abs(low.accuracy - ref.accuracy) * n).ravel()
    return {
        "max_abs_loss_diff": float(diff.max()),
        "median_abs_loss_diff": float(np.median(diff)),
        "max_rel_loss_diff": float(relative.max()),
        "median_rel_loss_diff": float(np.median(relative)),
        "loss_range": [float(ref.loss.min()), float(ref.loss.max())],
        "points_with_accuracy_change": int((correct > 0).sum()),
        "max_accuracy_change_images": int(correct.max()),
        "points": int(diff.size),
    }


def compare_cpu(args: argparse.Namespace, width: int) -> dict[str, Any]:
    test = D.load("mnist", "test")[: args.images]
    model = trained_model(width)
    steps = args.grid
    ll, walk, base, d1, d2 = plane_of_walk(model, test, steps, args.seed, chunk=250)
    grid = np.arange(steps, dtype=float)
    ours = {
        pr: toolkit_plane(model, test, base, d1, d2, grid, grid, precision=pr)
        for pr in ("float32", "bfloat16")
    }
    for pr, r in ours.items():
        compiled = r["evaluator"]["compiled"]
        print(
            f"width {width}: toolkit plane {pr} {r['per_point']:.3f} s per point "
            f"(compiled: {compiled}), {r['seconds']:.1f} s",
            flush=True,
        )
    s32, s16 = ours["float32"]["surface"], ours["bfloat16"]["surface"]
    walked = zip(walk, ll["points"], strict=True)
    agree_ll = [abs(s32.loss[o, i] - v) for (i, o), (_, v) in walked if o < steps]

    # the timed points: spread over the grid, the same for every way
    coords = grid_coords(grid, grid)[:: max(1, steps * steps // args.points)][: args.points]
    names = [k for k, _ in model.named_parameters()]
    center = dict(zip(names, base, strict=True))
    dirs = [dict(zip(names, d, strict=True)) for d in (d1, d2)]
    evaluators = {}
    for pr in ("float32", "bfloat16"):
        ev = Evaluator(model, test, bn="eval", precision=pr, progress=False)
        ev.expect(steps * steps)  # the same compile decision as the whole plane
        ev(center, dirs, coords[:1])  # compiled (or found in the caches) before timing
        evaluators[pr] = ev

    def toolkit(pr: str):
        def run() -> float:
            start = time.perf_counter()
            evaluators[pr](center, dirs, coords)
            return (time.perf_counter() - start) / len(coords)

        return run

    naive_runs: dict[int, dict[str, Any]] = {}

    def naive(chunk: int):
        def run() -> float:
            r = naive_loop(model, test.x, test.y, base, [d1, d2], coords, chunk)
            naive_runs[chunk] = r
            return r["per_point"]

        return run

    def ll_way(chunk: int):
        return lambda: loss_landscapes_plane(
            model, test.x, test.y, steps, len(coords), args.seed, chunk
        )["per_point"]

    pairs = conv_inputs(model, test.x)

    def floor(chunk: int, last: bool, skip_first: bool = False):
        return lambda: conv_floor(pairs, chunk, last, len(coords), skip_first)

    ways = {"toolkit fp32": toolkit("float32"), "toolkit bf16": toolkit("bfloat16")}
    ways |= {f"naive {c}": naive(c) for c in CHUNKS}
    ways |= {f"loss-landscapes {c}": ll_way(c) for c in CHUNKS}
    for c in CHUNKS:
        for last in (False, True):
            tag = f"{c}{' cl' if last else ''}"
            ways[f"floor {tag}"] = floor(c, last)
            ways[f"floor later {tag}"] = floor(c, last, skip_first=True)
    times = interleave(ways, args.rounds)
    med = {k: v["median"] for k, v in times.items()}
    best_chunk = min(CHUNKS, key=lambda c: med[f"naive {c}"])
    best_ll = min(CHUNKS, key=lambda c: med[f"loss-landscapes {c}"])
    floor_all = min((v, k) for k, v in med.items() if k.startswith("floor ") and "later" not in k)
    floor_later = min((v, k) for k, v in med.items() if k.startswith("floor later"))
    baseline = med[f"naive {best_chunk}"]

    # the same points by the naive loop and by it under bfloat16 autocast: exact flips
    flips = naive_loop(model, test.x, test.y, base, [d1, d2], coords, best_chunk, autocast=True)
    ref = naive_runs[best_chunk]
    flipped = (flips["predictions"] != ref["predictions"]).sum(1)
    toolkit_at = evaluators["float32"](center, dirs, coords)
    return {
        "width": width,
        "grid": f"{steps}x{steps}",
        "images": len(test),
        "timed_points": len(coords),
        "rounds": args.rounds,
        "loss_range": [float(s32.loss.min()), float(s32.loss.max())],
        "accuracy_range": [float(s32.accuracy.min()), float(s32.accuracy.max())],
        "plane_s_per_point": {pr: r["per_point"] for pr, r in ours.items()},
        "plane_total_s": {pr: r["seconds"] for pr, r in ours.items()},
        "plane_evaluator": {pr: r["evaluator"] for pr, r in ours.items()},
        "s_per_point": med,
        "samples": {k: v["samples"] for k, v in times.items()},
        "best_chunk": best_chunk,
        "baseline_s_per_point": baseline,
        "best_loss_landscapes_chunk": best_ll,
        "floor_s_per_point": floor_all[0],
        "floor_way": floor_all[1],
        "floor_later_s_per_point": floor_later[0],
        "floor_later_way": floor_later[1],
        "fp32_speedup_vs_baseline": baseline / med["toolkit fp32"],
        "bf16_speedup_vs_baseline": baseline / med["toolkit bf16"],
        "fp32_speedup_vs_loss_landscapes": med[f"loss-landscapes {best_ll}"] / med["toolkit fp32"],
        "fp32_ratio_to_floor": med["toolkit fp32"] / floor_all[0],
        "fp32_ratio_to_later_floor": med["toolkit fp32"] / floor_later[0],
        "bf16_errors": precision_errors(s16, s32, len(test)),
        "naive_bf16_autocast_flips": {
            "points_with_flips": int((flipped > 0).sum()),
            "max_images_flipped": int(flipped.max()),
            "mean_images_flipped": float(flipped.double().mean()),
        },
        "max_abs_diff_vs_loss_landscapes": float(max(agree_ll)),
        "max_abs_diff_vs_naive": float(np.abs(toolkit_at.loss - ref["losses"]).max()),
        "compared_points_loss_landscapes": len(agree_ll),
    }


def compare_gpu(args: argparse.Namespace) -> dict[str, Any]:
    """On a GPU: the toolkit at float32 and bfloat16 against the naive per-point loop at every
    chunk size on the whole grid (loss-landscapes draws its directions on the CPU)."""
    test = D.load("mnist", "test")[: args.images].to(args.device)
    width = args.widths[-1]
    model = trained_model(width, args.device)
    base = [p.detach().clone() for p in model.parameters()]
    gen = torch.Generator().manual_seed(args.seed)
    d1 = [0.05 * torch.randn(t.shape, generator=gen).to(t) for t in base]
    d2 = [0.05 * torch.randn(t.shape, generator=gen).to(t) for t in base]
    grid = np.linspace(-1, 1, args.grid)
    coords = grid_coords(grid, grid)
    naive_loop(model, test.x, test.y, base, [d1, d2], coords[:3], 1000)  # warm up the kernels
    ours = {}
    for pr in ("float32", "bfloat16"):
        toolkit_plane(model, test, base, d1, d2, grid[:3], grid[:3], precision=pr)
        ours[pr] = toolkit_plane(model, test, base, d1, d2, grid, grid, precision=pr)
    naive = {c: naive_loop(model, test.x, test.y, base, [d1, d2], coords, c) for c in CHUNKS}
    best = min(CHUNKS, key=lambda c: naive[c]["per_point"])
    pairs = conv_inputs(model, test.x)
    floor = min(conv_floor(pairs, c, last, 20) for c in CHUNKS for last in (False, True))
    s32, s16 = ours["float32"]["surface"], ours["bfloat16"]["surface"]
    return {
        "grid": f"{args.grid}x{args.grid}",
        "images": len(test),
        "width": width,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "toolkit_s_per_point": {pr: r["per_point"] for pr, r in ours.items()},
        "toolkit_path": {pr: r["evaluator"] for pr, r in ours.items()},
        "naive_s_per_point": {c: r["per_point"] for c, r in naive.items()},
        "best_chunk": best,
        "floor_s_per_point": floor,
        "speedup_vs_naive": {
            pr: naive[best]["per_point"] / r["per_point"] for pr, r in ours.items()
        },
        "ratio_to_floor": {pr: r["per_point"] / floor for pr, r in ours.items()},
        "max_abs_diff_vs_naive": float(np.abs(s32.loss.ravel() - naive[best]["losses"]).max()),
        "bf16_errors": precision_errors(s16, s32, len(test)),
    }


def scaling(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The toolkit's seconds per point against grid size, data size and width (small grids,
    so compilation is left to the evaluator's own rule)."""
    rows = []
    full = D.load("mnist", "test")
    n0, w0, g0 = args.scaling_images, args.width, args.scaling_grid
    cases = [("grid", g, n0, w0) for g in (3, 5, 9)]
    cases += [("images", g0, n, w0) for n in (n0 // 2, n0, 2 * n0)]
    cases += [("width", g0, n0, w) for w in (16, 32, 64)]
    for what, g, n, w in cases:
        data = full[:n].to(args.device)
        model = benchmark_model(w, data.in_shape).to(args.device)
        base = [p.detach() for p in model.parameters()]
        gen = torch.Generator().manual_seed(1)
        d1 = [0.01 * torch.randn(t.shape, generator=gen).to(t) for t in base]
        d2 = [0.01 * torch.randn(t.shape, generator=gen).to(t) for t in base]
        axis = np.linspace(-1, 1, g)
        r = toolkit_plane(model, data, base, d1, d2, axis, axis)
        rows.append(
            {
                "vary": what,
                "grid": f"{g}x{g}",
                "images": n,
                "width": w,
                "s_per_point": r["per_point"],
                "total_s": r["seconds"],
                "compiled": r["evaluator"]["compiled"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--grid", type=int, default=11)
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--widths", type=int, nargs="+", default=[32, 64])
    p.add_argument("--width", type=int, default=64, help="width of the scaling sweeps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--points", type=int, default=6, help="points timed per way and round")
    p.add_argument("--rounds", type=int, default=3, help="round-robin rounds of timing")
    p.add_argument("--scaling", action="store_true", help="also measure cost vs grid, data, width")
    p.add_argument("--scaling-grid", type=int, default=5, help="grid side of the data/width sweeps")
    p.add_argument(
        "--scaling-images", type=int, default=250, help="images of the grid/width sweeps"
    )
    p.add_argument("--skip-comparison", action="store_true", help="only the scaling sweeps")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args()
    if args.device.startswith("cuda"):
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    env = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cuda": torch.cuda.is_available(),
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "load_average": os.getloadavg(),
    }
    print(json.dumps(env))
    result: dict[str, Any] = {"env": env}
    if not args.skip_comparison:
        if args.device.startswith("cuda"):
            result["comparison"] = [compare_gpu(args)]
        else:
            result["comparison"] = [compare_cpu(args, w) for w in args.widths]
        for row in result["comparison"]:
            summary = {k: v for k, v in row.items() if k != "samples"}
            print(json.dumps(summary, indent=2, default=str), flush=True)
    if args.scaling:
        result["scaling"] = scaling(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2, default=str)


if __name__ == "__main__":
    main()
