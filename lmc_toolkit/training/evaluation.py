"""Evaluation of a model on a dataset: mean loss and accuracy, in eval mode, the model left as it was."""

from __future__ import annotations

import math

import torch
from torch import nn

from lmc_toolkit.data.dataset import (
    check_batch_size,
)
from lmc_toolkit.data.entrance import DataLike, as_data
from lmc_toolkit.data.stream import Stream
from lmc_toolkit.training.losses import LossFn, LossName, batch_scores, check_loss
from lmc_toolkit.training.probe import check_model_input
from lmc_toolkit.training.results import Metrics


def device_of(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    return torch.device("cpu")


def default_eval_batch(device: torch.device) -> int:
    """Cache-sized chunks on the CPU are faster than one big batch; GPUs like big batches."""
    return 100 if device.type == "cpu" else 1000


def evaluate(
    model: nn.Module,
    data: DataLike,
    batch_size: int | None = None,
    loss: LossName | LossFn = "cross_entropy",
) -> Metrics:
    """Mean loss and accuracy of `model` (in eval mode) on `data`; the model is left as it was.

    Args:
        model: The network.
        data: Any data `as_dataset` takes, or a `Stream` (read in its own batches).
        batch_size: Examples per forward pass (default: 100 on the CPU, 1000 on a GPU;
            a `Stream`'s are the source's).
        loss: `"cross_entropy"`, `"mse"` or a callable `loss(out, y)` giving a batch's mean.

    Returns:
        `Metrics`: the mean loss and the accuracy (NaN for regression targets).
    """
    data = as_data(data, "evaluation data")
    check_loss(loss, data.regression, "evaluation data", "evaluate")
    check_model_input(model, data, "evaluation data")
    device = device_of(model)
    batch_size = batch_size or default_eval_batch(device)
    check_batch_size(batch_size)
    if isinstance(data, Stream):  # the source's own batches, one at a time
        chunks = data.batches(device)
    else:
        chunks = data.to(device).batches(batch_size, shuffle=False)
    was_training = model.training
    model.eval()
    total = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.long)
    try:
        with torch.inference_mode():
            for x, y in chunks:
                part, right = batch_scores(loss, model(x), y)
                total += part
                correct += right.sum()
    finally:
        model.train(was_training)
    n = len(data)
    accuracy = math.nan if data.regression else int(correct) / n
    return Metrics(loss=float(total) / n, accuracy=accuracy, n=n)
