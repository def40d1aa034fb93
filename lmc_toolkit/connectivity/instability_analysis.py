"""Instability analysis (Frankle et al. 2020): are copies spawned at step k linearly connected?

The recipe: train from the initial weights to step k with the first data seed (k = 0 is the
init itself); from that spawn point, train copies to the end with different data seeds (masked
when a mask is given: the whole recipe runs on the subnetwork); interpolate each pair. A pair
is stable when its error barrier is about zero. Spawn points and children are cached in the
store under frozen config dataclasses that fingerprint the initial weights, the data and the
mask, so `instability_vs_k` and reruns reuse them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from torch import Tensor, nn

from lmc_toolkit.checks import check_choice
from lmc_toolkit.connectivity.aligned import ALIGN_METHODS, AlignedCurve
from lmc_toolkit.connectivity.instability_result import Instability, InstabilityCurve
from lmc_toolkit.connectivity.interpolation import alpha_grid, interpolate
from lmc_toolkit.connectivity.spawning import (
    SPAWNS,
    ChildRun,
    RewoundChildRun,
    SpawnRun,
    child_seeds,
    rewound,
    spawn_run,
    train_child,
    train_spawn,
)
from lmc_toolkit.data.dataset import Dataset
from lmc_toolkit.data.entrance import DataLike, as_dataset
from lmc_toolkit.landscape.curve import Curve
from lmc_toolkit.store.runs import Store
from lmc_toolkit.training.batchnorm import BNPolicy, as_policy
from lmc_toolkit.training.config import TrainConfig
from lmc_toolkit.training.loop import check_classes
from lmc_toolkit.training.params import check_mask, is_finite, state_of
from lmc_toolkit.training.probe import check_model_input
from lmc_toolkit.training.results import TrainResult


def instability(
    model: nn.Module,
    train_data: DataLike,
    eval_data: DataLike,
    config: TrainConfig,
    k: int = 0,
    *,
    mask: Mapping[str, Tensor] | None = None,
    data_seeds: Sequence[int] = (0, 1),
    pairs: int = 1,
    store: Store | None = None,
    alphas: int | Sequence[float] = 31,
    bn: str | BNPolicy = "recalibrate",
    progress: bool = True,
    align: str = "none",
    spawn: str = "masked",
    **evaluator_options: Any,
) -> Instability:
    """Frankle et al.'s instability analysis of `model` (its current weights are the init).

    Trains to step `k` with `data_seeds[0]`, then `pairs` disjoint pairs of children to the end
    of `config` (their data seeds from `child_seeds`), and interpolates each pair on
    `eval_data`. With a mask, `spawn="masked"` trains the subnetwork to step k; `spawn="dense"`
    trains the dense network to θ_k and starts the copies from θ_k ⊙ mask (Frankle et al.'s IMP
    subnetworks rewound to iteration k; the same at k = 0).

    Args:
        model: The network at initialization (not changed).
        train_data: What every copy trains on (a loader must not shuffle: the data order comes
            from the data seeds).
        eval_data: What the pairs are interpolated on.
        config: The training recipe of the spawn run and of every child.
        k: The spawn step (0: the children start from the init).
        mask: The subnetwork's mask (name → bool tensor, True = kept); None: dense.
        data_seeds: The data order of the spawn run (the first) and the children's seeds.
        pairs: How many disjoint pairs of children (two or more give a barrier its SGD noise).
        store: A run store: spawn points and children are trained once and reloaded.
        alphas: Interpolation points in [0, 1] (a count or the values).
        bn: The BatchNorm policy of the interpolation; `"recalibrate"` uses fixed batches of
            `train_data`.
        progress: Show progress bars.
        align: `"none"`, or `"weights"` / `"activations"`: each pair's second child is aligned
            onto the first before interpolating (the barriers without alignment are kept in
            `unaligned`).
        spawn: `"masked"` or `"dense"` (see above).
        **evaluator_options: Passed to the `Evaluator` (method, batch_size, compile, ...).

    Returns:
        An `Instability`: the spawn step, the children, each pair's curve and its error and loss
        barriers.
    """
    check_choice("align", align, ALIGN_METHODS)
    check_choice("spawn", spawn, SPAWNS)
    train_data, eval_data = _check(model, train_data, eval_data, config, [k], mask)
    seed_pairs = child_seeds(data_seeds, pairs)
    alpha_grid(alphas)
    policy = as_policy(bn)
    start = time.perf_counter()
    spawn_key = spawn_run(model, train_data, config, k, int(data_seeds[0]), mask)
    seeds = [s for pair in seed_pairs for s in pair]
    children = _children(
        model, train_data, config, spawn_key, seeds, mask, spawn, store=store, progress=progress
    )
    trained = time.perf_counter() - start
    along: dict[str, Any] = {"alphas": alphas, "bn": policy, "mask": mask, "bn_data": train_data}
    along |= {"progress": progress, "align": align, "align_data": train_data}
    curves, unaligned = _pair_curves(
        model, children, eval_data, seed_pairs, k, along | evaluator_options
    )
    spawned = spawn if mask is not None and k > 0 else "masked"
    meta = {
        **_identity(train_data, eval_data, spawn_key, spawned),
        "train_seconds": trained,
        "seconds": time.perf_counter() - start,
        "child_accuracy": _child_accuracy(seed_pairs, curves),
    }
    return Instability(
        k=int(k),
        pairs=seed_pairs,
        curves=tuple(curves),
        **_barriers(curves),
        children=children,
        config=config,
        bn=policy.mode,
        meta=meta,
        align=align,
        unaligned=_barriers(unaligned) if unaligned else None,
    )


def _identity(train_data: Dataset, eval_data: Dataset, key: SpawnRun, spawn: str) -> dict[str, Any]:
    """What an analysis records of its data, weights, mask and spawning."""
    return {
        "train_data": train_data.name,
        "eval_data": eval_data.name,
        "spawn_seed": key.data_seed,
        "model_fingerprint": key.model,
        "mask_fingerprint": key.mask,
        "spawn": spawn,
    }


def _pair_curves(
    model: nn.Module,
    children: Mapping[int, TrainResult],
    eval_data: Dataset,
    seed_pairs: Sequence[tuple[int, int]],
    k: int,
    options: Mapping[str, Any],
) -> tuple[list[Curve], list[Curve]]:
    """Each pair's interpolation curve (`interpolate(..., **options)`), after alignment where
    `options` ask for it, and the curves before alignment (empty without it)."""
    curves, unaligned = [], []
    for s1, s2 in seed_pairs:
        a, b = children[s1].model(model), children[s2].model(model)
        result = interpolate(a, b, eval_data, label=f"k={k}: seeds {s1}–{s2}", **options)
        if isinstance(result, AlignedCurve):
            unaligned.append(result.before)
            result = result.after
        curves.append(result)
    return curves, unaligned


def _children(
    model: nn.Module,
    train_data: Dataset,
    config: TrainConfig,
    spawn_key: SpawnRun,
    seeds: Sequence[int],
    mask: Mapping[str, Tensor] | None,
    spawn: str,
    *,
    store: Store | None,
    progress: bool,
) -> dict[int, TrainResult]:
    """The children trained from `spawn_key`'s spawn point, one per data seed in `seeds`."""
    children: dict[int, TrainResult] = {}
    if spawn_key.step == 0 and store is not None:
        # copies spawned at init are the tickets θ0 ⊙ mask trained with each seed (bit for bit),
        # so they share the tickets' store entries with the ticket tables and F1/F2
        from lmc_toolkit.pruning.tickets import train_ticket

        for seed in seeds:
            children[seed] = train_ticket(
                model, mask, train_data, config, seed, store=store, progress=progress
            )
    elif spawn == "dense" and mask is not None:
        dense_key = spawn_run(model, train_data, config, spawn_key.step, spawn_key.data_seed, None)
        first = rewound(
            train_spawn(model, train_data, config, dense_key, None, store, progress), mask
        )
        for seed in seeds:
            key = RewoundChildRun(dense_key, spawn_key.mask, seed)
            children[seed] = train_child(model, train_data, first, key, mask, store, progress)
    else:
        point = train_spawn(model, train_data, config, spawn_key, mask, store, progress)
        for seed in seeds:
            children[seed] = train_child(
                model, train_data, point, ChildRun(spawn_key, seed), mask, store, progress
            )
    return children


