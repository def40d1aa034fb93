"""Stored training runs by name: `TrainRun` (data, model, config and seeds) and `train_run`, which
loads, builds, trains and caches; the default device.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch

from lmc_toolkit.data.sources import load_in_memory
from lmc_toolkit.models import build
from lmc_toolkit.store.runs import Store
from lmc_toolkit.training.config import TrainConfig
from lmc_toolkit.training.loop import train
from lmc_toolkit.training.results import TrainResult


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
    root: str | None = None,
) -> TrainResult:
    """Load `run.data` (from `root`, for the datasets that read files), build `run.model`,
    train it and evaluate on the test split; with a store the result is computed once and
    reloaded afterwards (the data's location is not part of the run's identity)."""
    train_data = load_in_memory(run.data, "train", root)
    test_data = load_in_memory(run.data, "test", root)
    model = build(
        run.model,
        train_data.num_classes,
        train_data.image_shape,
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
