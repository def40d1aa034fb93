"""What training returns: metrics, the per-epoch record, checkpoints and `TrainResult`, each
convertible to tensors-and-primitives for the store.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import Tensor, nn

from lmc_toolkit.models import ModelSpec
from lmc_toolkit.training.config import TrainConfig
from lmc_toolkit.training.params import load_into


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
    #: the network `train` was given (a model the registry does not know is rebuilt from it);
    #: not saved with the result
    template: nn.Module | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:  # what the run did, not its state dict
        final = "" if self.final is None else f", final={self.final}"
        return (
            f"TrainResult(steps={self.steps}, data_seed={self.data_seed}, "
            f"seconds={self.seconds:.1f}, tensors={len(self.state)}, "
            f"checkpoints={sorted(self.checkpoints)}{final})"
        )

    def model(self, template: nn.Module | None = None, device: Any = None) -> nn.Module:
        """A fresh network holding the final weights: a copy of `template`, else built from
        `spec`, else a copy of the network `train` was given."""
        if template is None:
            if self.spec is not None:
                template = self.spec.build()
            elif self.template is not None:
                template = self.template
            else:
                raise ValueError(
                    "this result has no model spec and no template (it was loaded from a "
                    "file): pass the network, result.model(net)"
                )
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
