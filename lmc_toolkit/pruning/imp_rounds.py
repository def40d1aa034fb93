"""Iterative magnitude pruning with rewinding, and distilled pruning (IMP on synthetic data).

One IMP run is a sequence of rounds r = 0, 1, ..., R. Round r trains the network under mask m_r
(m_0 keeps everything) on the pruning data, then m_{r+1} prunes `rate` of the weights m_r still
keeps, by magnitude. What a round starts from is set by `ImpConfig.rewind` (see
`lmc_toolkit.pruning.imp_config`).

Distilled pruning is `imp(..., prune_data=<a synthetic Dataset>)` (`distilled_pruning`): the
inner training runs on the small synthetic set; with `rewind="init"` the mask found is a ticket
at the original initialization. `combined` runs distilled pruning for the first rounds, then IMP
on real data from that mask.

With a `Store`, each round is saved as soon as it finishes, in the run folder named by `ImpRun`
(the pruning data's fingerprint, the model and its initialization, the `ImpConfig` without
`rounds`, the data seed and the starting mask): a second call loads what is there and trains only
the missing rounds, so an interrupted run resumes from its last finished round, bit for bit, and
asking for more rounds later extends the same run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, replace
from functools import partial
from typing import Any

from torch import Tensor, nn
from tqdm.auto import tqdm

from lmc_toolkit.checks import check_int
from lmc_toolkit.data.dataset import Dataset, num_batches
from lmc_toolkit.data.entrance import as_dataset
from lmc_toolkit.pruning.imp_config import ImpConfig, ImpRun
from lmc_toolkit.pruning.imp_level import ImpPlan, RewindPoint, RoundRecord, train_round
from lmc_toolkit.pruning.imp_result import ImpResult, ImpRound
from lmc_toolkit.pruning.mask import Mask, check_compatible
from lmc_toolkit.pruning.prune import magnitude
from lmc_toolkit.store.runs import Store
from lmc_toolkit.training.config import TrainConfig
from lmc_toolkit.training.evaluation import evaluate
from lmc_toolkit.training.identity import data_fingerprint, model_identity, with_init_seed
from lmc_toolkit.training.loop import check_classes
from lmc_toolkit.training.params import with_state
from lmc_toolkit.training.probe import check_model_input
from lmc_toolkit.training.results import Metrics


def imp(
    model: nn.Module,
    train_data: Dataset,
    config: ImpConfig | None = None,
    *,
    prune_data: Dataset | None = None,
    eval_data: Dataset | None = None,
    init_seed: int | None = None,
    data_seed: int = 0,
    store: Store | None = None,
    progress: bool = True,
    mask: Mapping[str, Tensor] | None = None,
    recompute: bool = False,
) -> ImpResult:
    """Iterative magnitude pruning of `model`: train, prune the smallest weights, rewind, repeat.
    With `store`, finished rounds are loaded instead of trained and each new round is saved when
    it finishes (an interrupted run resumes from its last finished round). The caller's model is
    not changed.

    Args:
        model: The network at θ0.
        train_data: The real training data (the inner training's default).
        config: Rounds, rate, scope, rewind point and the inner training (default: `ImpConfig()`).
        prune_data: What every round trains on (default: `train_data`); a small synthetic set
            gives distilled pruning.
        eval_data: Gives each round's accuracy.
        init_seed: Rebuild θ0 from this seed instead of `model`'s weights.
        data_seed: The data order of every round's training.
        store: A run store.
        progress: Show progress bars.
        mask: Start from this mask instead of "everything kept" (`combined` uses it).
        recompute: Retrain and overwrite what the store holds.

    Returns:
        An `ImpResult` of `config.rounds + 1` rounds (round 0 is the starting mask), each with
        its mask, trained weights, accuracy and cost.
    """
    config = config or ImpConfig()
    if not isinstance(config, ImpConfig):
        raise TypeError(f"config must be an ImpConfig, got {type(config).__name__}")
    data_seed = check_int("data_seed", data_seed, error=TypeError)
    if init_seed is not None:
        check_int("init_seed", init_seed, error=TypeError)
    net0 = with_init_seed(model, init_seed)
    train_data, prune_data, eval_data = _checked_data(net0, train_data, prune_data, eval_data)
    total = _inner_steps(config, prune_data)
    start = _start_mask(net0, config, mask)
    key = ImpRun(
        prune_data=prune_data.name,
        prune_data_hash=data_fingerprint(prune_data),
        config=replace(config, rounds=ImpConfig().rounds),
        data_seed=data_seed,
        start_mask="" if mask is None else start.digest(),
        **model_identity(net0),
    )
    plan = ImpPlan(
        net0=net0,
        data=prune_data,
        config=config,
        total=total,
        data_seed=data_seed,
        start=start,
        run=store.run(key) if store is not None else None,
        store=store,
        recompute=recompute,
        eval_data=eval_data,
        eval_id=None if eval_data is None else data_fingerprint(eval_data),
        progress=progress,
    )
    return _rounds(plan, train_size=len(train_data))


def _checked_data(
    net0: nn.Module, train_data: Any, prune_data: Any, eval_data: Any
) -> tuple[Dataset, Dataset, Dataset | None]:
    """The data arguments as `Dataset`s that fit `net0` (a shuffling loader is refused where
    the run must be reproducible); `prune_data` defaults to `train_data`."""
    train = as_dataset(train_data, "train_data", ordered=True)
    prune = train if prune_data is None else as_dataset(prune_data, "prune_data", ordered=True)
    held_out = None if eval_data is None else as_dataset(eval_data, "eval_data")
    for what, d in (("train_data", train), ("prune_data", prune), ("eval_data", held_out)):
        if d is not None:
            check_model_input(net0, d, what)
            check_classes(net0, d)
    return train, prune, held_out


def _inner_steps(config: ImpConfig, prune_data: Dataset) -> int:
    """The steps of one round's training on `prune_data`, checked against the rewind step."""
    tc = config.train
    total = tc.total_steps(num_batches(len(prune_data), tc.batch_size))
    if total == 0:
        raise ValueError("the inner training has 0 steps: nothing would be learned")
    if config.rewind_step is not None and config.rewind_step >= total:
        raise ValueError(
            f"rewind step {config.rewind} lies beyond training: the inner training on "
            f"prune_data ({len(prune_data)} images) is {total} steps, so k must be < {total}"
        )
    return total


def _start_mask(net0: nn.Module, config: ImpConfig, mask: Mapping[str, Tensor] | None) -> Mask:
    """Round 0's mask: `mask` where given (checked against the network), else every
    prunable weight kept."""
    if mask is None:
        return Mask.ones(net0, first=config.prune_first, last=config.prune_last)
    given = mask if isinstance(mask, Mask) else Mask(mask)
    check_compatible(given, dict(net0.named_parameters()))
    return given


def _rounds(plan: ImpPlan, train_size: int) -> ImpResult:
    """Rounds 0..R of `plan`: each loaded from the run folder when it is there, else trained
    and saved at once (so an interrupted run resumes from its last finished round)."""
    config, run = plan.config, plan.run
    rounds: list[ImpRound] = []
    rewind: RewindPoint | None = None
    mask_samples, mask_seconds = 0, 0.0
    bar = tqdm(range(config.rounds + 1), desc="imp rounds", disable=not plan.progress)
    for r in bar:
        previous = rounds[-1] if rounds else None
        record, rewind, eval_metrics = _round(plan, r, previous, rewind)
        mask_seconds += record.prune_seconds
        rnd = ImpRound(
            round=r,
            mask=record.mask,
            state=record.state,
            data=plan.data.name,
            steps=record.steps,
            samples=record.samples,
            train_seconds=record.train_seconds,
            prune_seconds=record.prune_seconds,
            mask_samples=mask_samples,
            mask_seconds=mask_seconds,
            train_loss=record.train_loss,
            train_accuracy=record.train_accuracy,
            eval=eval_metrics,
        )
        rounds.append(rnd)
        mask_samples += rnd.samples
        mask_seconds += rnd.train_seconds
        acc = "" if rnd.accuracy is None else f"{rnd.accuracy:.3f}"
        bar.set_postfix(sparsity=f"{rnd.sparsity:.3f}", acc=acc)
    bar.close()
    return ImpResult(
        config=config,
        rounds=tuple(rounds),
        data_seed=plan.data_seed,
        spec=getattr(plan.net0, "spec", None),
        prune_size=len(plan.data),
        train_size=train_size,
        rewind_state=None if rewind is None else rewind.state,
        run=None if run is None else run.path.name,
    )


def _round(
    plan: ImpPlan, r: int, previous: ImpRound | None, rewind: RewindPoint | None
) -> tuple[RoundRecord, RewindPoint | None, Metrics | None]:
    """Round r from the run folder, or trained (and saved): its record, the rewind point, its
    metrics on the evaluation data. A corrupt stored round is trained again: it is
    determined by the rounds before it."""
    name = f"round-{r:03d}"
    run, k = plan.run, plan.config.rewind_step
    stored = None
    if run is not None and not plan.recompute:
        stored = run.load_or(name, None, "training the round again")
    if stored is not None:
        if r == 0 and k is not None:
            rewind = RewindPoint.from_dict(stored["rewind"])
        return RoundRecord.from_dict(stored), rewind, _stored_eval(plan, stored, name)
    record, rewind = train_round(plan, r, previous, rewind)
    metrics = None
    if plan.eval_data is not None:
        metrics = evaluate(with_state(plan.net0, record.state), plan.eval_data)
    if run is not None:
        payload = dict(record.to_dict(), eval_data=plan.eval_id)
        payload["eval"] = None if metrics is None else asdict(metrics)
        if r == 0 and rewind is not None:
            payload["rewind"] = rewind.to_dict()
        run.save(name, payload)
    return record, rewind, metrics


def _stored_eval(plan: ImpPlan, stored: Mapping[str, Any], name: str) -> Metrics | None:
    """A stored round's metrics on the evaluation data: kept when they were taken on the
    same data, else evaluated now and saved with the round."""
    if plan.eval_data is None:
        return None
    if stored.get("eval") is not None and stored.get("eval_data") == plan.eval_id:
        return Metrics(**stored["eval"])
    metrics = evaluate(with_state(plan.net0, stored["state"]), plan.eval_data)
    assert plan.run is not None  # a stored round came from the run folder
    plan.run.save(name, dict(stored, eval=asdict(metrics), eval_data=plan.eval_id))
    return metrics


def distilled_pruning(
    model: nn.Module,
    train_data: Dataset,
    synthetic: Dataset,
    config: ImpConfig | None = None,
    **kwargs: Any,
) -> ImpResult:
    """IMP whose inner training runs on `synthetic` (a distilled or otherwise small set), the
    weights rewound to the original initialization by default.

    Args:
        model: The network at θ0 (not changed).
        train_data: The real training data (its size is recorded; tickets train on it later).
        synthetic: The set every round's inner training runs on.
        config: Rounds, rate, scope, rewind point and the inner training (default: `ImpConfig()`).
        **kwargs: `imp`'s other keywords (eval_data, init_seed, data_seed, store, ...).

    Returns:
        An `ImpResult`: `imp(model, train_data, config, prune_data=synthetic, ...)`.
    """
    result = imp(model, train_data, config, prune_data=synthetic, **kwargs)
    return replace(result, method="distilled")


def combined(
    model: nn.Module,
    train_data: Dataset,
    synthetic: Dataset,
    config: ImpConfig,
    distilled_rounds: int,
    *,
    synthetic_train: TrainConfig | None = None,
    eval_data: Dataset | None = None,
    init_seed: int | None = None,
    data_seed: int = 0,
    store: Store | None = None,
    progress: bool = True,
) -> ImpResult:
    """Distilled pruning for the first `distilled_rounds` prunings, then IMP on `train_data` from
    that mask up to `config.rounds` in all (the successor paper's method). Rounds 0 … r0−1 are
    trained on `synthetic`, rounds r0 … R on `train_data`; each round's `mask_samples` counts
    both phases.

    Args:
        model: The network at θ0 (not changed).
        train_data: The real training data of the IMP phase.
        synthetic: The distilled (or small) set of the first phase.
        config: Rounds, rate, scope, rewind point and the IMP phase's training.
        distilled_rounds: r0, the prunings done on `synthetic` (1 to `config.rounds`).
        synthetic_train: The inner training on `synthetic` (default: `config.train`).
        eval_data: Gives each round's accuracy.
        init_seed: Rebuild θ0 from this seed instead of `model`'s weights.
        data_seed: The data order of every round's training.
        store: A run store: finished rounds are loaded instead of trained.
        progress: Show progress bars.

    Returns:
        An `ImpResult` of rounds 0 … `config.rounds`.
    """
    r0 = distilled_rounds
    if isinstance(r0, bool) or not isinstance(r0, int) or not 1 <= r0 <= config.rounds:
        raise ValueError(f"distilled_rounds must be an int in [1, {config.rounds}], got {r0!r}")
    dconfig = replace(config, rounds=r0 - 1, train=synthetic_train or config.train)
    run = partial(
        imp,
        model,
        train_data,
        eval_data=eval_data,
        init_seed=init_seed,
        data_seed=data_seed,
        store=store,
        progress=progress,
    )
    first = run(dconfig, prune_data=synthetic)
    last = first.rounds[-1]
    t0 = time.perf_counter()
    handoff = magnitude(last.state, config.rate, last.mask, config.scope)
    seconds = time.perf_counter() - t0
    rest = run(replace(config, rounds=config.rounds - r0), mask=handoff)
    base_samples = last.mask_samples + last.samples
    base_seconds = last.mask_seconds + last.train_seconds + seconds
    shifted = tuple(
        replace(
            rnd,
            round=rnd.round + r0,
            mask_samples=rnd.mask_samples + base_samples,
            mask_seconds=rnd.mask_seconds + base_seconds,
            prune_seconds=seconds if rnd.round == 0 else rnd.prune_seconds,
        )
        for rnd in rest.rounds
    )
    return replace(rest, config=config, rounds=first.rounds + shifted, method="combined")
