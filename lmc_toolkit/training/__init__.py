"""Training and evaluation: `TrainConfig`, `train -> TrainResult`, `evaluate`, cached runs,
BatchNorm policies for moved weights, and arithmetic on parameter dicts."""

from lmc_toolkit.training.batchnorm import BN_POLICIES, BNPolicy
from lmc_toolkit.training.config import OPTIMIZERS, TrainConfig
from lmc_toolkit.training.evaluation import evaluate
from lmc_toolkit.training.loop import train
from lmc_toolkit.training.results import Checkpoint, EpochRecord, Metrics, TrainResult
from lmc_toolkit.training.runs import TrainRun, default_device, train_run

__all__ = [
    "BN_POLICIES",
    "OPTIMIZERS",
    "BNPolicy",
    "Checkpoint",
    "EpochRecord",
    "Metrics",
    "TrainConfig",
    "TrainResult",
    "TrainRun",
    "default_device",
    "evaluate",
    "train",
    "train_run",
]
