"""Benchmark: Hessian analysis of `convnet3` on embedded MNIST against PyHessian and BackPACK.

Side by side in one process (sections can be chosen with --sections):

- `hvp`: the cost of one Hessian-vector product against one plain gradient (1000 images);
- `eigen`: the top-1 and top-5 eigenvalues, this toolkit's Lanczos against PyHessian's
  `eigenvalues()` (power iteration with deflation), errors against a tightly converged Lanczos;
- `trace`: the toolkit's estimators (stratified, XTrace, Hutch++, Hutchinson) against
  PyHessian's `trace()` with a fixed sample count; the time at equal standard error is
  extrapolated with SE ∝ 1/√samples for PyHessian's Hutchinson;
- `diag`: the exact diagonal against BackPACK's DiagHessian on a 784-64-10 MLP, and on
  `convnet3` the structured exact diagonal (closed form + forward tangents) against the authors'
  loop (one backward pass per coordinate on the graph of the gradient) and the one-hot route,
  both extrapolated from a timed prefix; plus structured vs one-hot on a width-8 convnet3;
- `diag_bn`: the same for `convnet3` with train-mode BatchNorm (`bn="batch"`, which BackPACK
  cannot do): the structured exact diagonal against the authors' loop in train mode
  (extrapolated from a timed prefix), plus a small full check against the one-hot route;
- `results`: top eigenvalue, trace, diagonal summary and density of a dense and a pruned
  (global magnitude, 80% sparsity, briefly retrained) `convnet3`.

Times are CPU seconds of this process (`time.process_time`, one thread), which stay meaningful
on a shared, busy machine; wall seconds are recorded too.

    python benchmarks/hessian.py --sections hvp eigen trace diag results --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import platform
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lmc_toolkit import data as D
from lmc_toolkit import models
from lmc_toolkit.hessian import Hessian, density, diagonal, top_eigenvalues, trace
from lmc_toolkit.training import TrainConfig, train

SECTIONS = ("hvp", "eigen", "trace", "diag", "diag_bn", "results")


def clock(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """fn(), its CPU seconds and its wall seconds."""
    c, w = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c, time.perf_counter() - w


def trained_convnet3(width: int, seed: int = 0, batchnorm: bool = False) -> nn.Module:
    """convnet3 after one epoch of SGD on the 4000 embedded MNIST training images
    (`batchnorm`: with BatchNorm2d in place of its instance norms)."""
    data = D.load("mnist", "train")
    net = models.build("convnet3", 10, data.in_shape, seed, width=width)
    if batchnorm:
        for i, m in enumerate(net):
            if isinstance(m, nn.GroupNorm):
                net[i] = nn.BatchNorm2d(m.num_channels)
    config = TrainConfig(epochs=1, lr=0.05, batch_size=64)
    return train(net, data, config, data_seed=seed, progress=False).model(net)


def magnitude_mask(net: nn.Module, sparsity: float) -> dict[str, torch.Tensor]:
    """Global magnitude pruning of conv and linear weights."""
    weights = {k: p.detach() for k, p in net.named_parameters() if p.dim() > 1}
    scores = torch.cat([w.abs().flatten() for w in weights.values()])
    cut = torch.kthvalue(scores, max(1, int(sparsity * len(scores)))).values
    return {k: w.abs() > cut for k, w in weights.items()}


def pyhessian_operator(net: nn.Module, data: D.Dataset):
    from pyhessian import hessian

    return hessian(copy.deepcopy(net), nn.CrossEntropyLoss(), data=(data.x, data.y), cuda=False)


@contextlib.contextmanager
def counting():
    """Count PyHessian's products by wrapping the function it calls for each."""
    import importlib

    ph = importlib.import_module("pyhessian.hessian")  # the module, not the class of that name
    calls = {"n": 0}
    original = ph.hessian_vector_product

    def wrapped(*a, **kw):
        calls["n"] += 1
        return original(*a, **kw)

    ph.hessian_vector_product = wrapped
    try:
        yield calls
    finally:
        ph.hessian_vector_product = original


