"""Dataset distillation by distribution matching (Zhao & Bilen 2023).

Each iteration samples a freshly initialized network and matches, class by class, the mean
embedding (penultimate layer) of an augmented real batch and of the augmented synthetic images
under the same augmentation draw. The machinery it shares with gradient matching (checks,
starting images, random streams, the record) is in `lmc_toolkit.synth.matching`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from lmc_toolkit.data.dataset import Dataset
from lmc_toolkit.data.entrance import as_dataset
from lmc_toolkit.store.runs import Store
from lmc_toolkit.synth.augment import SiameseAugment
from lmc_toolkit.synth.common import cached_set
from lmc_toolkit.synth.matching import (
    Matching,
    MatchingRun,
    Setup,
    check_args,
    finish,
    matching_run,
)


@dataclass(frozen=True)
class DistributionMatchingRun(MatchingRun):
    """The identity of one distribution-matching set in the store."""

    def run_prefix(self) -> str:
        return f"synth-dm-{self.source.name}-ipc{self.ipc}"


def distribution_matching(
    data: Dataset,
    ipc: int,
    iterations: int,
    *,
    model: str = "convnet3",
    lr: float = 1.0,
    real_batch: int = 256,
    init: str = "real",
    augment: bool | SiameseAugment = True,
    seed: int = 0,
    model_options: dict[str, Any] | None = None,
    momentum: float = 0.5,
    factor: int = 1,
    store: Store | None = None,
    recompute: bool = False,
    progress: bool = True,
) -> Dataset:
    """Distill `ipc` images per class by matching mean embeddings of random networks (DM).

    Each of `iterations` steps builds a freshly initialized `model`, embeds (penultimate layer)
    an augmented batch of `real_batch` real images of each class and that class's augmented
    synthetic images, under the same augmentation draw, and takes one SGD step on the synthetic
    pixels against the sum over classes of the squared distance between the two mean embeddings.

    Args:
        data: The real training set.
        ipc: Synthetic images per class.
        iterations: Matching steps.
        model: The registry network that embeds (a fresh initialization every step).
        lr: The pixels' learning rate.
        real_batch: Real images per class per step.
        init: `"real"` starts from random real images, `"noise"` from N(0, 1) pixels (in the
            normalized space).
        augment: True: DSA's default policy for the dataset; False: none; or a `SiameseAugment`.
        seed: Seeds the initial images, the networks, the batches and the augmentations.
        model_options: The embedding network's options (e.g. `{"width": 64}`).
        momentum: The pixels' SGD momentum.
        factor: Store f×f downscaled images in each image (multi-formation).
        store: A run store: the set is made once and reloaded.
        recompute: Make it again and overwrite the stored one.
        progress: Show a progress bar.

    Returns:
        The synthetic `Dataset`, its recipe and cost in `meta`.
    """
    data = as_dataset(data, "the source data")
    setup = check_args(
        data,
        ipc=ipc,
        iterations=iterations,
        model=model,
        model_options=model_options,
        lr=lr,
        momentum=momentum,
        real_batch=real_batch,
        init=init,
        augment=augment,
        seed=seed,
        factor=factor,
    )
    config = matching_run(
        DistributionMatchingRun, data, setup, lr, momentum, ipc=ipc, iterations=iterations,
        model=model, real_batch=real_batch, init=init, factor=factor, seed=seed,
    )  # fmt: skip

    def compute() -> Dataset:
        return _run_dm(data, config, setup, progress)

    return cached_set(config, compute, store, data.device, recompute)


def embedder(net: nn.Module) -> nn.Module:
    """The network without its classifier: the penultimate features."""
    if isinstance(net, nn.Sequential):
        return net[:-1]
    if isinstance(getattr(net, "fc", None), nn.Linear):
        net.fc = nn.Identity()
        return net
    raise ValueError(f"cannot find the classifier of {type(net).__name__} to embed with it")


def _run_dm(
    data: Dataset, config: DistributionMatchingRun, setup: Setup, progress: bool
) -> Dataset:
    start = time.perf_counter()
    run = Matching.start(data, config, setup)
    losses = []
    bar = tqdm(range(config.iterations), desc="distribution matching", disable=not progress)
    for _ in bar:
        embed = embedder(run.fresh_net())
        embed.requires_grad_(False)
        loss = torch.zeros((), device=data.device)
        for c in range(len(run.rows_of)):
            real, syn = run.class_pair(c)
            with torch.no_grad():
                mean_real = embed(real).flatten(1).mean(0)
            mean_syn = embed(syn).flatten(1).mean(0)
            loss = loss + ((mean_real - mean_syn) ** 2).sum()
        losses.append(run.step(loss))
        bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
    bar.close()
    return finish(data, config, "dm", run.stored, losses, time.perf_counter() - start)
