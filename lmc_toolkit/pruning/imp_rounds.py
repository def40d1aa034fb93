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

import copy
import time
from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import Any

from torch import Tensor, nn
from tqdm.auto import tqdm

from lmc_toolkit.checks import check_int
from lmc_toolkit.data.dataset import Dataset, num_batches
from lmc_toolkit.data.entrance import as_dataset
from lmc_toolkit.pruning.imp_config import ImpConfig, ImpRun, samples_seen
from lmc_toolkit.pruning.imp_result import ImpResult, ImpRound
from lmc_toolkit.pruning.mask import Mask, check_compatible
from lmc_toolkit.pruning.prune import magnitude
from lmc_toolkit.store.runs import Store
from lmc_toolkit.training.config import TrainConfig
from lmc_toolkit.training.evaluation import evaluate
from lmc_toolkit.training.identity import data_fingerprint, model_identity, with_init_seed
from lmc_toolkit.training.loop import check_classes, train
from lmc_toolkit.training.params import with_state
from lmc_toolkit.training.probe import check_model_input
from lmc_toolkit.training.results import Checkpoint, Metrics


def imp(
    model: nn.Module,
    train_data: Dataset,
    config: ImpConfig | None = None,
    prune_data: Dataset | None = None,
    eval_data: Dataset | None = None,
    init_seed: int | None = None,
    data_seed: int = 0,
    store: Store | None = None,
    progress: bool = True,
    mask: Mapping[str, Tensor] | None = None,
    recompute: bool = False,
) -> ImpResult:
    """Iterative magnitude pruning of `model` (θ0: its weights, or with `init_seed` the same
    architecture rebuilt from that seed).

    The inner training runs on `prune_data` (default: `train_data`); give a small synthetic set
    for distilled pruning. `eval_data` (optional) gives each round's accuracy. `mask` starts
    from a mask other than "everything kept" (`combined` uses it). With `store`, finished
    rounds are loaded instead of trained and each new round is saved when it finishes;
    `recompute=True` retrains and overwrites. Returns `config.rounds + 1` rounds (round 0 is
    the starting mask). The caller's model is not changed.
    """
    config = config or ImpConfig()
    if not isinstance(config, ImpConfig):
        raise TypeError(f"config must be an ImpConfig, got {type(config).__name__}")
    data_seed = check_int("data_seed", data_seed, error=TypeError)
    if init_seed is not None:
        check_int("init_seed", init_seed, error=TypeError)
    train_data = as_dataset(train_data, "train_data", ordered=True)
    prune_data = (
        train_data if prune_data is None else as_dataset(prune_data, "prune_data", ordered=True)
    )
    eval_data = None if eval_data is None else as_dataset(eval_data, "eval_data")
    net0 = with_init_seed(model, init_seed)
    for what, d in (
        ("train_data", train_data),
        ("prune_data", prune_data),
        ("eval_data", eval_data),
    ):
        if d is not None:
            check_model_input(net0, d, what)
            check_classes(net0, d)
    tc = config.train
    total = tc.total_steps(num_batches(len(prune_data), tc.batch_size))
    if total == 0:
        raise ValueError("the inner training has 0 steps: nothing would be learned")
    if config.rewind_step is not None and config.rewind_step >= total:
        raise ValueError(
            f"rewind step {config.rewind} lies beyond training: the inner training on "
            f"prune_data ({len(prune_data)} images) is {total} steps, so k must be < {total}"
        )
    start = Mask.ones(net0, first=config.prune_first, last=config.prune_last)
    if mask is not None:
        given = mask if isinstance(mask, Mask) else Mask(mask)
        check_compatible(given, dict(net0.named_parameters()))
        start = given
    key = ImpRun(
        prune_data=prune_data.name,
        prune_data_hash=data_fingerprint(prune_data),
        config=replace(config, rounds=ImpConfig().rounds),
        data_seed=data_seed,
        start_mask="" if mask is None else start.digest(),
        **model_identity(net0),
    )
    run = store.run(key) if store is not None else None
    eval_id = None if eval_data is None else data_fingerprint(eval_data)
    return _rounds(
        net0,
        prune_data,
        config,
        total,
        data_seed,
        start,
        run,
        eval_data,
        eval_id,
        progress,
        recompute,
        train_size=len(train_data),
        store=store,
    )


