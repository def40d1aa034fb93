"""Benchmark: curvature against curvlinops-for-pytorch 3 and hessian-eigenthings 1.0, side by side.

On one trained network and its data, in one process, 2 threads, every library fed the same
network, data and chunks of 100 images: `convnet3` (width 32 by default, `--width 64`) on 1000
embedded MNIST training images, or the narrow ResNet-18 (`--model resnet18`, width 32, eval-mode
BatchNorm) on 256 of them in CIFAR's 3 × 32 × 32 shape; each trained one epoch on the 4000:

1. one product (Hessian and GGN): seconds, and the ratio to one gradient (the toolkit's);
2. the top-1 and top-5 eigenvalues (largest algebraic): time and relative error against a
   converged reference (scipy `eigsh` in float64 on the toolkit's products, tol 1e-9), at each
   library's defaults, and for each Lanczos at the fewest steps that reach 1e-6 (found by
   search, only that run timed);
3. the trace at a budget of 100 products: Hutchinson, Hutch++ and XTrace where a library has
   them, their error against the exact trace (the toolkit's exact diagonal), their standard
   error and, where it is given, the time to a standard error of 1% of the trace
   (per-product time × products needed);
4. the diagonal: the toolkit's exact route against curvlinops' Hutchinson and XDiag at 100
   products (relative L2 error); hessian-eigenthings has no diagonal estimator;
5. the spectral density: the same Lanczos steps and runs, time and the L1 distance between
   the toolkit's and hessian-eigenthings' densities (same broadening) on a common grid.

A row a library cannot compute records its error ("cannot"): curvlinops 3 multiplies by the
Hessian with forward-mode AD over the gradient, which torch does not implement through
GroupNorm's backward, so on `convnet3` only its GGN runs.

    python benchmarks/curvature_peers.py --json out.json
    python benchmarks/curvature_peers.py --width 64 --budget 50
    python benchmarks/curvature_peers.py --model resnet18 --budget 30 --density-runs 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

import lmc_toolkit as L
from lmc_toolkit.hessian import density, diagonal, top_eigenvalues, trace


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


class Cannot(Exception):
    """A library cannot do this row; the message says why."""


def attempt(fn: Callable[[], Any]) -> tuple[Any, float]:
    """`timed(fn)`, with a library's failure turned into `Cannot` naming its error."""
    try:
        return timed(fn)
    except Exception as exc:  # a peer's limitation is a result of this benchmark
        text = str(exc).splitlines()[0] if str(exc) else ""
        raise Cannot(f"{type(exc).__name__}: {text}") from exc


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    return statistics.median(timed(fn)[1] for _ in range(repeats))


def as_cifar_shape(data: L.Dataset) -> L.Dataset:
    """MNIST as 3 × 32 × 32 images (zero-padded, the channel repeated): CIFAR-10's shape for the
    narrow ResNet-18, from data that ships offline."""
    x = torch.nn.functional.pad(data.x, (2, 2, 2, 2)).repeat(1, 3, 1, 1)
    return L.Dataset(x=x, y=data.y, classes=data.classes, name=f"{data.name}-3x32x32")


def trained(model: str, width: int, images: int) -> tuple[nn.Module, L.Dataset]:
    """The network, trained one epoch at lr 0.05 on the 4000 embedded MNIST training images (in
    CIFAR's shape for a ResNet), and the first `images` of them, in eval mode (BatchNorm on its
    running statistics, the same function for every library)."""
    data = L.load("mnist", "train")
    if model.startswith("resnet"):
        data = as_cifar_shape(data)
    template = L.build(model, 10, data.in_shape, init_seed=0, width=width)
    result = L.train(template, data, L.TrainConfig(epochs=1, lr=0.05), data_seed=0, progress=False)
    return result.model().eval(), data[:images]


class Peers:
    """The same curvature through curvlinops and hessian-eigenthings."""

    def __init__(self, model: nn.Module, data: L.Dataset, chunk: int):
        import curvlinops
        import hessian_eigenthings as he

        self.model = model
        self.params = [p for p in model.parameters() if p.requires_grad]
        batches = [
            (data.x[i : i + chunk], data.y[i : i + chunk]) for i in range(0, len(data), chunk)
        ]
        ce = nn.CrossEntropyLoss()
        self.curv_h = curvlinops.HessianLinearOperator(
            model, ce, self.params, batches, check_deterministic=False
        )
        self.curv_g = curvlinops.GGNLinearOperator(
            model, ce, self.params, batches, check_deterministic=False
        )
        self.eig_h = he.HessianOperator(model, batches, he.supervised_loss(ce))
        self.eig_g = he.GGNOperator(
            model, batches, he.supervised_forward, he.supervised_loss_of_output(ce)
        )
        self.curvlinops, self.he = curvlinops, he

    def curv_vec(self, op, v: torch.Tensor) -> torch.Tensor:
        return op @ v

    def eig_vec(self, op, v: torch.Tensor) -> torch.Tensor:
        return op.matvec(v)


