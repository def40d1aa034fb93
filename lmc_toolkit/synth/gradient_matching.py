"""Dataset distillation by gradient matching (Zhao et al. 2021, DC; Kim et al. 2022, IDC).

Randomly initialized networks are used in turn; with each, the per-layer gradients of the
classification loss on a real batch of each class and on that class's synthetic images (same
siamese augmentation draw) are compared, and the synthetic pixels take a step to bring them
together, while the network trains on the synthetic images between matching steps. DC
compares gradients by a layer-wise cosine distance, IDC by squared error; `factor=f` is IDC's
multi-formation (each stored image holds f×f downscaled images, decoded bilinearly).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from lmc_toolkit.checks import check_int
from lmc_toolkit.data.dataset import Dataset
from lmc_toolkit.data.entrance import as_dataset
from lmc_toolkit.store.runs import Store
from lmc_toolkit.synth import multiformation
from lmc_toolkit.synth.augment import SiameseAugment
from lmc_toolkit.synth.common import cached_set, draw_seed
from lmc_toolkit.synth.matching import (
    Matching,
    MatchingRun,
    Setup,
    apply_augment,
    check_args,
    finish,
    matching_run,
)

DISTANCES = ("cosine", "mse")


@dataclass(frozen=True, kw_only=True)
class GradientMatchingRun(MatchingRun):
    """The identity of one gradient-matching set in the store."""

    outer_loops: int
    inner_loops: int
    lr: float = 0.1
    lr_net: float = 0.01
    syn_batch: int = 256
    distance: str = "cosine"

    def run_prefix(self) -> str:
        return f"synth-gm-{self.source.name}-ipc{self.ipc}"


def gradient_matching(
    data: Dataset,
    ipc: int,
    *,
    outer_loops: int = 10,
    inner_loops: int = 50,
    iterations: int = 100,
    model: str = "convnet3",
    lr: float = 0.1,
    lr_net: float = 0.01,
    real_batch: int = 256,
    syn_batch: int = 256,
    init: str = "real",
    augment: bool | SiameseAugment = True,
    distance: str = "cosine",
    factor: int = 1,
    seed: int = 0,
    model_options: dict[str, Any] | None = None,
    momentum: float = 0.5,
    store: Store | None = None,
    recompute: bool = False,
    progress: bool = True,
) -> Dataset:
    """Distill `ipc` stored images per class by matching per-layer gradients (DC, IDC).

    `iterations` freshly initialized networks are used in turn. With each, `outer_loops` times:
    the gradient of the loss on an augmented real batch of each class is compared with the
    gradient on that class's synthetic images (same augmentation draw) over the weights of every
    conv and linear layer; one SGD step on the pixels follows; then, except after the last, the
    network trains `inner_loops` SGD steps on augmented batches of the synthetic images.

    Args:
        data: The real training set.
        ipc: Stored images per class.
        outer_loops: Pixel steps per network.
        inner_loops: Network steps between pixel steps.
        iterations: Freshly initialized networks.
        model: The registry network.
        lr: The pixels' learning rate.
        lr_net: The network's learning rate.
        real_batch: Real images per class per pixel step.
        syn_batch: At most this many synthetic images per network step.
        init: `"real"` (random real images) or `"noise"` (N(0, 1) pixels).
        augment: True: DSA's default policy for the dataset; False: none; or a `SiameseAugment`.
        distance: `"cosine"` (DC's sum over output units of 1 − cos) or `"mse"` (IDC's squared
            error).
        factor: Store f×f downscaled images in each image (IDC's multi-formation).
        seed: Seeds the initial images, the networks, the batches and the augmentations.
        model_options: The network's options (e.g. `{"width": 64}`).
        momentum: The pixels' SGD momentum.
        store: A run store: the set is made once and reloaded.
        recompute: Make it again and overwrite the stored one.
        progress: Show a progress bar.

    Returns:
        The synthetic `Dataset` (decoded to `ipc · factor²` images per class), its recipe and
        cost in `meta`.
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
    for name, value in (("outer_loops", outer_loops), ("syn_batch", syn_batch)):
        check_int(name, value, 1)
    check_int("inner_loops", inner_loops, 0)
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
    if not lr_net > 0:
        raise ValueError(f"lr_net must be > 0, got {lr_net!r}")
    config = matching_run(
        GradientMatchingRun, data, setup, lr, momentum, ipc=ipc, iterations=iterations,
        outer_loops=outer_loops, inner_loops=inner_loops, model=model, lr_net=float(lr_net),
        real_batch=real_batch, syn_batch=syn_batch, init=init, distance=distance,
        factor=factor, seed=seed,
    )  # fmt: skip

    def compute() -> Dataset:
        return _run_gm(data, config, setup, progress)

    return cached_set(config, compute, store, data.device, recompute)


def layer_distance(real: Tensor, syn: Tensor, distance: str) -> Tensor:
    """The matching distance of one layer's gradients.

    "cosine" (DC): rows are output units (a conv kernel or a linear row, flattened); the sum
    over units of 1 − cos(real, syn). "mse" (IDC): the sum of squared differences.
    """
    if distance == "mse":
        return ((real - syn) ** 2).sum()
    r, s = real.flatten(1), syn.flatten(1)
    cos = (r * s).sum(1) / (r.norm(dim=1) * s.norm(dim=1) + 1e-6)
    return (1 - cos).sum()


def matched_parameters(net: nn.Module) -> list[Tensor]:
    """The parameters whose gradients are matched: conv and linear weights (dim ≥ 2)."""
    return [p for p in net.parameters() if p.dim() >= 2]


def _run_gm(data: Dataset, config: GradientMatchingRun, setup: Setup, progress: bool) -> Dataset:
    start = time.perf_counter()
    run = Matching.start(data, config, setup)
    labels = torch.arange(data.num_classes, device=data.device).repeat_interleave(config.ipc)
    losses = []
    total = config.iterations * config.outer_loops
    bar = tqdm(total=total, desc="gradient matching", disable=not progress)
    for _ in range(config.iterations):
        net = run.fresh_net()
        weights = matched_parameters(net)
        opt_net = torch.optim.SGD(net.parameters(), lr=config.lr_net)
        for outer in range(config.outer_loops):
            loss = torch.zeros((), device=data.device)
            for c in range(len(run.rows_of)):
                real, syn = run.class_pair(c)
                target = torch.full((len(real),), c, device=data.device)
                g_real = torch.autograd.grad(F.cross_entropy(net(real), target), weights)
                target = torch.full((len(syn),), c, device=data.device)
                g_syn = torch.autograd.grad(
                    F.cross_entropy(net(syn), target), weights, create_graph=True
                )
                for gr, gs in zip(g_real, g_syn, strict=True):
                    loss = loss + layer_distance(gr.detach(), gs, config.distance)
            losses.append(run.step(loss))
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
            if outer + 1 < config.outer_loops:
                _train_on_synthetic(net, opt_net, run, labels)
    bar.close()
    return finish(data, config, "gm", run.stored, losses, time.perf_counter() - start)


def _train_on_synthetic(
    net: nn.Module, opt: torch.optim.Optimizer, run: Matching, labels: Tensor
) -> None:
    """`inner_loops` SGD steps of the network on augmented batches of the decoded images."""
    config = run.config
    x, y = multiformation.decode(run.stored.detach(), labels, config.factor)
    for _ in range(config.inner_loops):
        pick = torch.randperm(len(x), generator=run.g_batch)[: config.syn_batch].to(x.device)
        xb = apply_augment(run.aug, x[pick], draw_seed(run.g_aug))
        loss = F.cross_entropy(net(xb), y[pick])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