def section_hvp(net, data, out):
    H = Hessian(net, data)  # defaults: 100-image chunks, graphs reused on the CPU
    H_fresh = Hessian(net, data, hvp_method="fresh")
    v = H.random(torch.Generator().manual_seed(0), "gaussian")
    full = Hessian(net, data, batch_size=len(data), hvp_method="reuse")
    H.hvp(v)
    full.hvp(v)
    rows = {}
    for name, fn in (
        ("gradient (100-image chunks)", H.gradient),
        ("gradient (one batch of 1000)", full.gradient),
        ("hvp reused graphs, 100-image chunks (toolkit default)", lambda: H.hvp(v)),
        ("hvp fresh double backward, 100-image chunks", lambda: H_fresh.hvp(v)),
        ("hvp reused graph, one batch of 1000 (PyHessian's way)", lambda: full.hvp(v)),
    ):
        times = [clock(fn)[1:] for _ in range(2)]
        rows[name] = {"cpu_s": min(t[0] for t in times), "wall_s": min(t[1] for t in times)}
        print(f"  {name}: {rows[name]['cpu_s']:.2f} s CPU", flush=True)
    base = rows["gradient (100-image chunks)"]["cpu_s"]
    best_grad = min(base, rows["gradient (one batch of 1000)"]["cpu_s"])
    for r in rows.values():
        r["x_best_gradient"] = r["cpu_s"] / best_grad
    out["hvp"] = rows


def section_eigen(net, data, out):
    H = Hessian(net, data)
    ref = top_eigenvalues(H, k=5, which="LM", tol=1e-9, max_iter=150, progress=False)
    la = top_eigenvalues(H, k=1, which="LA", tol=1e-6, progress=False)
    res: dict[str, Any] = {"reference_LM": ref.values.tolist(), "reference_products": ref.products}
    res["top1_LA"] = {"value": la.top, "bound": float(la.bounds[0]), "products": la.products}
    for k in (1, 5):
        ours, c_ours, w_ours = clock(
            lambda k=k: top_eigenvalues(H, k=k, which="LM", tol=1e-6, progress=False)
        )
        err_ours = ((ours.values - ref.values[:k]).abs() / ref.values[:k].abs()).max()
        ph = pyhessian_operator(net, data)
        with torch.random.fork_rng(), counting() as calls:
            torch.manual_seed(0)  # PyHessian draws from the global RNG
            (vals, _), c_ph, w_ph = clock(lambda k=k, ph=ph: ph.eigenvalues(top_n=k, tol=1e-3))
        theirs = torch.tensor(sorted(vals, key=abs, reverse=True), dtype=torch.float64)
        err_ph = ((theirs - ref.values[:k]).abs() / ref.values[:k].abs()).max()
        res[f"top{k}"] = {
            "toolkit": {
                "values": ours.values.tolist(),
                "rel_error": float(err_ours),
                "bounds": ours.bounds.tolist(),
                "products": ours.products,
                "cpu_s": c_ours,
                "wall_s": w_ours,
            },
            "pyhessian": {
                "values": theirs.tolist(),
                "rel_error": float(err_ph),
                "products": calls["n"],
                "cpu_s": c_ph,
                "wall_s": w_ph,
            },
            "speedup_cpu": c_ph / c_ours,
        }
        print(
            f"  top-{k}: toolkit {c_ours:.1f} s ({ours.products} products, error "
            f"{float(err_ours):.1e}); pyhessian {c_ph:.1f} s ({calls['n']} products, error "
            f"{float(err_ph):.1e})",
            flush=True,
        )
    out["eigen"] = res


