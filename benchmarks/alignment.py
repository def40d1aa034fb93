"""Permutation alignment speed: weight matching and activation matching against rebasin.

    python benchmarks/alignment.py [--threads 2] [--repeats 3] [--json out.json]

Pairs of networks of one architecture from different initializations: convnet3 width 32 on
1×28×28 inputs (trained one epoch on the embedded MNIST, so the matching is not trivial) and
the narrow CIFAR ResNet-18 (width 32, 3×32×32, at initialization: training it here would take
longer than the benchmark). For each: `lmc_toolkit.weight_matching` (median of `--repeats`
runs, sweeps to convergence), `activation_matching` on 1000 images, and the `rebasin`
package's `PermutationCoordinateDescent` (its defaults, tracing included; skipped when it is
not installed), interleaved in one process with `--threads` torch threads. The weight-matching
objective Σ⟨W_a, π(W_b)⟩ of both solvers is printed beside the times, with the largest change
of the permuted network's outputs (a valid permutation changes nothing but rounding: an
objective reached by changing the function does not count).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from typing import Any

import torch

import lmc_toolkit as L


def _pair(name: str) -> tuple[torch.nn.Module, torch.nn.Module, L.Dataset]:
    if name == "convnet3":
        data = L.load("mnist", "train")
        config = L.TrainConfig(epochs=1, lr=0.05)
        nets = [
            L.train(L.build("convnet3", 10, data.in_shape, s, width=32), data, config,
                    progress=False).model()
            for s in (0, 1)
        ]  # fmt: skip
        return nets[0], nets[1], data[:1000]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 3, 32, 32, generator=g)
    data = L.Dataset(x, torch.randint(0, 10, (1000,), generator=g), tuple("0123456789"), "noise")
    return (*(L.build("resnet18", 10, (3, 32, 32), s, width=32) for s in (0, 1)), data)


def _objective(a: torch.nn.Module, b: torch.nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    return float(
        sum((sa[k].double() * sb[k].double()).sum() for k in sa if sa[k].is_floating_point())
    )


def _function_change(b: torch.nn.Module, moved: torch.nn.Module, data: L.Dataset) -> float:
    """max |Δ output| of a permuted copy against the original (0 up to rounding if the
    permutation is valid) on 256 of the images, both in eval mode."""
    x = data.x[:256]
    b, moved = copy.deepcopy(b).eval(), copy.deepcopy(moved).eval()
    with torch.no_grad():
        return float((moved(x) - b(x)).abs().max())


def _time(fn: Any, repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    try:
        import rebasin
    except ImportError:
        rebasin = None
    rows = []
    for name in ("convnet3", "resnet18"):
        a, b, data = _pair(name)
        spec_s, spec = _time(lambda a=a: L.permutation_spec(a), args.repeats)
        wm_s, wm = _time(
            lambda a=a, b=b, spec=spec: L.weight_matching(a, b, spec=spec), args.repeats
        )
        am_s, _ = _time(
            lambda a=a, b=b, d=data, s=spec: L.activation_matching(a, b, d, spec=s), args.repeats
        )
        row = {
            "model": name, "parameters": sum(p.numel() for p in a.parameters()),
            "groups": len(spec), "spec_s": spec_s, "weight_matching_s": wm_s,
            "sweeps": wm.sweeps, "activation_matching_s": am_s,
            "objective_before": _objective(a, b),
            "objective_ours": _objective(a, L.permute(b, wm.permutation)),
            "function_change_ours": _function_change(b, L.permute(b, wm.permutation), data),
        }  # fmt: skip
        if rebasin is not None:

            def theirs(a=a, b=b) -> torch.nn.Module:
                moved = copy.deepcopy(b)
                x = torch.zeros(2, *a.spec.in_shape)
                rebasin.PermutationCoordinateDescent(a, moved, x).rebasin()
                return moved

            row["rebasin_s"], moved = _time(theirs, args.repeats)
            row["objective_rebasin"] = _objective(a, moved)
            row["function_change_rebasin"] = _function_change(b, moved, data)
        rows.append(row)
        print(json.dumps(row))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
