"""Deterministic training and evaluation.

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
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from lmc_toolkit.data import (
    AUGMENTATIONS,
    Dataset,
    check_batch_size,
    check_nonempty,
    load,
    num_batches,
)
from lmc_toolkit.models import ModelSpec, build, check_input
from lmc_toolkit.params import check_mask, load_into, state_of
from lmc_toolkit.store import Store

OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Milestones are in epochs (fractions allowed); `steps`, when set, replaces
    `epochs` as the length of training."""

    epochs: float = 10
    steps: int | None = None
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    milestones: tuple[float, ...] = ()
    gamma: float = 0.2
    warmup_steps: int = 0
    augment: str = "none"

    def __post_init__(self) -> None:
        check_batch_size(self.batch_size)
        if self.steps is None and not (isinstance(self.epochs, int | float) and self.epochs > 0):
            raise ValueError(f"epochs must be > 0, got {self.epochs!r}")
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 0):
            raise ValueError(f"steps must be an int ≥ 0, got {self.steps!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ValueError(
                f"need weight_decay ≥ 0 and 0 ≤ momentum < 1, got {self.weight_decay}, "
                f"{self.momentum}"
            )
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {self.augment!r}")
        if self.warmup_steps < 0 or self.gamma <= 0:
            raise ValueError(f"need warmup_steps ≥ 0 and gamma > 0, got {self}")
        object.__setattr__(self, "milestones", tuple(sorted(float(m) for m in self.milestones)))

    def total_steps(self, steps_per_epoch: int) -> int:
        """The length of training in optimizer steps."""
        if self.steps is not None:
            return self.steps
        return round(self.epochs * steps_per_epoch)

    def lr_at(self, step: int, steps_per_epoch: int) -> float:
        """The learning rate of optimizer step `step` (0-based): warm-up, then MultiStep."""
        lr = self.lr * self.gamma ** sum(
            step >= round(m * steps_per_epoch) for m in self.milestones
        )
        if step < self.warmup_steps:
            lr *= (step + 1) / self.warmup_steps
        return lr


@dataclass(frozen=True)
class Metrics:
    """Mean cross-entropy loss and accuracy over `n` examples."""

    loss: float
    accuracy: float
    n: int

    @property
    def error(self) -> float:
        return 1.0 - self.accuracy


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of training: mean training loss/accuracy and, if asked, held-out metrics."""

    epoch: int
    step: int
    lr: float
    loss: float
    accuracy: float
    eval_loss: float | None = None
    eval_accuracy: float | None = None


@dataclass(frozen=True)
class Checkpoint:
    """Everything needed to resume at `step`: model state, optimizer state, partial sums."""

    step: int
    state: dict[str, Tensor]
    optimizer: dict[str, Any]
    history: tuple[EpochRecord, ...] = ()
    sums: tuple[float, float, int] = (0.0, 0.0, 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "state": self.state,
            "optimizer": self.optimizer,
            "history": [asdict(r) for r in self.history],
            "sums": list(self.sums),
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> Checkpoint:
        return Checkpoint(
            step=int(d["step"]),
            state=d["state"],
            optimizer=d["optimizer"],
            history=tuple(EpochRecord(**r) for r in d["history"]),
            sums=tuple(d["sums"]),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class TrainResult:
    """Final weights, the requested checkpoints and the per-epoch history of one training run."""

    state: dict[str, Tensor]
    checkpoints: dict[int, Checkpoint]
    history: tuple[EpochRecord, ...]
    config: TrainConfig
    data_seed: int
    steps: int
    seconds: float
    spec: ModelSpec | None = None
    final: Metrics | None = None

    def model(self, template: nn.Module | None = None, device: Any = None) -> nn.Module:
        """A fresh network holding the final weights (built from `spec`, or a copy of
        `template`)."""
        if template is None:
            if self.spec is None:
                raise ValueError("this result has no model spec: pass the model as template")
            template = self.spec.build()
        net = copy.deepcopy(template)
        load_into(net, self.state)
        return net.to(device) if device is not None else net

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "checkpoints": {str(k): c.to_dict() for k, c in self.checkpoints.items()},
            "history": [asdict(r) for r in self.history],
            "config": asdict(self.config),
            "data_seed": self.data_seed,
            "steps": self.steps,
            "seconds": self.seconds,
            "spec": None if self.spec is None else asdict(self.spec),
            "final": None if self.final is None else asdict(self.final),
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> TrainResult:
        spec = d["spec"]
        if spec is not None:
            spec = ModelSpec(
                name=spec["name"],
                num_classes=spec["num_classes"],
                in_shape=tuple(spec["in_shape"]),
                init_seed=spec["init_seed"],
                options=tuple((k, _untuple(v)) for k, v in spec["options"]),
            )
        config = dict(d["config"])
        config["milestones"] = tuple(config["milestones"])
        return TrainResult(
            state=d["state"],
            checkpoints={int(k): Checkpoint.from_dict(c) for k, c in d["checkpoints"].items()},
            history=tuple(EpochRecord(**r) for r in d["history"]),
            config=TrainConfig(**config),
            data_seed=int(d["data_seed"]),
            steps=int(d["steps"]),
            seconds=float(d["seconds"]),
            spec=spec,
            final=None if d["final"] is None else Metrics(**d["final"]),
        )


def _untuple(v: Any) -> Any:
    return tuple(_untuple(x) for x in v) if isinstance(v, list | tuple) else v


def epoch_generator(data_seed: int, epoch: int) -> torch.Generator:
    """The generator of epoch `epoch`'s order and augmentation: seeded by (data_seed, epoch)."""
    digest = hashlib.sha256(f"lmc_toolkit/data/{int(data_seed)}/{int(epoch)}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def _device_of(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    return torch.device("cpu")


def check_classes(model: nn.Module, data: Dataset) -> None:
    spec = getattr(model, "spec", None)
    if isinstance(spec, ModelSpec) and spec.num_classes != data.num_classes:
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
    data: Dataset,
    config: TrainConfig | None = None,
    data_seed: int = 0,
    mask: Mapping[str, Tensor] | None = None,
    checkpoint_steps: Iterable[int] = (),
    eval_data: Dataset | None = None,
    progress: bool = True,
    resume: Checkpoint | None = None,
) -> TrainResult:
    """Train a copy of `model` on `data` and return its weights, checkpoints and history.

    `mask` (name → bool tensor, True = kept) keeps the masked weights at exactly zero.
    `checkpoint_steps` (0 = the start) are saved for resuming and rewinding; `resume` continues
    from such a checkpoint. A NaN or inf loss stops with an error naming the step.
    """
    config = config or TrainConfig()
    check_nonempty(data, "training data")
    check_input(model, data.in_shape, "training data")
    check_classes(model, data)
    if eval_data is not None:
        check_nonempty(eval_data, "eval_data")
        check_input(model, eval_data.in_shape, "eval_data")
    net = copy.deepcopy(model)
    device = _device_of(net)
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
            loss = F.cross_entropy(out, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for name, m in masks.items():
                if named[name].grad is not None:
                    named[name].grad.mul_(m)
            optimizer.step()
            _apply_mask(named, masks)
            with torch.no_grad():
                bad = ~torch.isfinite(loss.detach())
                first_bad = torch.where(
                    (first_bad < 0) & bad, torch.full_like(first_bad, step), first_bad
                )
                loss_sum += loss.detach().double() * len(y)
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
                        epoch, step, lr, loss_sum, correct, seen, net, eval_data, progress
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
    final = evaluate(net, eval_data) if eval_data is not None else None
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
    correct: Tensor,
    seen: int,
    net: nn.Module,
    eval_data: Dataset | None,
    progress: bool,
) -> EpochRecord:
    held = evaluate(net, eval_data) if eval_data is not None else None
    net.train()
    return EpochRecord(
        epoch=epoch,
        step=step,
        lr=lr,
        loss=float(loss_sum) / max(seen, 1),
        accuracy=float(correct) / max(seen, 1),
        eval_loss=None if held is None else held.loss,
        eval_accuracy=None if held is None else held.accuracy,
    )