def section_trace(net, data, out, probes: int, seeds: int = 3):
    """Every toolkit estimator with `probes` products side by side with PyHessian's `trace()`
    (Hutchinson with one shared probe over the whole batch, `probes` samples). PyHessian's time
    at the toolkit's standard error: its time × (its SE / ours)², i.e. SE ∝ 1/√samples. The
    default (`"auto"`: stratified) runs with `seeds` seeds; its SE is the root mean square and
    its time the mean over them."""
    H = Hessian(net, data)
    toolkit: dict[str, Any] = {}
    for method in ("auto", "xtrace", "hutch++", "hutchinson"):
        runs = []
        for seed in range(seeds if method == "auto" else 1):
            est, c, w = clock(
                lambda m=method, s=seed: trace(H, probes=probes, method=m, seed=s, progress=False)
            )
            runs.append({"mean": est.mean, "stderr": est.stderr, "cpu_s": c, "wall_s": w})
            runs[-1].update(seed=seed, method=est.method, products=est.products)
            if "strata" in est.meta:
                runs[-1].update(stratum=est.meta["stratum"], strata=est.meta["strata"])
            print(
                f"  {est.method} (seed {seed}): {est.mean:.2f} ± {est.stderr:.2f}, "
                f"{est.products} products, {c:.1f} s CPU",
                flush=True,
            )
        toolkit[runs[0]["method"]] = {
            "runs": runs,
            "stderr": math.sqrt(sum(r["stderr"] ** 2 for r in runs) / len(runs)),
            "cpu_s": sum(r["cpu_s"] for r in runs) / len(runs),
            "cpu_s_per_product": sum(r["cpu_s"] / r["products"] for r in runs) / len(runs),
        }
    ph = pyhessian_operator(net, data)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        samples, c_ph, w_ph = clock(lambda: ph.trace(maxIter=probes, tol=-1.0))
    s = torch.tensor(samples, dtype=torch.float64)
    se_ph = float(s.std() / math.sqrt(len(s)))
    # the same estimator as PyHessian's (whose global seed 0 draws the probes of our seed 0):
    # pool its samples with an independent Hutchinson run for a steadier sample deviation
    hutch = trace(H, probes=probes, method="hutchinson", seed=1, progress=False)
    pooled_sd = float(torch.cat([s, hutch.samples]).std())
    for row in toolkit.values():
        # PyHessian needs (se_ph / se_ours)² times its samples to reach our standard error
        row["pyhessian_cpu_s_at_equal_stderr"] = c_ph * (se_ph / row["stderr"]) ** 2
        row["speedup_at_equal_stderr"] = row["pyhessian_cpu_s_at_equal_stderr"] / row["cpu_s"]
        pooled = (c_ph / len(s)) * (pooled_sd / row["stderr"]) ** 2
        row["speedup_at_equal_stderr_pooled_sd"] = pooled / row["cpu_s"]
    best = max(toolkit, key=lambda m: toolkit[m]["speedup_at_equal_stderr"])
    out["trace"] = {
        "probes": probes,
        "toolkit": toolkit,
        "best": best,
        "pyhessian": {
            "mean": float(s.mean()),
            "stderr": se_ph,
            "sample_sd": float(s.std()),
            "samples": len(s),
            "cpu_s": c_ph,
            "cpu_s_per_product": c_ph / len(s),
            "wall_s": w_ph,
        },
        "hutchinson_sample_sd_pooled": pooled_sd,
        "speedup_at_equal_stderr": toolkit[best]["speedup_at_equal_stderr"],
    }
    for m, row in toolkit.items():
        print(
            f"  {m}: SE {row['stderr']:.2f} in {row['cpu_s']:.1f} s CPU; pyhessian "
            f"{float(s.mean()):.2f} ± {se_ph:.2f} in {c_ph:.1f} s; at equal SE "
            f"{row['speedup_at_equal_stderr']:.1f}× faster "
            f"({row['speedup_at_equal_stderr_pooled_sd']:.1f}× with the pooled sd)",
            flush=True,
        )