def products(H, G, peers: Peers, repeats: int) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(0)
    v = torch.randn(H.dim, generator=gen)
    H.hvp(v), G.hvp(v)  # the toolkit keeps one graph per chunk: built once, here
    grad_s = median_time(H.gradient, repeats)
    ways = {
        "toolkit hessian": lambda: H.hvp(v),
        "curvlinops hessian": lambda: peers.curv_vec(peers.curv_h, v),
        "hessian-eigenthings hessian": lambda: peers.eig_vec(peers.eig_h, v),
        "toolkit ggn": lambda: G.hvp(v),
        "curvlinops ggn": lambda: peers.curv_vec(peers.curv_g, v),
        "hessian-eigenthings ggn": lambda: peers.eig_vec(peers.eig_g, v),
    }
    failed = {}
    for name, fn in list(ways.items()):
        try:
            attempt(fn)
        except Cannot as exc:
            failed[name] = str(exc)
            del ways[name]
    samples: dict[str, list[float]] = {k: [] for k in ways}
    for _ in range(repeats):  # interleaved
        for name, fn in ways.items():
            samples[name].append(timed(fn)[1])
    out = {k: statistics.median(s) for k, s in samples.items()}
    ours = {"hessian": H.hvp(v), "ggn": G.hvp(v)}
    H.release(), G.release()
    first = {
        "toolkit hessian": timed(lambda: H.hvp(v))[1],
        "toolkit ggn": timed(lambda: G.hvp(v))[1],
    }
    agree = {}
    for name in ways:
        library, kind = name.rsplit(" ", 1)
        if library != "toolkit":
            theirs = ways[name]()
            agree[name] = float((theirs - ours[kind]).norm() / ours[kind].norm())
    return {
        "cannot": failed,
        "toolkit_first_product_s": first,  # builds the graphs the later products reuse
        "gradient_s": grad_s,
        "s": out,
        "per_gradient": {k: s / grad_s for k, s in out.items()},
        "relative_difference_to_toolkit": agree,
    }


def reference_eigenvalues(H, k: int) -> np.ndarray:
    """The top k, converged as far as float32 products allow: scipy `eigsh` (ARPACK) in float64
    arithmetic on the toolkit's float32 products, tol 1e-9. (ARPACK in float32, as the operator's
    own dtype would run it, and a float32 Lanczos basis both bias the top eigenvalue of a narrow
    ResNet by ~4e-6; a float64 copy of the network is exact but far too slow on the CPU.)"""
    from scipy.sparse.linalg import LinearOperator, eigsh

    A = H.as_linear_operator()
    B = LinearOperator(
        A.shape, matvec=lambda v: A @ np.asarray(v, dtype=np.float32), dtype=np.float64
    )
    return eigsh(B, k=k, which="LA", tol=1e-9, maxiter=300)[0]


def eigen(H, peers: Peers, k: int) -> dict[str, Any]:
    from scipy.sparse.linalg import eigsh

    ref = np.sort(reference_eigenvalues(H, k))[::-1]

    def err(values) -> float:
        values = np.sort(np.asarray(values, dtype=float))[::-1][:k]
        return float(np.max(np.abs(values - ref) / np.abs(ref)))

    def tk(tol):
        kw = {} if tol is None else {"tol": tol}
        H.release()  # its graphs rebuilt inside the timed call, as a fresh operator would
        out = top_eigenvalues(H, k=k, progress=False, **kw)
        iterations[0] = out.iterations
        return out.values.numpy()

    iterations = [0]

    def he(tol):
        kw = {} if tol is None else {"tol": tol}
        return peers.he.lanczos(peers.eig_h, k=k, which="LA", seed=0, **kw).eigenvalues.cpu()

    def cl(tol):
        kw = {} if tol is None else {"tol": tol}
        return eigsh(peers.curv_h.to_scipy(), k=k, which="LA", return_eigenvectors=False, **kw)

    def he_steps(steps):  # its Lanczos runs a fixed number of steps (default 2k)
        return peers.he.lanczos(peers.eig_h, k=k, which="LA", seed=0, max_iter=steps).eigenvalues

    rows: dict[str, Any] = {}
    ways = {
        "toolkit lanczos (defaults: bound ≤ 1e-6)": lambda: tk(None),
        "hessian-eigenthings lanczos (defaults)": lambda: he(None),
        "curvlinops + eigsh (defaults)": lambda: cl(None),
        "curvlinops + eigsh (tol 1e-8)": lambda: cl(1e-8),
    }
    for name, fn in ways.items():
        try:
            values, s = attempt(fn)
            rows[name] = {"s": s, "relative_error": err(values)}
        except Cannot as exc:
            rows[name] = {"cannot": str(exc)}
    rows["toolkit lanczos (defaults: bound ≤ 1e-6)"]["iterations"] = iterations[0]

    # Each library at the fewest Lanczos steps that reach 1e-6, found by search and timed on
    # that run alone, as if the user had known the number: the like-for-like row.
    def tk_steps(steps):
        H.release()
        out = top_eigenvalues(H, k=k, tol=1e-15, max_iter=steps, progress=False)
        return out.values.numpy()

    guess = rows["toolkit lanczos (defaults: bound ≤ 1e-6)"].get("iterations", 2 * k + 8)
    for name, fn in (("toolkit lanczos", tk_steps), ("hessian-eigenthings lanczos", he_steps)):
        steps, s, error = fewest_steps(lambda m, fn=fn: attempt(lambda: fn(m)), err, k, guess)
        rows[f"{name} (fewest steps: {steps})"] = {"s": s, "relative_error": error, "steps": steps}
    return {"reference": ref.tolist(), "rows": rows}


