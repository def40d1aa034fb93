"""lmc_toolkit: linear mode connectivity, loss landscapes, Hessians and lottery tickets with
synthetic data. See the README for a tour; `lmc-toolkit --help` for the command line."""

from lmc_toolkit.data import Dataset, load
from lmc_toolkit.models import build
from lmc_toolkit.store import Store
from lmc_toolkit.train import Metrics, TrainConfig, TrainResult, evaluate, train

__version__ = "0.1.0"
__all__ = [
    "Dataset",
    "Metrics",
    "Store",
    "TrainConfig",
    "TrainResult",
    "build",
    "evaluate",
    "load",
    "train",
]