def authors_loop(
    net: nn.Module, data: D.Dataset, coordinates: int, train_mode: bool = False
) -> tuple[torch.Tensor, float]:
    """The authors' diagonal: a differentiable gradient on one batch, then one backward pass per
    coordinate; returns the first `coordinates` entries and CPU seconds per coordinate.
    `train_mode`: BatchNorm with batch statistics (on a copy, whose running stats move)."""
    model = copy.deepcopy(net).train(train_mode)
    params = list(model.parameters())
    loss = F.cross_entropy(model(data.x), data.y)
    grads = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params, create_graph=True)])
    start = time.process_time()
    values = []
    for i in range(coordinates):
        row = torch.autograd.grad(grads[i], params, retain_graph=True)
        values.append(float(torch.cat([r.reshape(-1) for r in row])[i]))
    return torch.tensor(values), (time.process_time() - start) / coordinates


def section_diag(net, data, out, prefix: int, structured_limit: int | None = None):
    import backpack
    from backpack.extensions import DiagHessian

    res: dict[str, Any] = {}
    mlp = models.build("mlp", 10, data.in_shape, 0, hidden=(64,))
    H = Hessian(mlp, data)
    ours, c_ours, _ = clock(lambda: diagonal(H, progress=False))
    for _ in range(2):
        c_ours = min(c_ours, clock(lambda: diagonal(H, progress=False))[1])

    def run_backpack():
        ref = backpack.extend(copy.deepcopy(mlp))
        loss = backpack.extend(nn.CrossEntropyLoss())(ref(data.x), data.y)
        with backpack.backpack(DiagHessian()):
            loss.backward()
        return torch.cat([p.diag_h.reshape(-1) for p in ref.parameters()])

    bp, c_bp, _ = clock(run_backpack)
    for _ in range(2):
        c_bp = min(c_bp, clock(run_backpack)[1])
    grad_cpu = min(clock(H.gradient)[1] for _ in range(3))
    flat = torch.cat([v.reshape(-1) for v in ours.values.values()])
    loop_vals, loop_per = authors_loop(mlp, data, max(prefix, 20))
    res["mlp"] = {
        "params": H.dim,
        "toolkit_cpu_s": c_ours,
        "backpack_cpu_s": c_bp,
        "toolkit_over_backpack": c_ours / c_bp,
        "toolkit_over_gradient": c_ours / grad_cpu,
        "max_rel_diff_backpack": float(((flat - bp).abs() / bp.abs().clamp_min(1e-12)).max()),
        "max_abs_diff_backpack": float((flat - bp).abs().max()),
        "loop_cpu_s_per_coordinate": loop_per,
        "loop_cpu_s_extrapolated": loop_per * H.dim,
        "speedup_over_loop": loop_per * H.dim / c_ours,
        "loop_prefix_max_abs_diff": float((loop_vals - flat[: len(loop_vals)]).abs().max()),
    }
    print(
        f"  mlp diag: toolkit {c_ours * 1e3:.1f} ms, backpack {c_bp * 1e3:.1f} ms, loop "
        f"{loop_per * H.dim:.0f} s (extrapolated)",
        flush=True,
    )
    res["convnet3"] = diag_convnet3(net, data, prefix, structured_limit)
    res["convnet3_check"] = diag_structured_check(images=50, width=8)
    out["diag"] = res


