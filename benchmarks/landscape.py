"""Benchmark: a plane of `convnet3` on embedded MNIST, three ways, side by side in one process.

1. this toolkit (`landscape.plane` on the one evaluator);
2. loss-landscapes' `random_plane` with its `Loss` metric on the same model, data and grid;
3. a naive loop: write the weights of each point into the model, one forward pass over one
   batch of all images.

loss-landscapes draws its own directions and walks its grid in place, so its directions are
read back from the points it evaluates and the toolkit evaluates exactly that plane; values are
compared where the grids coincide (its even columns are shifted by one step, a known quirk).
The slow baselines can be timed on their first `--baseline-points` points of the same walk
(seconds per point are what is compared). Then the toolkit's cost is measured against grid
size, data size and model width.

    python benchmarks/landscape.py                 # the full comparison (slow on a busy CPU)
    python benchmarks/landscape.py --baseline-points 40 --json out.json
    python benchmarks/landscape.py --device cuda   # on a GPU: the vmap path against the loops

On a GPU, TF32 is switched off so that the three ways agree to float32 tolerance.
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
import torch.nn.functional as F

from lmc_toolkit import data as D
from lmc_toolkit import models
from lmc_toolkit.landscape import plane


class _Stop(Exception):
    """Raised by the recording metric to end loss-landscapes' walk after enough points."""


def loss_landscapes_plane(model, x, y, steps: int, limit: int, seed: int) -> dict[str, Any]:
    """Run `random_plane` (one `Loss` call per point), recording each point's weights."""
    import loss_landscapes
    from loss_landscapes.metrics import Loss, Metric

    inner = Loss(F.cross_entropy, x, y)
    seen: list[tuple[torch.Tensor, float]] = []

    class Recording(Metric):
        def __call__(self, wrapper):
            if len(seen) >= limit:
                raise _Stop
            value = inner(wrapper)
            flat = torch.cat([p.detach().reshape(-1) for p in wrapper.get_module_parameters()])
            seen.append((flat.clone(), value))
            return value

    torch.manual_seed(seed)  # loss-landscapes draws its directions from the global RNG
    start = time.perf_counter()
    try:
        with torch.no_grad():
            loss_landscapes.random_plane(
                model,
                Recording(),
                distance=1,
                steps=steps,
                normalization="filter",
                deepcopy_model=True,
            )
    except _Stop:
        pass
    seconds = time.perf_counter() - start
    return {"points": seen, "seconds": seconds, "per_point": seconds / len(seen)}


def walk_coords(steps: int, count: int) -> list[tuple[int, int]]:
    """(column i, row offset) of loss-landscapes' first `count` evaluations: even columns go
    up through offsets 1..steps, odd ones down through steps-1..0."""
    out = []
    for i in range(steps):
        offsets = range(1, steps + 1) if i % 2 == 0 else range(steps - 1, -1, -1)
        out += [(i, o) for o in offsets]
    return out[:count]


def naive_loop(model, x, y, base, d1, d2, coords) -> dict[str, Any]:
    """Per point: write θ = base + a·d1 + b·d2 parameter by parameter, one forward pass."""
    net = model
    params = list(net.parameters())
    losses = []
    start = time.perf_counter()
    with torch.no_grad():
        for a, b in coords:
            for p, t0, t1, t2 in zip(params, base, d1, d2, strict=True):
                p.copy_(t0 + a * t1 + b * t2)
            losses.append(float(F.cross_entropy(net(x), y)))
    seconds = time.perf_counter() - start
    return {"losses": np.array(losses), "seconds": seconds, "per_point": seconds / len(coords)}


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


def compare_gpu(args: argparse.Namespace) -> dict[str, Any]:
    """On a GPU: the toolkit (vmap over blocks of points) against the naive per-point loop on
    the whole grid (loss-landscapes draws its directions on the CPU, so it cannot run there)."""
    test = D.load("mnist", "test")[: args.images].to(args.device)
    model = benchmark_model(args.width, test.in_shape).to(args.device)
    base = [p.detach().clone() for p in model.parameters()]
    gen = torch.Generator().manual_seed(args.seed)
    d1 = [0.05 * torch.randn(t.shape, generator=gen).to(t) for t in base]
    d2 = [0.05 * torch.randn(t.shape, generator=gen).to(t) for t in base]
    grid = np.linspace(-1, 1, args.grid)
    coords = [(float(a), float(b)) for b in grid for a in grid]
    toolkit_plane(model, test, base, d1, d2, grid[:3], grid[:3])  # warm up the kernels
    naive_loop(model, test.x, test.y, base, d1, d2, coords[:5])
    naive = naive_loop(model, test.x, test.y, base, d1, d2, coords)
    ours = toolkit_plane(model, test, base, d1, d2, grid, grid)
    naive_after = naive_loop(model, test.x, test.y, base, d1, d2, coords)
    naive_s = (naive["per_point"] + naive_after["per_point"]) / 2
    diff = np.abs(ours["surface"].loss.ravel() - naive["losses"]).max()
    return {
        "grid": f"{args.grid}x{args.grid}",
        "images": len(test),
        "width": args.width,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "toolkit_s_per_point": ours["per_point"],
        "toolkit_total_s": ours["seconds"],
        "toolkit_path": ours["evaluator"],
        "naive_s_per_point": naive_s,
        "naive_before_after": [naive["per_point"], naive_after["per_point"]],
        "speedup_vs_naive": naive_s / ours["per_point"],
        "max_abs_diff_vs_naive": float(diff),
    }