def fewest_steps(run, err, k: int, guess: int, target: float = 1e-6):
    """(steps, seconds, error) of the fewest Lanczos steps whose run reaches `target`: from
    `guess`, doubling up while it fails, then bisecting between the last failure and the first
    success (a top Ritz value only improves with more steps); at most 4·guess steps, where the
    error returned says it was not reached. `run(m)` returns (values, s)."""
    cap = 4 * max(guess, k)
    tried: dict[int, tuple[float, float]] = {}

    def error_at(m: int) -> float:
        if m not in tried:
            values, s = run(m)
            tried[m] = (s, err(values))
        return tried[m][1]

    lo, hi = k - 1, max(guess, k)  # lo fails (or is below k), hi is the candidate
    while error_at(hi) > target and hi < cap:
        lo, hi = hi, min(2 * hi, cap)
    while hi - lo > 1 and error_at(hi) <= target:
        mid = (lo + hi) // 2
        if error_at(mid) <= target:
            hi = mid
        else:
            lo = mid
    return hi, tried[hi][0], tried[hi][1]


def exact_diagonal(H) -> tuple[Any, float]:
    H.release()
    return timed(lambda: diagonal(H, progress=False))


def traces(H, peers: Peers, budget: int, exact_diag, s_diag: float) -> dict[str, Any]:
    exact = float(sum(v[exact_diag.kept[k]].sum() for k, v in exact_diag.values.items()))
    he, c = peers.he, peers.curvlinops
    ways: dict[str, tuple[Callable[[], Any], Callable[[Any], tuple[float, float | None]]]] = {}
    for method in ("stratified", "hutchinson", "hutch++", "xtrace"):
        ways[f"toolkit {method}"] = (
            lambda m=method: H.release() or trace(H, probes=budget, method=m, progress=False),
            lambda e: (float(e.mean), float(e.stderr)),
        )
    with_stderr = lambda e: (float(e.estimate), float(e.stderr))  # noqa: E731
    ways["hessian-eigenthings hutchinson"] = (
        lambda: he.hutchinson(peers.eig_h, num_samples=budget, seed=0),
        with_stderr,
    )
    ways["hessian-eigenthings hutch++"] = (
        lambda: he.hutch_plus_plus(peers.eig_h, num_matvecs=budget - budget % 3, seed=0),
        with_stderr,
    )
    plain = lambda e: (float(e), None)  # noqa: E731
    ways["curvlinops hutchinson"] = (lambda: c.hutchinson_trace(peers.curv_h, budget), plain)
    ways["curvlinops hutch++"] = (lambda: c.hutchpp_trace(peers.curv_h, budget - budget % 3), plain)
    ways["curvlinops xtrace"] = (lambda: c.xtrace(peers.curv_h, budget - budget % 2), plain)
    rows: dict[str, Any] = {}
    for name, (fn, read) in ways.items():
        try:
            out, s = attempt(fn)
        except Cannot as exc:
            rows[name] = {"cannot": str(exc)}
            continue
        mean, stderr = read(out)
        r = {"s": s, "estimate": mean, "relative_error": abs(mean - exact) / abs(exact)}
        if stderr is not None and math.isfinite(stderr) and stderr > 0:
            needed = (stderr / (0.01 * abs(exact))) ** 2 * budget
            r |= {"stderr": stderr, "s_to_1pct_stderr": s / budget * needed}
        rows[name] = r
    return {"exact": exact, "exact_s": s_diag, "route": exact_diag.route, "rows": rows}


