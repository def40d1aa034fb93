"""One IMP round in two steps: where its training starts (`start_point`), then the training
(`train_round`), with what a round leaves as a typed record (`RoundRecord`) and the rewind
point of `rewind=k` (`RewindPoint`). `ImpPlan` holds what every round of a run shares.

Where round r starts (`ImpConfig.rewind`, `lmc_toolkit.pruning.imp_config`):

- from θ0 ⊙ m_r at step 0: every round of `"init"`, and round 0 without a rewind step. That
  network is exactly the ticket θ0 ⊙ m_r, so with a store it is trained through
  `train_ticket` and kept under the ticket's key (ticket tables, interpolation and the
  figures reuse it);
- round 0 with a rewind step k: the dense θ0, keeping the step-k checkpoint as the rewind point;
- later rounds with k: the rewind point's weights ⊙ m_r, resumed at step k with its learning
  rates (the optimizer's state is reset);
- `"lr"` / `"finetune"`: the previous round's final weights ⊙ m_r, with the whole schedule
  again or at its final learning rate.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from torch import Tensor, nn

from lmc_toolkit.data.dataset import Dataset, num_batches
from lmc_toolkit.pruning.imp_config import ImpConfig, samples_seen
from lmc_toolkit.pruning.imp_result import ImpRound
from lmc_toolkit.pruning.mask import Mask
from lmc_toolkit.pruning.prune import magnitude
from lmc_toolkit.pruning.tickets import train_ticket
from lmc_toolkit.store.runs import Run, Store
from lmc_toolkit.training.config import TrainConfig
from lmc_toolkit.training.loop import train
from lmc_toolkit.training.params import with_state
from lmc_toolkit.training.results import Checkpoint


@dataclass(frozen=True)
class ImpPlan:
    """What every round of one IMP run shares: θ0, the pruning data, the config and its inner
    training's length, the seed and starting mask, where rounds are stored, and the data each
    round is evaluated on."""

    net0: nn.Module
    data: Dataset
    config: ImpConfig
    total: int
    data_seed: int
    start: Mask
    run: Run | None = None
    store: Store | None = None
    recompute: bool = False
    eval_data: Dataset | None = None
    eval_id: str | None = None
    progress: bool = True


@dataclass(frozen=True)
class RewindPoint:
    """Round 0's step-k weights and learning rates, where every later round restarts."""

    step: int
    state: dict[str, Tensor]
    param_groups: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "state": self.state, "param_groups": self.param_groups}

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> RewindPoint:
        return RewindPoint(int(d["step"]), dict(d["state"]), list(d["param_groups"]))


@dataclass(frozen=True)
class RoundRecord:
    """What one trained round leaves, as the store keeps it (`to_dict`'s keys)."""

    round: int
    mask: Mask
    state: dict[str, Tensor]
    steps: int
    samples: int
    train_seconds: float
    prune_seconds: float
    train_loss: float | None
    train_accuracy: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "mask": self.mask.to_dict(),
            "state": self.state,
            "steps": self.steps,
            "samples": self.samples,
            "train_seconds": self.train_seconds,
            "prune_seconds": self.prune_seconds,
            "train_loss": self.train_loss,
            "train_accuracy": self.train_accuracy,
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> RoundRecord:
        return RoundRecord(
            round=int(d["round"]),
            mask=Mask.from_dict(d["mask"]),
            state=d["state"],
            steps=int(d["steps"]),
            samples=int(d["samples"]),
            train_seconds=float(d["train_seconds"]),
            prune_seconds=float(d["prune_seconds"]),
            train_loss=d["train_loss"],
            train_accuracy=d["train_accuracy"],
        )


@dataclass(frozen=True)
class StartPoint:
    """Where a round's training starts (see the module docstring)."""

    model: nn.Module
    train: TrainConfig
    resume: Checkpoint | None = None
    ticket: bool = False

    @property
    def first_step(self) -> int:
        return 0 if self.resume is None else self.resume.step


def round_mask(plan: ImpPlan, previous: ImpRound | None) -> tuple[Mask, float]:
    """Round r's mask (the start mask for round 0, else `rate` of the previous round's kept
    weights pruned by magnitude) and the seconds pruning took."""
    if previous is None:
        return plan.start, 0.0
    t0 = time.perf_counter()
    mask = magnitude(previous.state, plan.config.rate, previous.mask, plan.config.scope)
    return mask, time.perf_counter() - t0


def start_point(
    plan: ImpPlan, mask: Mask, previous: ImpRound | None, rewind: RewindPoint | None
) -> StartPoint:
    """Where the round after `previous` (round 0 when None) starts under `mask`."""
    config, tc = plan.config, plan.config.train
    k = config.rewind_step
    if previous is None or config.rewind == "init":
        return StartPoint(plan.net0, tc, ticket=k is None)
    if k is not None:
        if rewind is None:
            raise RuntimeError("a round after round 0 of rewind=k needs round 0's rewind point")
        resume = Checkpoint(
            step=k,
            state=mask.apply(rewind.state),
            optimizer={"state": {}, "param_groups": copy.deepcopy(rewind.param_groups)},
        )
        return StartPoint(plan.net0, tc, resume=resume)
    weights = with_state(plan.net0, mask.apply(previous.state))
    if config.rewind == "finetune":
        final_lr = tc.lr_at(max(plan.total - 1, 0), num_batches(len(plan.data), tc.batch_size))
        tc = replace(tc, lr=final_lr, milestones=(), warmup_steps=0)
    return StartPoint(weights, tc)


def train_round(
    plan: ImpPlan, r: int, previous: ImpRound | None, rewind: RewindPoint | None
) -> tuple[RoundRecord, RewindPoint | None]:
    """Prune to round r's mask, train from its start point; the record, and the rewind point
    (taken in round 0 when the config rewinds to a step)."""
    mask, prune_seconds = round_mask(plan, previous)
    start = start_point(plan, mask, previous, rewind)
    k = plan.config.rewind_step
    if start.ticket:
        store = None if plan.recompute else plan.store
        result = train_ticket(
            start.model,
            mask,
            plan.data,
            start.train,
            plan.data_seed,
            store=store,
            progress=plan.progress,
        )
    else:
        keep = [k] if previous is None and k is not None else []
        result = train(
            start.model,
            plan.data,
            start.train,
            plan.data_seed,
            mask=mask,
            checkpoint_steps=keep,
            resume=start.resume,
            progress=plan.progress,
        )
    if previous is None and k is not None:
        ckpt = result.checkpoints[k]
        rewind = RewindPoint(k, _cpu(ckpt.state), copy.deepcopy(ckpt.optimizer["param_groups"]))
    last = result.history[-1] if result.history else None
    first = start.first_step
    record = RoundRecord(
        round=r,
        mask=mask,
        state=_cpu(result.state),
        steps=result.steps - first,
        samples=samples_seen(len(plan.data), start.train.batch_size, first, result.steps),
        train_seconds=result.seconds,
        prune_seconds=prune_seconds,
        train_loss=None if last is None else last.loss,
        train_accuracy=None if last is None else last.accuracy,
    )
    return record, rewind


def _cpu(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach().cpu() for k, v in state.items()}