def _barriers(curves: Sequence[Curve]) -> dict[str, np.ndarray]:
    return {
        "error_barriers": np.array([c.barrier("error").value for c in curves]),
        "loss_barriers": np.array([c.barrier("loss").value for c in curves]),
    }


def _child_accuracy(pairs: Sequence[tuple[int, int]], curves: Sequence[Curve]) -> dict[str, float]:
    """Each child's accuracy on the evaluation data: the ends (α = 0, 1) of its pair's curve."""
    out = {}
    for (s1, s2), c in zip(pairs, curves, strict=True):
        out[str(s1)] = float(c.accuracy[np.argmin(np.abs(c.alphas))])
        out[str(s2)] = float(c.accuracy[np.argmin(np.abs(c.alphas - 1))])
    return out


def _check(
    model: nn.Module,
    train_data: DataLike,
    eval_data: DataLike,
    config: TrainConfig,
    ks: Sequence[int],
    mask: Mapping[str, Tensor] | None,
) -> tuple[Dataset, Dataset]:
    """Every check before training; the data as toolkit `Dataset`s (a loader read once)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    train_data = as_dataset(train_data, "train_data", ordered=True)
    eval_data = as_dataset(eval_data, "eval_data")
    check_model_input(model, train_data, "train_data")
    check_model_input(model, eval_data, "eval_data")
    check_classes(model, train_data)
    if not is_finite(state_of(model)):
        raise ValueError("the model has NaN or inf weights")
    check_mask(dict(model.named_parameters()), mask)
    from lmc_toolkit.data.dataset import num_batches

    total = config.total_steps(num_batches(len(train_data), config.batch_size))
    for k in ks:
        if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k < total:
            raise ValueError(
                f"the spawn step k must be an int in [0, {total}) for this run, got {k!r}"
            )
    return train_data, eval_data


def instability_vs_k(
    model: nn.Module,
    train_data: DataLike,
    eval_data: DataLike,
    config: TrainConfig,
    ks: Sequence[int],
    *,
    mask: Mapping[str, Tensor] | None = None,
    data_seeds: Sequence[int] = (0, 1),
    pairs: int = 1,
    store: Store | None = None,
    label: str = "",
    **options: Any,
) -> InstabilityCurve:
    """`instability` at every spawn step in `ks` (figure F3); every check runs before any training.

    Args:
        model: The network at initialization (not changed).
        train_data: What every copy trains on.
        eval_data: What the pairs are interpolated on.
        config: The training recipe.
        ks: The spawn steps.
        mask: The subnetwork's mask (None: dense).
        data_seeds: The spawn run's data order (the first) and the children's seeds.
        pairs: Disjoint pairs of children per spawn step.
        store: A run store (each spawn point and child trained once).
        label: The curve's name in plots.
        **options: Passed to `instability` (alphas, bn, align, spawn, evaluator options).

    Returns:
        An `InstabilityCurve`: the steps and one `Instability` per step.
    """
    ks = [int(k) for k in ks]
    if not ks:
        raise ValueError("ks must name at least one spawn step")
    train_data, eval_data = _check(model, train_data, eval_data, config, ks, mask)
    child_seeds(data_seeds, pairs)
    results = tuple(
        instability(
            model,
            train_data,
            eval_data,
            config,
            k,
            mask=mask,
            data_seeds=data_seeds,
            pairs=pairs,
            store=store,
            **options,
        )
        for k in ks
    )
    return InstabilityCurve(tuple(ks), results, label)
