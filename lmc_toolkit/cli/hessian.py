"""`lmc-toolkit hessian`: curvature of a trained network (top eigenvalues, trace, diagonal,
spectral density), a thin layer over `lmc_toolkit.hessian`."""

from __future__ import annotations

import argparse
import json

from lmc_toolkit.cli.arguments import nonnegative_int, output_file, positive_int, regex
from lmc_toolkit.cli.common import add_common, add_train_options, command, train_run_of
from lmc_toolkit.cli.inputs import add_checkpoints, read_checkpoint, read_data


@command("hessian", "Hessian of a trained model: top eigenvalues, trace, diagonal, density")
def cmd_hessian(args: argparse.Namespace) -> int:
    from lmc_toolkit.hessian.diagonal_estimators import diagonal
    from lmc_toolkit.hessian.operator import Hessian
    from lmc_toolkit.hessian.spectrum import density, top_eigenvalues
    from lmc_toolkit.hessian.trace_estimators import trace
    from lmc_toolkit.store.runs import Store
    from lmc_toolkit.training.runs import train_run

    run = train_run_of(args)
    progress = not args.no_progress
    if len(args.checkpoint) > 1:
        raise ValueError(f"hessian takes one --checkpoint, got {len(args.checkpoint)}")
    data = read_data(run.data, "train", args.data_root)[: args.images]
    if args.checkpoint:
        model = read_checkpoint(args.checkpoint[0], args, data, args.device)
        source = f"checkpoint {args.checkpoint[0]}"
    else:
        result = train_run(run, Store(args.store), args.device, progress, args.data_root)
        model, source = result.model(device=args.device), str(run)
    H = Hessian(model, data, bn=args.bn, select=args.select or None)
    print(f"{source} on {len(data)} {run.data} images: {H}")
    out: dict = {"run": source, "operator": H.meta()}
    if args.k > 0:
        eig = top_eigenvalues(H, k=args.k, which=args.which, seed=args.seed, progress=progress)
        vals = ", ".join(f"{v:.5g}" for v in eig.values.tolist())
        print(
            f"  top-{args.k} ({args.which}): {vals}  ({eig.products} products, {eig.seconds:.1f} s)"
        )
        out["eigen"] = eig.to_dict()
    if args.probes > 0:
        tr = trace(H, probes=args.probes, seed=args.seed, progress=progress)
        print(
            f"  trace: {tr.mean:.5g} ± {tr.stderr:.2g}  ({tr.products} products, {tr.seconds:.1f} s)"
        )
        out["trace"] = tr.to_dict()
    if args.diagonal != "none":
        dg = diagonal(H, method=args.diagonal, seed=args.seed, progress=progress)
        s = dg.summary()
        print(
            f"  diagonal ({dg.route}, {'exact' if dg.exact else 'not exact'}): mean {s['mean']:.4g}"
            f", median {s['median']:.4g}, max {s['max']:.4g}  ({dg.seconds:.1f} s)"
        )
        out["diagonal"] = {"route": dg.route, "exact": dg.exact, "summary": s}
    if args.runs > 0:
        sp = density(H, runs=args.runs, steps=args.slq_steps, seed=args.seed, progress=progress)
        print(
            f"  density: nodes in [{float(sp.nodes.min()):.4g}, {float(sp.nodes.max()):.4g}]"
            f"  ({sp.products} products, {sp.seconds:.1f} s)"
        )
        out["density"] = sp.to_dict()
        if args.html:
            sp.plot(log_y=True).write_html(args.html, include_plotlyjs=True)
            print(f"  density figure written to {args.html}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
        print(f"  results written to {args.json}")
    return 0


def _configure_hessian(p: argparse.ArgumentParser) -> None:
    add_train_options(p)
    add_checkpoints(p, "this network")
    p.add_argument(
        "--images", type=positive_int, default=1000, help="training images the loss averages"
    )
    p.add_argument("--bn", default="eval", choices=("eval", "batch"))
    p.add_argument(
        "--select", action="append", default=[], type=regex, help="parameter name or regex"
    )
    p.add_argument("--k", type=nonnegative_int, default=1, help="top eigenvalues (0: skip)")
    p.add_argument("--which", default="LA", choices=("LA", "LM", "SA"))
    p.add_argument(
        "--probes",
        type=nonnegative_int,
        default=30,
        help="trace probes (0: skip; the estimator is trace()'s default)",
    )
    p.add_argument(
        "--diagonal",
        default="none",
        choices=("none", "exact", "ggn", "hutchinson"),
        help="diagonal method (exact: one pass per class on piecewise-linear nets, a structured "
        "route on instance-norm convnets, else one product per coordinate)",
    )
    p.add_argument("--runs", type=nonnegative_int, default=2, help="SLQ runs (0: skip the density)")
    p.add_argument("--slq-steps", type=positive_int, default=30, help="Lanczos steps per SLQ run")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="probe and start-vector seed")
    p.add_argument("--json", type=output_file, default=None, help="write the results here")
    p.add_argument("--html", type=output_file, default=None, help="write the density figure here")
    add_common(p)


cmd_hessian.configure = _configure_hessian
