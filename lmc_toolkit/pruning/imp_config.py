"""What an IMP run is: `ImpConfig` (rounds, rate, scope, rewinding, the inner training), its store
identity `ImpRun`, and the cost accounting of its rounds.

Rewinding (`ImpConfig.rewind`): `"init"` restarts each round from θ0 ⊙ m_r (the lottery-ticket
reset); an int k from θ_k ⊙ m_r, round 0's dense network after k steps, trained from step k;
`"lr"` from the previous round's final weights ⊙ m_r with the whole schedule again (learning-rate
rewinding); `"finetune"` from those weights at the schedule's final learning rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeAlias, TypeGuard, get_args

from lmc_toolkit.data.dataset import num_batches
from lmc_toolkit.pruning.prune import Scope, check_fraction, check_scope
from lmc_toolkit.training.config import TrainConfig
from lmc_toolkit.training.identity import NetworkKey

RewindName = Literal["init", "lr", "finetune"]
REWINDS: tuple[RewindName, ...] = get_args(RewindName)
#: where each IMP round starts: a named point, or a step k of round 0's dense training
Rewind: TypeAlias = RewindName | int


def is_rewind_name(text: object) -> TypeGuard[RewindName]:
    """Whether `text` names a rewind point ("init", "lr", "finetune")."""
    return text in REWINDS


@dataclass(frozen=True)
class ImpConfig:
    """How to prune: `rounds` of pruning `rate` of the remaining weights each, over `scope`
    ("global" or "layerwise"), rewinding as `rewind` says (see the module docstring), with the
    inner training `train`. `prune_first`/`prune_last` put the first conv / the classifier in
    the prunable set (the study prunes both)."""

    rounds: int = 10
    rate: float = 0.2
    scope: Scope = "global"
    rewind: Rewind = "init"
    train: TrainConfig = field(default_factory=TrainConfig)
    prune_first: bool = True
    prune_last: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.rounds, bool) or not isinstance(self.rounds, int) or self.rounds < 0:
            raise ValueError(
                f"rounds must be an int ≥ 0 (0: round 0 only, the dense training), got "
                f"{self.rounds!r}"
            )
        try:
            check_fraction(self.rate)
        except ValueError:
            raise ValueError(
                f"rate (the fraction of the remaining weights pruned per round) must lie "
                f"strictly between 0 and 1, got {self.rate!r}"
            ) from None
        check_scope(self.scope)
        r = self.rewind
        if isinstance(r, bool) or not (r in REWINDS or (isinstance(r, int) and r >= 0)):
            raise ValueError(
                f"rewind must be 'init', 'lr', 'finetune' or a step k ≥ 0 (int), got {r!r}"
            )
        if not isinstance(self.train, TrainConfig):
            raise TypeError(f"train must be a TrainConfig, got {type(self.train).__name__}")

    @property
    def rewind_step(self) -> int | None:
        """k when every round starts from step k of round 0's dense training, else None."""
        return self.rewind if isinstance(self.rewind, int) else None

    def sparsity(self, r: int) -> float:
        """The nominal sparsity after r rounds, 1 − (1 − rate)^r (the real one is within
        rounding of this)."""
        return 1.0 - (1.0 - self.rate) ** r


@dataclass(frozen=True)
class ImpRun(NetworkKey):
    """The store identity of an IMP run (its rounds are the files `round-000.pt`, ...).

    `config` has `rounds` reset to its default, so runs of different lengths share rounds."""

    prune_data: str = ""
    prune_data_hash: str = ""
    config: ImpConfig = field(default_factory=ImpConfig)
    data_seed: int = 0
    start_mask: str = ""

    def run_prefix(self) -> str:
        return f"imp-{self.prune_data}-{self.model}"


def samples_seen(n: int, batch_size: int, start: int, stop: int) -> int:
    """Images through forward and backward in optimizer steps [start, stop) of epochs over `n`
    images in batches of `batch_size` (the last batch of an epoch may be short)."""
    spe = num_batches(n, batch_size)
    per_epoch = n

    def upto(step: int) -> int:
        epochs, offset = divmod(step, spe)
        return epochs * per_epoch + min(offset * batch_size, n)

    return upto(stop) - upto(start)


def parse_rewind(text: str) -> Rewind:
    """`"init"`, `"lr"`, `"finetune"` or a step number, from the command line."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    if is_rewind_name(text):
        return text
    raise ValueError(f"rewind must be init, lr, finetune or a step number, got {text!r}")