def _rounds(
    net0: nn.Module,
    data: Dataset,
    config: ImpConfig,
    total: int,
    data_seed: int,
    start: Mask,
    run: Any,
    eval_data: Dataset | None,
    eval_id: str | None,
    progress: bool,
    recompute: bool,
    train_size: int,
    store: Store | None = None,
) -> ImpResult:
    k = config.rewind_step
    rounds: list[ImpRound] = []
    rewind: dict[str, Any] | None = None  # {"step", "state", "param_groups"} for rewind=k
    mask_samples, mask_seconds = 0, 0.0
    bar = tqdm(range(config.rounds + 1), desc="imp rounds", disable=not progress)
    for r in bar:
        name = f"round-{r:03d}"
        # a corrupt round is trained again: it is determined by the rounds before it
        stored = (
            None
            if run is None or recompute
            else run.load_or(name, None, "training the round again")
        )
        if stored is not None:
            if r == 0 and k is not None:
                rewind = stored["rewind"]
            eval_metrics = _stored_eval(stored, net0, eval_data, eval_id, run, name)
            rec = stored
        else:
            rec, rewind = _train_round(
                r,
                net0,
                data,
                config,
                total,
                data_seed,
                start,
                rounds,
                rewind,
                progress,
                None if recompute else store,
            )
            eval_metrics = None
            if eval_data is not None:
                eval_metrics = evaluate(with_state(net0, rec["state"]), eval_data)
            if run is not None:
                payload = dict(rec, eval_data=eval_id)
                payload["eval"] = None if eval_metrics is None else asdict(eval_metrics)
                if r == 0 and k is not None:
                    payload["rewind"] = rewind
                run.save(name, payload)
        mask_seconds += rec["prune_seconds"]
        rnd = ImpRound(
            round=r,
            mask=Mask.from_dict(rec["mask"]),
            state=rec["state"],
            data=data.name,
            steps=int(rec["steps"]),
            samples=int(rec["samples"]),
            train_seconds=float(rec["train_seconds"]),
            prune_seconds=float(rec["prune_seconds"]),
            mask_samples=mask_samples,
            mask_seconds=mask_seconds,
            train_loss=rec["train_loss"],
            train_accuracy=rec["train_accuracy"],
            eval=eval_metrics,
        )
        rounds.append(rnd)
        mask_samples += rnd.samples
        mask_seconds += rnd.train_seconds
        if progress:
            acc = "" if rnd.accuracy is None else f"{rnd.accuracy:.3f}"
            bar.set_postfix(sparsity=f"{rnd.sparsity:.3f}", acc=acc)
    bar.close()
    return ImpResult(
        config=config,
        rounds=tuple(rounds),
        data_seed=data_seed,
        spec=getattr(net0, "spec", None),
        prune_size=len(data),
        train_size=train_size,
        rewind_state=None if rewind is None else rewind["state"],
        run=None if run is None else run.path.name,
    )


def _stored_eval(
    stored: Mapping[str, Any],
    net0: nn.Module,
    eval_data: Dataset | None,
    eval_id: str | None,
    run: Any,
    name: str,
) -> Metrics | None:
    if eval_data is None:
        return None
    if stored.get("eval") is not None and stored.get("eval_data") == eval_id:
        return Metrics(**stored["eval"])
    metrics = evaluate(with_state(net0, stored["state"]), eval_data)
    run.save(name, dict(stored, eval=asdict(metrics), eval_data=eval_id))
    return metrics


