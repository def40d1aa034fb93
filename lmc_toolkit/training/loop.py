"""Deterministic training.

`train` works on a copy of the caller's model. The data order and augmentation of epoch e come
from a generator seeded by (`data_seed`, e) alone, so the same `init_seed` and `data_seed` give
bit-identical weights on the CPU, another `data_seed` gives other SGD noise, and a run resumed
from its step-k checkpoint (weights, optimizer state, partial-epoch sums) equals the
uninterrupted run. Masked weights stay exactly zero: they start at zero, their gradients are
zeroed before each step and the mask is applied again after it.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from lmc_toolkit.data.dataset import (
    Dataset,
    num_batches,
)
from lmc_toolkit.data.entrance import DataLike, as_dataset
from lmc_toolkit.data.stream import Stream
from lmc_toolkit.models import ModelSpec
from lmc_toolkit.training.config import TrainConfig
from lmc_toolkit.training.evaluation import device_of, evaluate
from lmc_toolkit.training.losses import LossFn, LossName, check_loss, loss_function
from lmc_toolkit.training.params import check_mask, state_of
from lmc_toolkit.training.probe import check_model_input
from lmc_toolkit.training.results import Checkpoint, TrainResult
from lmc_toolkit.training.session import TrainingSession


def epoch_generator(data_seed: int, epoch: int) -> torch.Generator:
    """The generator of epoch `epoch`'s order and augmentation: seeded by (data_seed, epoch)."""
    digest = hashlib.sha256(f"lmc_toolkit/data/{int(data_seed)}/{int(epoch)}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def check_classes(model: nn.Module, data: Dataset | Stream) -> None:
    """Refuse data with more classes than a registry model has outputs. Fewer are fine: the
    classes of a user's loader are inferred from the largest label it holds, so a subset that
    lacks the last class still fits."""
    spec = getattr(model, "spec", None)
    if isinstance(spec, ModelSpec) and spec.num_classes < data.num_classes:
        raise ValueError(
            f"{data.name!r} has {data.num_classes} classes but the {spec.name} model was built "
            f"for {spec.num_classes}"
        )


def _optimizer(config: TrainConfig, params: Iterable[Tensor]) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=config.nesterov,
        )
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def train(
    model: nn.Module,
    data: DataLike,
    config: TrainConfig | None = None,
    data_seed: int = 0,
    *,
    mask: Mapping[str, Tensor] | None = None,
    checkpoint_steps: Iterable[int] = (),
    eval_data: DataLike | None = None,
    progress: bool = True,
    resume: Checkpoint | None = None,
    loss: LossName | LossFn = "cross_entropy",
) -> TrainResult:
    """Train a copy of `model` on `data` and return its weights, checkpoints and history.

    A NaN or inf loss stops with an error naming the step; the same `model`, `data` and
    `data_seed` give the same weights (on the CPU at a given thread count).

    Args:
        model: The network at its initialization (not changed).
        data: Any data `as_dataset` takes (a loader must not shuffle: the order comes from
            `data_seed`).
        config: The recipe: epochs, learning rate and schedule, batch size, optimizer, augmentation
            (default: `TrainConfig()`).
        data_seed: The data order (and augmentation draws) of every epoch.
        mask: Name → bool tensor (True = kept): the masked weights stay exactly zero.
        checkpoint_steps: Steps (0 = the start) whose state is kept, for resuming and rewinding.
        eval_data: Gives each epoch's test loss and accuracy.
        progress: Show a progress bar.
        resume: Continue from such a checkpoint.
        loss: `"cross_entropy"`, `"mse"` or a callable `loss(out, y)` giving a batch's mean (float
            targets need one other than cross-entropy; their accuracy is NaN).

    Returns:
        A `TrainResult`: the final weights, the checkpoints, the per-epoch history and the final
        metrics on `eval_data`.
    """
    config = config or TrainConfig()
    data, held_out = _checked_data(model, data, eval_data, loss)
    net = copy.deepcopy(model)
    data = data.to(device_of(net))
    spe = num_batches(len(data), config.batch_size)
    plan = _Plan(
        config, spe, data_seed, _checkpoint_steps(checkpoint_steps, config.total_steps(spe))
    )
    if resume is not None and not 0 <= resume.step <= plan.total:
        raise ValueError(f"cannot resume at step {resume.step} of a {plan.total}-step run")
    masks = check_mask(dict(net.named_parameters()), mask) or {}
    optimizer = _optimizer(config, net.parameters())
    run = TrainingSession(net, optimizer, masks, loss_function(loss), data.regression, resume)
    start_time = time.perf_counter()
    checkpoints = _steps(run, data, plan, held_out, loss, progress)
    seconds = time.perf_counter() - start_time
    final = evaluate(net, held_out, loss=loss) if held_out is not None else None
    return TrainResult(
        state=state_of(net),
        checkpoints=checkpoints,
        history=tuple(run.history),
        config=config,
        data_seed=int(data_seed),
        steps=run.step,
        seconds=seconds,
        spec=getattr(model, "spec", None),
        final=final,
        template=model,
    )


