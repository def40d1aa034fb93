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
import math
import time
from collections.abc import Iterable, Mapping

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
from lmc_toolkit.training.params import check_mask, load_into, state_of
from lmc_toolkit.training.probe import check_model_input
from lmc_toolkit.training.results import Checkpoint, EpochRecord, TrainResult


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
    mask: Mapping[str, Tensor] | None = None,
    checkpoint_steps: Iterable[int] = (),
    eval_data: DataLike | None = None,
    progress: bool = True,
    resume: Checkpoint | None = None,
    loss: LossName | LossFn = "cross_entropy",
) -> TrainResult:
    """Train a copy of `model` on `data` and return its weights, checkpoints and history.

    `mask` (name → bool tensor, True = kept) keeps the masked weights at exactly zero.
    `checkpoint_steps` (0 = the start) are saved for resuming and rewinding; `resume` continues
    from such a checkpoint. A NaN or inf loss stops with an error naming the step. `loss` is
    one of `training.losses.LOSSES` or a callable `loss(out, y)` giving a batch's mean (float
    targets need one other than cross-entropy; their accuracy is NaN).
    """
    config = config or TrainConfig()
    data = as_dataset(data, "training data", ordered=True)
    check_loss(loss, data.regression, "training data", "train")
    check_model_input(model, data, "training data")
    check_classes(model, data)
    loss_fn = loss_function(loss)
    if eval_data is not None:
        eval_data = as_dataset(eval_data, "eval_data")
        check_loss(loss, eval_data.regression, "eval_data", "train")
        check_model_input(model, eval_data, "eval_data")
    net = copy.deepcopy(model)
    device = device_of(net)
    data = data.to(device)
    named = dict(net.named_parameters())
    masks = check_mask(named, mask) or {}
    spe = num_batches(len(data), config.batch_size)
    total = config.total_steps(spe)
    wanted = sorted({int(s) for s in checkpoint_steps})
    if wanted and not 0 <= wanted[-1] <= total:
        raise ValueError(f"checkpoint step {wanted[-1]} lies outside training (0 to {total} steps)")
    optimizer = _optimizer(config, net.parameters())
    step, history, sums = 0, [], [0.0, 0.0, 0]
    if resume is not None:
        if not 0 <= resume.step <= total:
            raise ValueError(f"cannot resume at step {resume.step} of a {total}-step run")
        load_into(net, resume.state)
        optimizer.load_state_dict(copy.deepcopy(resume.optimizer))
        step, history, sums = resume.step, list(resume.history), list(resume.sums)
    _apply_mask(named, masks)
    checkpoints: dict[int, Checkpoint] = {}

    def snapshot() -> Checkpoint:
        return Checkpoint(
            step,
            state_of(net),
            copy.deepcopy(optimizer.state_dict()),
            tuple(history),
            (float(sums[0]), float(sums[1]), int(sums[2])),
        )

    if step in wanted:
        checkpoints[step] = snapshot()
    start_time = time.perf_counter()
    bar = tqdm(total=total, initial=step, desc="train", disable=not progress, leave=False)
    check_every = 1 if device.type == "cpu" else spe
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.float64)
    first_bad = torch.full((), -1, device=device, dtype=torch.long)
    loss_sum += sums[0]
    correct += sums[1]
    seen = int(sums[2])
    regression = data.regression
    net.train()
    while step < total:
        epoch, offset = divmod(step, spe)
        for x, y in data.batches(
            config.batch_size,
            epoch_generator(data_seed, epoch),
            augment=config.augment,
            start=offset,
        ):
            lr = config.lr_at(step, spe)
            for group in optimizer.param_groups:
                group["lr"] = lr
            out = net(x)
            batch_loss = loss_fn(out, y)
            optimizer.zero_grad(set_to_none=True)
            batch_loss.backward()
            for name, m in masks.items():
                grad = named[name].grad
                if grad is not None:
                    grad.mul_(m)
            optimizer.step()
            _apply_mask(named, masks)
            with torch.no_grad():
                bad = ~torch.isfinite(batch_loss.detach())
                first_bad = torch.where(
                    (first_bad < 0) & bad, torch.full_like(first_bad, step), first_bad
                )
                loss_sum += batch_loss.detach().double() * len(y)
                if not regression:
                    correct += (out.argmax(1) == y).sum()
            seen += len(y)
            step += 1
            bar.update(1)
            ending = offset + 1 == spe or step == total
            if step % check_every == 0 or ending or step in wanted:
                _raise_if_bad(first_bad)
            if step in wanted:
                sums = [float(loss_sum), float(correct), seen]
                checkpoints[step] = snapshot()
            if ending:
                history.append(
                    _epoch_record(
                        epoch,
                        step,
                        lr,
                        loss_sum,
                        None if regression else correct,
                        seen,
                        net,
                        eval_data,
                        loss,
                    )
                )
                loss_sum.zero_()
                correct.zero_()
                seen = 0
                sums = [0.0, 0.0, 0]
                if progress:
                    bar.set_postfix(
                        loss=f"{history[-1].loss:.4f}", acc=f"{history[-1].accuracy:.3f}"
                    )
            offset += 1
            if step >= total:
                break
    bar.close()
    seconds = time.perf_counter() - start_time
    final = evaluate(net, eval_data, loss=loss) if eval_data is not None else None
    return TrainResult(
        state=state_of(net),
        checkpoints=checkpoints,
        history=tuple(history),
        config=config,
        data_seed=int(data_seed),
        steps=step,
        seconds=seconds,
        spec=getattr(model, "spec", None),
        final=final,
        template=model,
    )


def _apply_mask(named: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> None:
    with torch.no_grad():
        for name, m in masks.items():
            named[name].mul_(m)


def _raise_if_bad(first_bad: Tensor) -> None:
    k = int(first_bad)
    if k >= 0:
        raise FloatingPointError(
            f"the training loss became NaN or inf at step {k}; lower the learning rate or check "
            "the data"
        )


def _epoch_record(
    epoch: int,
    step: int,
    lr: float,
    loss_sum: Tensor,
    correct: Tensor | None,
    seen: int,
    net: nn.Module,
    eval_data: Dataset | None,
    loss: LossName | LossFn,
) -> EpochRecord:
    held = evaluate(net, eval_data, loss=loss) if eval_data is not None else None
    net.train()
    return EpochRecord(
        epoch=epoch,
        step=step,
        lr=lr,
        loss=float(loss_sum) / max(seen, 1),
        accuracy=math.nan if correct is None else float(correct) / max(seen, 1),
        eval_loss=None if held is None else held.loss,
        eval_accuracy=None if held is None else held.accuracy,
    )