def compare(args: argparse.Namespace) -> dict[str, Any]:
    if args.device != "cpu":
        return compare_gpu(args)
    test = D.load("mnist", "test")[: args.images]
    model = benchmark_model(args.width, test.in_shape)
    steps = args.grid
    limit = min(args.baseline_points or steps * steps, steps * steps)
    ll = loss_landscapes_plane(model, test.x, test.y, steps, limit, args.seed)
    print(f"loss-landscapes: {ll['per_point']:.3f} s per point", flush=True)
    like = [p.detach() for p in model.parameters()]
    walk = walk_coords(steps, len(ll["points"]))
    p0 = ll["points"][0][0]  # column 0, offset 1
    d2_flat = ll["points"][1][0] - p0
    col1_offset1 = walk.index((1, 1)) if (1, 1) in walk else None
    if col1_offset1 is None:
        raise SystemExit("--baseline-points must reach the second column (at least 2·grid points)")
    d1_flat = ll["points"][col1_offset1][0] - p0
    base = unflatten(p0 - d2_flat, like)  # the walk's origin: column 0, offset 0
    d1, d2 = unflatten(d1_flat, like), unflatten(d2_flat, like)
    grid = np.arange(steps, dtype=float)
    naive_coords = [(float(i), float(o)) for i, o in walk]
    naive = naive_loop(model, test.x, test.y, base, d1, d2, naive_coords)
    print(f"naive loop: {naive['per_point']:.3f} s per point", flush=True)
    ours = toolkit_plane(model, test, base, d1, d2, grid, grid)
    print(f"toolkit: {ours['per_point']:.3f} s per point", flush=True)
    # a second plane in the same process: compiling again finds the generated kernels cached,
    # so this is the per-point cost without the one-time compile
    again = toolkit_plane(model, test, base, d1, d2, grid, grid)
    print(f"toolkit, second plane: {again['per_point']:.3f} s per point", flush=True)
    surface = ours["surface"]
    # the machine is shared: time both baselines again after the toolkit and average, so a
    # change of load during the run affects all three alike
    naive_after = naive_loop(model, test.x, test.y, base, d1, d2, naive_coords)
    ll_after = loss_landscapes_plane(model, test.x, test.y, steps, limit, args.seed)
    naive_s = (naive["per_point"] + naive_after["per_point"]) / 2
    ll_s = (ll["per_point"] + ll_after["per_point"]) / 2
    diffs_ll, diffs_naive = [], []
    for (i, o), (_, value), nv in zip(walk, ll["points"], naive["losses"], strict=True):
        if o < steps:
            diffs_ll.append(abs(surface.loss[o, i] - value))
            diffs_naive.append(abs(surface.loss[o, i] - nv))
    return {
        "grid": f"{steps}x{steps}",
        "images": len(test),
        "width": args.width,
        "toolkit_s_per_point": ours["per_point"],
        "toolkit_total_s": ours["seconds"],
        "toolkit_second_plane_s_per_point": again["per_point"],
        "toolkit_path": ours["evaluator"],
        "loss_landscapes_s_per_point": ll_s,
        "loss_landscapes_before_after": [ll["per_point"], ll_after["per_point"]],
        "loss_landscapes_points_timed": len(ll["points"]),
        "naive_s_per_point": naive_s,
        "naive_before_after": [naive["per_point"], naive_after["per_point"]],
        "naive_points_timed": len(naive_coords),
        "speedup_vs_naive": naive_s / ours["per_point"],
        "speedup_vs_loss_landscapes": ll_s / ours["per_point"],
        "second_plane_speedup_vs_naive": naive_s / again["per_point"],
        "second_plane_speedup_vs_loss_landscapes": ll_s / again["per_point"],
        "second_plane_max_abs_diff_vs_first": float(
            np.abs(again["surface"].loss - surface.loss).max()
        ),
        "max_abs_diff_vs_loss_landscapes": float(max(diffs_ll)),
        "max_abs_diff_vs_naive": float(max(diffs_naive)),
        "compared_points": len(diffs_ll),
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
    p.add_argument("--grid", type=int, default=21)
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--baseline-points",
        type=int,
        default=0,
        help="time the baselines on this many points (0: all)",
    )
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
        result["comparison"] = compare(args)
        print(json.dumps(result["comparison"], indent=2, default=str), flush=True)
    if args.scaling:
        result["scaling"] = scaling(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2, default=str)


if __name__ == "__main__":
    main()