def _train_round(
    r: int,
    net0: nn.Module,
    data: Dataset,
    config: ImpConfig,
    total: int,
    data_seed: int,
    start: Mask,
    rounds: list[ImpRound],
    rewind: dict[str, Any] | None,
    progress: bool,
    store: Store | None = None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Train round `r`. A round trained from θ0 (every round of rewinding to init, and round 0
    without a rewind step) is exactly the ticket θ0 ⊙ mask, so with a store it is trained
    through `train_ticket` and kept under the ticket's key: ticket tables, interpolation and
    the figure notebooks reuse it instead of training it again."""
    tc = config.train
    k = config.rewind_step
    t0 = time.perf_counter()
    if r == 0:
        mask = start
    else:
        prev = rounds[-1]
        mask = magnitude(prev.state, config.rate, prev.mask, config.scope)
    prune_seconds = time.perf_counter() - t0 if r else 0.0
    first_step = 0
    if k is None and (r == 0 or config.rewind == "init"):
        from lmc_toolkit.pruning.tickets import train_ticket

        result = train_ticket(net0, mask, data, tc, data_seed, store=store, progress=progress)
    elif r == 0:
        result = train(
            net0,
            data,
            tc,
            data_seed,
            mask=mask,
            checkpoint_steps=[] if k is None else [k],
            progress=progress,
        )
        if k is not None:
            ckpt = result.checkpoints[k]
            rewind = {
                "step": k,
                "state": _cpu(ckpt.state),
                "param_groups": copy.deepcopy(ckpt.optimizer["param_groups"]),
            }
    elif k is not None:
        assert rewind is not None
        first_step = k
        resume = Checkpoint(
            step=k,
            state=mask.apply(rewind["state"]),
            optimizer={"state": {}, "param_groups": copy.deepcopy(rewind["param_groups"])},
        )
        result = train(net0, data, tc, data_seed, mask=mask, resume=resume, progress=progress)
    elif config.rewind == "init":
        result = train(net0, data, tc, data_seed, mask=mask, progress=progress)
    else:
        weights = with_state(net0, mask.apply(rounds[-1].state))
        if config.rewind == "finetune":
            spe = num_batches(len(data), tc.batch_size)
            final_lr = tc.lr_at(max(total - 1, 0), spe)
            tc = replace(tc, lr=final_lr, milestones=(), warmup_steps=0)
        result = train(weights, data, tc, data_seed, mask=mask, progress=progress)
    last = result.history[-1] if result.history else None
    rec = {
        "round": r,
        "mask": mask.to_dict(),
        "state": _cpu(result.state),
        "steps": result.steps - first_step,
        "samples": samples_seen(len(data), tc.batch_size, first_step, result.steps),
        "train_seconds": result.seconds,
        "prune_seconds": prune_seconds,
        "train_loss": None if last is None else last.loss,
        "train_accuracy": None if last is None else last.accuracy,
    }
    return rec, rewind


def _cpu(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach().cpu() for k, v in state.items()}


def distilled_pruning(
    model: nn.Module,
    train_data: Dataset,
    synthetic: Dataset,
    config: ImpConfig | None = None,
    **kwargs: Any,
) -> ImpResult:
    """IMP whose inner training runs on `synthetic` (a distilled or otherwise small set), the
    weights rewound to the original initialization by default: `imp(model, train_data, config,
    prune_data=synthetic, ...)`."""
    result = imp(model, train_data, config, prune_data=synthetic, **kwargs)
    return replace(result, method="distilled")


def combined(
    model: nn.Module,
    train_data: Dataset,
    synthetic: Dataset,
    config: ImpConfig,
    distilled_rounds: int,
    synthetic_train: TrainConfig | None = None,
    eval_data: Dataset | None = None,
    init_seed: int | None = None,
    data_seed: int = 0,
    store: Store | None = None,
    progress: bool = True,
) -> ImpResult:
    """Distilled pruning for the first `distilled_rounds` prunings, then IMP on `train_data`
    from that mask up to `config.rounds` in all (the successor paper's method).

    `synthetic_train` is the inner training on the synthetic set (default `config.train`).
    Rounds 0 … r0−1 are trained on `synthetic`, rounds r0 … R on `train_data`; each round's
    `mask_samples` counts both phases.
    """
    r0 = distilled_rounds
    if isinstance(r0, bool) or not isinstance(r0, int) or not 1 <= r0 <= config.rounds:
        raise ValueError(f"distilled_rounds must be an int in [1, {config.rounds}], got {r0!r}")
    common = dict(eval_data=eval_data, init_seed=init_seed, data_seed=data_seed, store=store)
    dconfig = replace(config, rounds=r0 - 1, train=synthetic_train or config.train)
    first = imp(model, train_data, dconfig, prune_data=synthetic, progress=progress, **common)
    last = first.rounds[-1]
    t0 = time.perf_counter()
    handoff = magnitude(last.state, config.rate, last.mask, config.scope)
    seconds = time.perf_counter() - t0
    rest = imp(
        model,
        train_data,
        replace(config, rounds=config.rounds - r0),
        mask=handoff,
        progress=progress,
        **common,
    )
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
