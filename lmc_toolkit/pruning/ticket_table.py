"""Trained tickets' test results: one `TicketEntry` per (method, mask, data seed), their
mean and spread per method and sparsity (`TicketSummary`), and the `TicketTable` holding them
(figure F1's data), with its masks and the store keys to reload each trained network."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from torch import nn

from lmc_toolkit.pruning.mask import Mask
from lmc_toolkit.store.runs import Store
from lmc_toolkit.training.results import TrainResult

if TYPE_CHECKING:
    from lmc_toolkit.pruning.tickets import TicketRun


@dataclass(frozen=True)
class TicketEntry:
    """One trained ticket: method, sparsity, data seed, test metrics, its training time
    (`seconds`, as measured when it was trained), whether it came from the store, its key."""

    method: str
    sparsity: float
    data_seed: int
    accuracy: float
    loss: float
    seconds: float
    cached: bool
    key: TicketRun
    run: str | None = None


@dataclass(frozen=True)
class TicketSummary:
    """Mean and sample standard deviation (over data seeds, ddof 1; NaN for one seed) of one
    method at one sparsity."""

    method: str
    sparsity: float
    mean: float
    std: float
    n: int


@dataclass(frozen=True)
class TicketTable:
    """Test accuracy of trained tickets, one entry per (method, mask, data seed)."""

    entries: tuple[TicketEntry, ...]
    masks: Mapping[str, tuple[Mask | None, ...]]
    test_data: str
    data_seeds: tuple[int, ...]
    seconds: float = 0.0

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.method for e in self.entries))

    def summary(self) -> tuple[TicketSummary, ...]:
        groups: dict[tuple[str, float], list[float]] = {}
        for e in self.entries:
            groups.setdefault((e.method, round(e.sparsity, 6)), []).append(e.accuracy)
        out = []
        for (method, sparsity), accs in groups.items():
            mean = sum(accs) / len(accs)
            # the sample standard deviation (ddof 1): one seed gives none
            spread = (
                sum((a - mean) ** 2 for a in accs) / (len(accs) - 1) if len(accs) > 1 else math.nan
            )
            std = math.sqrt(spread)
            out.append(TicketSummary(method, sparsity, mean, std, len(accs)))
        return tuple(out)

    def format(self) -> str:
        """Accuracy (mean ± std over data seeds) per method and sparsity, as text."""
        lines = [f"{'method':<14} {'sparsity':>8} {'accuracy':>17} {'seeds':>5}"]
        for s in sorted(self.summary(), key=lambda s: (self.methods.index(s.method), s.sparsity)):
            lines.append(f"{s.method:<14} {s.sparsity:>8.4f} {s.mean:>9.4f} ± {s.std:.4f} {s.n:>5}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain numbers (for JSON): the entries and the summary."""
        return {
            "test_data": self.test_data,
            "data_seeds": list(self.data_seeds),
            "seconds": self.seconds,
            "entries": [{k: v for k, v in asdict(e).items() if k != "key"} for e in self.entries],
            "summary": [asdict(s) for s in self.summary()],
        }

    def entry(self, method: str, sparsity: float, data_seed: int, tol: float = 5e-3) -> TicketEntry:
        """The entry of `method` at the sparsity nearest `sparsity` (within `tol`)."""
        rows = [e for e in self.entries if e.method == method and e.data_seed == data_seed]
        if not rows:
            raise ValueError(
                f"no ticket for method {method!r} and data seed {data_seed} "
                f"(methods {self.methods}, seeds {self.data_seeds})"
            )
        best = min(rows, key=lambda e: abs(e.sparsity - sparsity))
        if abs(best.sparsity - sparsity) > tol:
            have = ", ".join(f"{e.sparsity:.4f}" for e in rows)
            raise ValueError(f"{method!r} has no ticket at sparsity {sparsity} (have {have})")
        return best

    def trained(self, method: str, sparsity: float, data_seed: int, store: Store) -> TrainResult:
        """The stored `TrainResult` of one ticket (see the module docstring)."""
        key = self.entry(method, sparsity, data_seed).key
        run = store.run(key)
        if not run.has("result", ".pt"):
            raise FileNotFoundError(f"{run.path} holds no trained ticket: was it another store?")
        return TrainResult.from_dict(run.load("result"))

    def model(
        self,
        method: str,
        sparsity: float,
        data_seed: int,
        store: Store,
        template: nn.Module | None = None,
    ) -> nn.Module:
        """The trained network of one ticket."""
        return self.trained(method, sparsity, data_seed, store).model(template)

    def mask(self, method: str, sparsity: float) -> Mask | None:
        """The mask of `method` nearest `sparsity` (None for a dense entry)."""
        masks = self.masks[method]
        best = min(masks, key=lambda m: abs((0.0 if m is None else m.sparsity) - sparsity))
        return best

    def plot(self, **kwargs: Any):
        from lmc_toolkit.plots.pruning import plot_accuracy_vs_sparsity

        return plot_accuracy_vs_sparsity(self, **kwargs)