def diag_convnet3(net, data, prefix: int, structured_limit: int | None) -> dict[str, Any]:
    """convnet3 (instance norm): the structured exact diagonal against the authors' loop and
    the one-hot route (both extrapolated from `prefix` coordinates), and the GGN diagonal.
    `structured_limit` times only that many early-block coordinates of the structured route
    and extrapolates its early part (None: the whole diagonal)."""
    Hc = Hessian(net, data)
    st, c_st, w_st = clock(
        lambda: diagonal(Hc, method="structured", limit=structured_limit, progress=False)
    )
    m = st.meta
    early_cpu = c_st * m["early_seconds"] / (m["closed_form_seconds"] + m["early_seconds"])
    closed_cpu = c_st - early_cpu
    early_full = early_cpu * m["early_coordinates"] / max(m["early_done"], 1)
    structured_cpu = closed_cpu + early_full
    Hc.hvp(Hc.random(torch.Generator().manual_seed(0), "gaussian"))  # build the graphs once
    one, c_one, _ = clock(lambda: diagonal(Hc, method="onehot", limit=prefix, progress=False))
    per_onehot = c_one / prefix
    loop_vals, loop_per = authors_loop(net, data, prefix)
    Hc.release()
    ggn, c_ggn, _ = clock(lambda: diagonal(Hc, method="ggn", progress=False))
    exact_prefix = torch.cat([v.reshape(-1) for v in one.values.values()])[:prefix]
    ggn_prefix = torch.cat([v.reshape(-1) for v in ggn.values.values()])[:prefix]
    st_prefix = torch.cat([v.reshape(-1) for v in st.values.values()])[:prefix]
    out = {
        "params": Hc.dim,
        "images": Hc.n,
        "prefix": prefix,
        "structured_cpu_s": structured_cpu,
        "structured_wall_s": w_st,
        "structured_closed_form_cpu_s": closed_cpu,
        "structured_early_cpu_s": early_full,
        "structured_early_coordinates": m["early_coordinates"],
        "structured_early_timed": m["early_done"],
        "structured_extrapolated": m["early_done"] < m["early_coordinates"],
        "structured_speedup_over_loop": loop_per * Hc.dim / structured_cpu,
        "structured_speedup_over_onehot": per_onehot * Hc.dim / structured_cpu,
        "prefix_max_abs_diff_structured_vs_loop": float((st_prefix - loop_vals).abs().max()),
        "onehot_cpu_s_per_coordinate": per_onehot,
        "onehot_cpu_s_extrapolated": per_onehot * Hc.dim,
        "loop_cpu_s_per_coordinate": loop_per,
        "loop_cpu_s_extrapolated": loop_per * Hc.dim,
        "onehot_speedup_over_loop": loop_per / per_onehot,
        "prefix_max_abs_diff_onehot_vs_loop": float((exact_prefix - loop_vals).abs().max()),
        "ggn_cpu_s": c_ggn,
        "ggn_speedup_over_loop": loop_per * Hc.dim / c_ggn,
        "ggn_prefix_rel_error": float(
            ((ggn_prefix - exact_prefix).abs() / exact_prefix.abs().clamp_min(1e-12)).max()
        ),
    }
    timed = (
        ""
        if not out["structured_extrapolated"]
        else (
            f" (early blocks extrapolated from {m['early_done']} of {m['early_coordinates']} "
            "coordinates)"
        )
    )
    print(
        f"  convnet3 diag ({Hc.n} images, {Hc.dim} coordinates): structured exact "
        f"{structured_cpu:.0f} CPU s (closed form {closed_cpu:.0f} s, early blocks "
        f"{early_full:.0f} s){timed}; loop {loop_per:.2f} s/coordinate = "
        f"{loop_per * Hc.dim / 3600:.0f} h -> {out['structured_speedup_over_loop']:.0f}x; "
        f"one-hot {per_onehot:.2f} s/coordinate -> {out['structured_speedup_over_onehot']:.0f}x; "
        f"ggn (approximate here) {c_ggn:.1f} s",
        flush=True,
    )
    return out


