"""What an IMP run returns: one `ImpRound` per round (mask, trained weights, accuracy, cost)
and the `ImpResult` that holds them, with tables and a figure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from lmc_toolkit.models import ModelSpec
from lmc_toolkit.pruning.mask import Mask
from lmc_toolkit.training.params import with_state
from lmc_toolkit.training.results import Metrics

if TYPE_CHECKING:
    from lmc_toolkit.pruning.imp_config import ImpConfig


@dataclass(frozen=True)
class ImpRound:
    """One round: the mask m_r trained in it, the weights it ended with, what it cost.

    `samples`/`train_seconds` are this round's training; `mask_samples`/`mask_seconds` are the
    cost of finding `mask`: every earlier round's training (sample-gradient evaluations, i.e.
    images through forward and backward) and the pruning steps."""

    round: int
    mask: Mask
    state: dict[str, Tensor]
    data: str
    steps: int
    samples: int
    train_seconds: float
    prune_seconds: float
    mask_samples: int
    mask_seconds: float
    train_loss: float | None
    train_accuracy: float | None
    eval: Metrics | None

    @property
    def sparsity(self) -> float:
        return self.mask.sparsity

    @property
    def accuracy(self) -> float | None:
        """Accuracy on `eval_data` of the weights this round trained (None without eval_data)."""
        return None if self.eval is None else self.eval.accuracy


@dataclass(frozen=True)
class ImpResult:
    """Every round of one IMP run, with what identifies it."""

    config: ImpConfig
    rounds: tuple[ImpRound, ...]
    data_seed: int
    spec: ModelSpec | None
    prune_size: int
    train_size: int
    rewind_state: dict[str, Tensor] | None = None
    run: str | None = None
    method: str = "imp"

    @property
    def masks(self) -> tuple[Mask, ...]:
        return tuple(r.mask for r in self.rounds)

    @property
    def sparsities(self) -> tuple[float, ...]:
        return tuple(r.sparsity for r in self.rounds)

    @property
    def accuracies(self) -> tuple[float | None, ...]:
        return tuple(r.accuracy for r in self.rounds)

    def mask(self, sparsity: float, tol: float = 5e-3) -> Mask:
        """The mask whose sparsity is nearest `sparsity` (within `tol`)."""
        best = min(self.rounds, key=lambda r: abs(r.sparsity - sparsity))
        if abs(best.sparsity - sparsity) > tol:
            have = ", ".join(f"{r.sparsity:.4f}" for r in self.rounds)
            raise ValueError(f"no round has sparsity {sparsity} (have {have})")
        return best.mask

    def model(self, r: int, template: nn.Module | None = None) -> nn.Module:
        """A network holding the weights round `r` trained."""
        if template is None:
            if self.spec is None:
                raise ValueError("this result has no model spec: pass the model as template")
            template = self.spec.build()
        return with_state(template, self.rounds[r].state)

    def table(self) -> list[dict[str, Any]]:
        """One plain dict per round (for printing, JSON or a DataFrame)."""
        return [
            {
                "round": r.round,
                "data": r.data,
                "sparsity": r.sparsity,
                "kept": r.mask.kept,
                "accuracy": r.accuracy,
                "train_accuracy": r.train_accuracy,
                "steps": r.steps,
                "samples": r.samples,
                "train_seconds": r.train_seconds,
                "mask_samples": r.mask_samples,
                "mask_seconds": r.mask_seconds,
            }
            for r in self.rounds
        ]

    def format(self) -> str:
        """The per-round table as text."""
        lines = [
            f"{'round':>5} {'data':<20} {'sparsity':>8} {'kept':>9} {'acc':>7} "
            f"{'train acc':>9} {'mask cost (samples)':>20} {'mask cost (s)':>13}"
        ]
        for row in self.table():
            acc = "-" if row["accuracy"] is None else f"{row['accuracy']:.4f}"
            tacc = "-" if row["train_accuracy"] is None else f"{row['train_accuracy']:.4f}"
            lines.append(
                f"{row['round']:>5} {row['data'][:20]:<20} {row['sparsity']:>8.4f} "
                f"{row['kept']:>9} {acc:>7} {tacc:>9} {row['mask_samples']:>20,} "
                f"{row['mask_seconds']:>13.1f}"
            )
        return "\n".join(lines)

    def plot(self, **kwargs: Any):
        from lmc_toolkit.plots.pruning import plot_imp

        return plot_imp(self, **kwargs)
