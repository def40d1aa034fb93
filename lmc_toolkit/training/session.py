"""One training in progress (`TrainingSession`): the network and its optimizer, the masked SGD
step, the epoch's running sums, the watch for a non-finite loss, checkpoints and epoch records.

`train` (`training.loop`) only walks the steps and asks this object to act at each; the sums
stay on the device and are read back to the host only at checkpoints and epoch ends (a GPU
run then never waits on the host per step).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from lmc_toolkit.data.dataset import Dataset
from lmc_toolkit.data.inputs import Inputs
from lmc_toolkit.training.evaluation import evaluate
from lmc_toolkit.training.losses import LossFn, LossName
from lmc_toolkit.training.params import load_into, state_of
from lmc_toolkit.training.results import Checkpoint, EpochRecord


class EpochTotals:
    """The current epoch's summed loss, right answers and examples, on the device."""

    def __init__(self, device: torch.device, sums: Sequence[float] = (0.0, 0.0, 0)) -> None:
        self.loss = torch.zeros((), device=device, dtype=torch.float64)
        self.correct = torch.zeros((), device=device, dtype=torch.float64)
        self.loss += sums[0]
        self.correct += sums[1]
        self.seen = int(sums[2])

    def add(self, batch_loss: Tensor, out: Tensor, y: Tensor, regression: bool) -> None:
        with torch.no_grad():
            self.loss += batch_loss.detach().double() * len(y)
            if not regression:
                self.correct += (out.argmax(1) == y).sum()
        self.seen += len(y)

    def saved(self) -> tuple[float, float, int]:
        """The sums as a checkpoint keeps them (a resumed run continues the epoch from them)."""
        return float(self.loss), float(self.correct), self.seen

    def reset(self) -> None:
        self.loss.zero_()
        self.correct.zero_()
        self.seen = 0


class NonFiniteWatch:
    """The first step whose loss was NaN or inf, tracked on the device; `check` raises."""

    def __init__(self, device: torch.device) -> None:
        self.first = torch.full((), -1, device=device, dtype=torch.long)

    def see(self, batch_loss: Tensor, step: int) -> None:
        with torch.no_grad():
            bad = ~torch.isfinite(batch_loss.detach())
            self.first = torch.where(
                (self.first < 0) & bad, torch.full_like(self.first, step), self.first
            )

    def check(self) -> None:
        k = int(self.first)
        if k >= 0:
            raise FloatingPointError(
                f"the training loss became NaN or inf at step {k}; lower the learning rate or "
                "check the data"
            )


class TrainingSession:
    """The network being trained (a copy the session owns), its optimizer and masks, the step
    reached and the epochs recorded."""

    def __init__(
        self,
        net: nn.Module,
        optimizer: torch.optim.Optimizer,
        masks: Mapping[str, Tensor],
        loss_fn: LossFn,
        regression: bool,
        resume: Checkpoint | None = None,
    ) -> None:
        self.net, self.optimizer, self.masks = net, optimizer, masks
        self.loss_fn, self.regression = loss_fn, regression
        self.named = dict(net.named_parameters())
        self.device = next((p.device for p in net.parameters()), torch.device("cpu"))
        self.step, self.history = 0, []
        sums: Sequence[float] = (0.0, 0.0, 0)
        if resume is not None:
            load_into(net, resume.state)
            optimizer.load_state_dict(copy.deepcopy(resume.optimizer))
            self.step, self.history, sums = resume.step, list(resume.history), resume.sums
        self.apply_masks()
        self.totals = EpochTotals(self.device, sums)
        self.watch = NonFiniteWatch(self.device)

    def apply_masks(self) -> None:
        """Zero the masked weights (after every step, so they stay exactly zero)."""
        with torch.no_grad():
            for name, m in self.masks.items():
                self.named[name].mul_(m)

    def sgd_step(self, x: Inputs, y: Tensor, lr: float) -> None:
        """One optimizer step at learning rate `lr` on the batch (x, y), masked gradients."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        out = self.net(x)
        batch_loss = self.loss_fn(out, y)
        self.optimizer.zero_grad(set_to_none=True)
        batch_loss.backward()
        for name, m in self.masks.items():
            grad = self.named[name].grad
            if grad is not None:
                grad.mul_(m)
        self.optimizer.step()
        self.apply_masks()
        self.watch.see(batch_loss, self.step)
        self.totals.add(batch_loss, out, y, self.regression)
        self.step += 1

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(
            self.step,
            state_of(self.net),
            copy.deepcopy(self.optimizer.state_dict()),
            tuple(self.history),
            self.totals.saved(),
        )

    def end_epoch(
        self, epoch: int, lr: float, eval_data: Dataset | None, loss: LossName | LossFn
    ) -> EpochRecord:
        """Record the epoch (its training sums, and `eval_data`'s metrics if given), then
        start the next one's sums."""
        held = evaluate(self.net, eval_data, loss=loss) if eval_data is not None else None
        self.net.train()
        seen = max(self.totals.seen, 1)
        record = EpochRecord(
            epoch=epoch,
            step=self.step,
            lr=lr,
            loss=float(self.totals.loss) / seen,
            accuracy=math.nan if self.regression else float(self.totals.correct) / seen,
            eval_loss=None if held is None else held.loss,
            eval_accuracy=None if held is None else held.accuracy,
        )
        self.history.append(record)
        self.totals.reset()
        return record