@dataclass(frozen=True)
class _Plan:
    """The run's schedule: its recipe, steps per epoch, data order and the checkpoint steps."""

    config: TrainConfig
    steps_per_epoch: int
    data_seed: int
    wanted: frozenset[int]

    @property
    def total(self) -> int:
        return self.config.total_steps(self.steps_per_epoch)


def _steps(
    run: TrainingSession,
    data: Dataset,
    plan: _Plan,
    held_out: Dataset | None,
    loss: LossName | LossFn,
    progress: bool,
) -> dict[int, Checkpoint]:
    """SGD from `run`'s step to the end of `plan`, epoch by epoch in the data order of
    (`data_seed`, epoch); the checkpoints `plan` asks for. The loss is checked for NaN/inf every
    step on the CPU (a GPU syncs once per epoch)."""
    config, spe, total, wanted = plan.config, plan.steps_per_epoch, plan.total, plan.wanted
    checkpoints = {run.step: run.checkpoint()} if run.step in wanted else {}
    bar = tqdm(total=total, initial=run.step, desc="train", disable=not progress, leave=False)
    check_every = 1 if run.device.type == "cpu" else spe
    run.net.train()
    while run.step < total:
        epoch, offset = divmod(run.step, spe)
        generator = epoch_generator(plan.data_seed, epoch)
        for x, y in data.batches(
            config.batch_size, generator, augment=config.augment, start=offset
        ):
            lr = config.lr_at(run.step, spe)
            run.sgd_step(x, y, lr)
            bar.update(1)
            ending = offset + 1 == spe or run.step == total
            if run.step % check_every == 0 or ending or run.step in wanted:
                run.watch.check()
            if run.step in wanted:
                checkpoints[run.step] = run.checkpoint()
            if ending:
                record = run.end_epoch(epoch, lr, held_out, loss)
                bar.set_postfix(loss=f"{record.loss:.4f}", acc=f"{record.accuracy:.3f}")
            offset += 1
            if run.step >= total:
                break
    bar.close()
    return checkpoints


def _checked_data(
    model: nn.Module, data: DataLike, eval_data: DataLike | None, loss: LossName | LossFn
) -> tuple[Dataset, Dataset | None]:
    """The training and held-out data as `Dataset`s, checked against the model and the loss
    before any work."""
    train_data = as_dataset(data, "training data", ordered=True)
    check_loss(loss, train_data.regression, "training data", "train")
    check_model_input(model, train_data, "training data")
    check_classes(model, train_data)
    if eval_data is None:
        return train_data, None
    held_out = as_dataset(eval_data, "eval_data")
    check_loss(loss, held_out.regression, "eval_data", "train")
    check_model_input(model, held_out, "eval_data")
    return train_data, held_out


def _checkpoint_steps(steps: Iterable[int], total: int) -> frozenset[int]:
    """The steps to keep checkpoints of, each within training (0 to `total`)."""
    wanted = {int(s) for s in steps}
    outside = sorted(s for s in wanted if not 0 <= s <= total)
    if outside:
        raise ValueError(
            f"checkpoint step {outside[-1]} lies outside training (0 to {total} steps)"
        )
    return frozenset(wanted)