def default_eval_batch(device: torch.device) -> int:
    """Cache-sized chunks on the CPU are faster than one big batch; GPUs like big batches."""
    return 100 if device.type == "cpu" else 1000


def evaluate(model: nn.Module, data: Dataset, batch_size: int | None = None) -> Metrics:
    """Mean loss and accuracy of `model` (in eval mode) on `data`; the model is left as it was."""
    check_nonempty(data, "evaluation data")
    check_input(model, data.in_shape, "evaluation data")
    device = _device_of(model)
    batch_size = batch_size or default_eval_batch(device)
    check_batch_size(batch_size)
    data = data.to(device)
    was_training = model.training
    model.eval()
    loss = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.long)
    try:
        with torch.inference_mode():
            for x, y in data.batches(batch_size, shuffle=False):
                out = model(x)
                loss += F.cross_entropy(out, y, reduction="sum").double()
                correct += (out.argmax(1) == y).sum()
    finally:
        model.train(was_training)
    n = len(data)
    return Metrics(loss=float(loss) / n, accuracy=int(correct) / n, n=n)


@dataclass(frozen=True)
class TrainRun:
    """The identity of one stored training run: data, model, config and seeds."""

    data: str = "mnist"
    model: str = "convnet3"
    model_options: tuple[tuple[str, Any], ...] = ()
    train: TrainConfig = field(default_factory=TrainConfig)
    init_seed: int = 0
    data_seed: int = 0

    def run_prefix(self) -> str:
        return f"train-{self.data}-{self.model}"


def default_device() -> torch.device:
    """$LMC_TOOLKIT_DEVICE when set, else CUDA when it is available, else the CPU."""
    chosen = os.environ.get("LMC_TOOLKIT_DEVICE")
    if chosen:
        return torch.device(chosen)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def train_run(
    run: TrainRun,
    store: Store | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> TrainResult:
    """Load `run.data`, build `run.model`, train it and evaluate on the test split; with a
    store the result is computed once and reloaded afterwards."""
    train_data = load(run.data, "train")
    test_data = load(run.data, "test")
    model = build(
        run.model,
        train_data.num_classes,
        train_data.in_shape,
        run.init_seed,
        device or default_device(),
        **dict(run.model_options),
    )

    def compute() -> TrainResult:
        return train(
            model, train_data, run.train, run.data_seed, eval_data=test_data, progress=progress
        )

    if store is None:
        return compute()
    return store.cached(run, compute, encode=TrainResult.to_dict, decode=TrainResult.from_dict)
