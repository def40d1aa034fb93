"""Evaluation of a model on a dataset: mean loss and accuracy, in eval mode, the model left as it was."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lmc_toolkit.data.dataset import (
    check_batch_size,
)
from lmc_toolkit.data.entrance import DataLike, as_dataset
from lmc_toolkit.training.probe import check_labels, check_model_input
from lmc_toolkit.training.results import Metrics


def device_of(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    return torch.device("cpu")


def default_eval_batch(device: torch.device) -> int:
    """Cache-sized chunks on the CPU are faster than one big batch; GPUs like big batches."""
    return 100 if device.type == "cpu" else 1000


def evaluate(model: nn.Module, data: DataLike, batch_size: int | None = None) -> Metrics:
    """Mean loss and accuracy of `model` (in eval mode) on `data`; the model is left as it was."""
    data = as_dataset(data, "evaluation data")
    check_model_input(model, data, "evaluation data")
    check_labels(data, "evaluation data", "evaluate")
    device = device_of(model)
    batch_size = batch_size or default_eval_batch(device)
    check_batch_size(batch_size)
    data = data.to(device)
    was_training = model.training
    model.eval()
    loss = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.long)
    try:
        with torch.inference_mode():
            for x, y in data.batches(batch_size, shuffle=False):
                out = model(x)
                loss += F.cross_entropy(out, y, reduction="sum").double()
                correct += (out.argmax(1) == y).sum()
    finally:
        model.train(was_training)
    n = len(data)
    return Metrics(loss=float(loss) / n, accuracy=int(correct) / n, n=n)