def diag_structured_check(images: int, width: int) -> dict[str, Any]:
    """The structured diagonal of a trained width-`width` convnet3 against its one-hot diagonal
    (every coordinate) on `images` images, in the model's float32."""
    net = trained_convnet3(width)
    data = D.load("mnist", "train")[:images]
    H = Hessian(net, data)
    st, c_st, _ = clock(lambda: diagonal(H, progress=False))
    one, c_one, _ = clock(lambda: diagonal(H, method="onehot", progress=False))
    a, b = st.flat(), one.flat()
    big = b.abs() > 1e-3 * b.abs().max()
    data64 = D.Dataset(data.x.double(), data.y, data.classes, data.name)
    ref = diagonal(Hessian(copy.deepcopy(net).double(), data64), progress=False).flat()
    out = {
        "width": width,
        "images": images,
        "params": H.dim,
        "route": st.route,
        "structured_cpu_s": c_st,
        "onehot_cpu_s": c_one,
        "max_abs_error_over_max": float((a - b).abs().max() / b.abs().max()),
        "max_rel_error_entries_above_1e-3_max": float(((a - b).abs() / b.abs())[big].max()),
        "relative_l2_error": float((a - b).norm() / b.norm()),
        "negative_fraction": float((b < 0).double().mean()),
        "float32_structured_vs_float64_max_over_max": float(
            (a - ref).abs().max() / ref.abs().max()
        ),
        "float32_onehot_vs_float64_max_over_max": float((b - ref).abs().max() / ref.abs().max()),
    }
    print(
        f"  convnet3 width {width}, {images} images, {H.dim} coordinates: structured vs one-hot "
        f"max |diff|/max {out['max_abs_error_over_max']:.1e}, max rel. error "
        f"{out['max_rel_error_entries_above_1e-3_max']:.1e} (entries > 1e-3 max), rel. L2 "
        f"{out['relative_l2_error']:.1e}; {c_st:.2f} s vs {c_one:.1f} s; against the float64 "
        f"structured diagonal: structured "
        f"{out['float32_structured_vs_float64_max_over_max']:.1e}, one-hot "
        f"{out['float32_onehot_vs_float64_max_over_max']:.1e} (max |diff|/max)",
        flush=True,
    )
    return out


def section_diag_bn(width: int, data: D.Dataset, out: dict, prefix: int) -> None:
    """Train-mode BatchNorm convnet3: the structured exact diagonal (all coordinates) against
    the authors' loop in train mode, extrapolated from `prefix` coordinates."""
    net = trained_convnet3(width, batchnorm=True)
    H = Hessian(net, data, bn="batch", batch_size=len(data))
    st, c_st, w_st = clock(lambda: diagonal(H, progress=False))
    loop_vals, loop_per = authors_loop(net, data, prefix, train_mode=True)
    first = st.flat()[:prefix]
    res = {
        "width": width,
        "images": H.n,
        "params": H.dim,
        "route": st.route,
        "structured_cpu_s": c_st,
        "structured_wall_s": w_st,
        "structured_closed_form_cpu_s": st.meta["closed_form_seconds"],
        "loop_cpu_s_per_coordinate": loop_per,
        "loop_cpu_s_extrapolated": loop_per * H.dim,
        "speedup_over_loop": loop_per * H.dim / c_st,
        "prefix_max_abs_diff_vs_loop": float((first - loop_vals).abs().max()),
        "prefix_max_abs": float(loop_vals.abs().max()),
    }
    small_net = trained_convnet3(8, batchnorm=True)
    small = data[:50]
    Hs = Hessian(small_net, small, bn="batch", batch_size=len(small))
    a, c_a, _ = clock(lambda: diagonal(Hs, progress=False))
    b, c_b, _ = clock(lambda: diagonal(Hs, method="onehot", progress=False))
    res["check_width8_50_images"] = {
        "params": Hs.dim,
        "structured_cpu_s": c_a,
        "onehot_cpu_s": c_b,
        "max_abs_error_over_max": float((a.flat() - b.flat()).abs().max() / b.flat().abs().max()),
    }
    out["diag_bn"] = res
    print(
        f"  convnet3 (train-mode BatchNorm) width {width}, {H.n} images, {H.dim} coordinates: "
        f"structured exact {c_st:.0f} CPU s; loop {loop_per:.2f} s/coordinate = "
        f"{loop_per * H.dim / 3600:.0f} h -> {res['speedup_over_loop']:.0f}x; prefix max |diff| "
        f"{res['prefix_max_abs_diff_vs_loop']:.1e} (max {res['prefix_max_abs']:.1e}); width 8, "
        f"50 images: vs one-hot max |diff|/max "
        f"{res['check_width8_50_images']['max_abs_error_over_max']:.1e} ({c_a:.2f} s vs "
        f"{c_b:.1f} s)",
        flush=True,
    )