def diagonals(H, peers: Peers, budget: int, exact, s_exact: float) -> dict[str, Any]:
    ref = H.flatten({k: v.to(H.device) for k, v in exact.values.items()})

    def error(flat) -> float:
        return float((flat.flatten().to(ref) - ref).norm() / ref.norm())

    rows: dict[str, Any] = {
        f"toolkit exact ({exact.route})": {"s": s_exact, "relative_l2_error": 0.0}
    }
    c = peers.curvlinops
    ways = {
        "toolkit hutchinson": lambda: (
            H.release()
            or H.flatten(
                {
                    k: v.to(H.device)
                    for k, v in diagonal(
                        H, method="hutchinson", probes=budget, progress=False
                    ).values.items()
                }
            )
        ),
        "curvlinops hutchinson": lambda: c.hutchinson_diag(peers.curv_h, budget),
        "curvlinops xdiag": lambda: c.xdiag(peers.curv_h, budget),
    }
    for name, fn in ways.items():
        try:
            out, s = attempt(fn)
            rows[name] = {"s": s, "relative_l2_error": error(out)}
        except Cannot as exc:
            rows[name] = {"cannot": str(exc)}
    return {"budget": budget, "rows": rows}


def densities(H, peers: Peers, steps: int, runs: int) -> dict[str, Any]:
    ours, s_ours = timed(lambda: density(H, runs=runs, steps=steps, progress=False))
    out: dict[str, Any] = {"steps": steps, "runs": runs, "toolkit_s": s_ours}
    try:
        theirs, s_he = attempt(
            lambda: peers.he.spectral_density(
                peers.eig_h, num_runs=runs, lanczos_steps=steps, sigma=ours.sigma, seed=0
            )
        )
    except Cannot as exc:
        return out | {"hessian_eigenthings": str(exc)}
    grid = np.asarray(ours.grid, dtype=float)
    mine = np.asarray(ours.density, dtype=float)
    other = np.interp(
        grid,
        np.asarray(theirs.grid.cpu(), dtype=float),
        np.asarray(theirs.density.cpu(), dtype=float),
        left=0,
        right=0,
    )
    l1 = float(np.trapezoid(np.abs(mine - other), grid))
    out |= {"hessian_eigenthings_s": s_he, "l1_distance": l1}
    try:  # curvlinops' Lanczos spectrum, the same steps and runs (its own grid and broadening)
        _, out["curvlinops_s"] = attempt(
            lambda: peers.curvlinops.lanczos_approximate_spectrum(
                peers.curv_h, ncv=steps, num_repeats=runs
            )
        )
    except Cannot as exc:
        out["curvlinops"] = str(exc)
    return out


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", default="convnet3", choices=["convnet3", "resnet18"])
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--images", type=int, default=None, help="1000 (convnet3) or 256 (resnet18)")
    p.add_argument("--density-runs", type=int, default=4)
    p.add_argument("--chunk", type=int, default=100)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--budget", type=int, default=100, help="products per trace/diagonal estimate")
    p.add_argument("--json", default=None)
    p.add_argument(
        "--sections",
        nargs="+",
        default=["products", "top1", "top5", "trace", "diagonal", "density"],
        help="the rows to run",
    )
    args = p.parse_args()
    torch.set_num_threads(2)
    env = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "load_average": os.getloadavg(),
    }
    print(json.dumps(env), flush=True)
    images = args.images or (256 if args.model == "resnet18" else 1000)
    model, data = trained(args.model, args.width, images)
    H = L.Hessian(model, data, batch_size=args.chunk)
    G = L.GGN(model, data, batch_size=args.chunk)
    peers = Peers(model, data, args.chunk)
    result: dict[str, Any] = {
        "env": env,
        "model": args.model,
        "width": args.width,
        "images": len(data),
        "dim": H.dim,
    }
    needs_exact = {"trace", "diagonal"} & set(args.sections)
    exact, s_exact = exact_diagonal(H) if needs_exact else (None, 0.0)
    for name, fn in (
        ("products", lambda: products(H, G, peers, args.repeats)),
        ("top1", lambda: eigen(H, peers, 1)),
        ("top5", lambda: eigen(H, peers, 5)),
        ("trace", lambda: traces(H, peers, args.budget, exact, s_exact)),
        ("diagonal", lambda: diagonals(H, peers, args.budget, exact, s_exact)),
        ("density", lambda: densities(H, peers, 30, args.density_runs)),
    ):
        if name not in args.sections:
            continue
        result[name] = fn()
        print(name, json.dumps(result[name], indent=1, default=str), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2, default=str)


if __name__ == "__main__":
    main()