def analyse(net, data, mask, label, out, probes, runs, steps):
    H = Hessian(net, data, mask=mask)
    eig, c_e, _ = clock(lambda: top_eigenvalues(H, k=1, which="LA", progress=False))
    tr, c_t, _ = clock(lambda: trace(H, probes=probes, progress=False))
    dg, c_d, _ = clock(lambda: diagonal(H, method="exact", progress=False))
    sp, c_s, _ = clock(lambda: density(H, runs=runs, steps=steps, progress=False))
    peak = int(sp.density.argmax())
    out[label] = {
        "dim": H.dim,
        "top_eigenvalue": eig.top,
        "top_bound": float(eig.bounds[0]),
        "top_cpu_s": c_e,
        "top_products": eig.products,
        "trace": tr.mean,
        "trace_stderr": tr.stderr,
        "trace_cpu_s": c_t,
        "trace_probes": probes,
        "trace_method": tr.method,
        "diagonal_route": dg.route,
        "diagonal_exact": dg.exact,
        "diagonal": dg.summary(),
        "diagonal_cpu_s": c_d,
        "density_runs": runs,
        "density_steps": steps,
        "density_cpu_s": c_s,
        "density_integral": sp.integral(),
        "density_peak_at": float(sp.grid[peak]),
        "density_min_node": float(sp.nodes.min()),
        "density_max_node": float(sp.nodes.max()),
        "density_moment1_times_dim": sp.moment(1) * sp.dim,
    }
    print(
        f"  {label}: λmax {eig.top:.4f} ({c_e:.0f} s), trace {tr.mean:.1f} ± {tr.stderr:.1f} "
        f"({c_t:.0f} s), diag mean {dg.summary()['mean']:.3e} ({c_d:.0f} s), density "
        f"[{float(sp.nodes.min()):.3f}, {float(sp.nodes.max()):.3f}] ({c_s:.0f} s)",
        flush=True,
    )


def section_results(net, data, out, probes, runs, steps):
    res: dict[str, Any] = {}
    analyse(net, data, None, "dense", res, probes, runs, steps)
    mask = magnitude_mask(net, 0.8)
    train_data = D.load("mnist", "train")
    config = TrainConfig(epochs=1, lr=0.02, batch_size=64)
    pruned = train(net, train_data, config, data_seed=1, mask=mask, progress=False).model(net)
    analyse(pruned, data, mask, "pruned80", res, probes, runs, steps)
    out["results"] = res


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sections", nargs="*", default=list(SECTIONS), choices=SECTIONS)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--images", type=int, default=1000, help="images for hvp, diag and results")
    p.add_argument("--eigen-images", type=int, default=250, help="images for eigen and trace")
    p.add_argument("--trace-probes", type=int, default=30)
    p.add_argument("--trace-seeds", type=int, default=3, help="seeds of the default trace")
    p.add_argument("--prefix", type=int, default=3, help="coordinates timed in the loops")
    p.add_argument(
        "--structured-limit",
        type=int,
        default=None,
        help="early-block coordinates timed in the structured diagonal (default: all)",
    )
    p.add_argument("--probes", type=int, default=30, help="trace probes in results")
    p.add_argument("--runs", type=int, default=2, help="SLQ runs in results")
    p.add_argument("--steps", type=int, default=30, help="SLQ steps in results")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out: dict[str, Any] = {
        "args": vars(args),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    train_data = D.load("mnist", "train")
    net, c_train, _ = clock(lambda: trained_convnet3(args.width))
    out["train_cpu_s"] = c_train
    data = train_data[: args.images]
    small = train_data[: args.eigen_images]
    for s in args.sections:
        print(f"[{s}]", flush=True)
        if s == "hvp":
            section_hvp(net, data, out)
        elif s == "eigen":
            section_eigen(net, small, out)
        elif s == "trace":
            section_trace(net, small, out, args.trace_probes, args.trace_seeds)
        elif s == "diag":
            section_diag(net, data, out, args.prefix, args.structured_limit)
        elif s == "diag_bn":
            section_diag_bn(args.width, data, out, args.prefix)
        elif s == "results":
            section_results(net, data, out, args.probes, args.runs, args.steps)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1, default=float)
    return out


if __name__ == "__main__":
    main()
