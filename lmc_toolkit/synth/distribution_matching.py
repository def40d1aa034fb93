"""Dataset distillation by distribution matching (Zhao & Bilen 2023), and what matching shares.

Distillation learns `ipc` images per class by gradient descent on the pixels, comparing real
and synthetic batches through randomly initialized networks, with the same siamese
augmentation draw applied to both batches (`lmc_toolkit.augment`). Distribution matching
samples a fresh network each iteration and matches, class by class, the mean embedding of an
augmented real batch and of the augmented synthetic images. Gradient matching
(`lmc_toolkit.gradmatch`) reuses the argument checks, the initialization and the record here.

With `factor=f` (IDC's multi-formation), each stored image holds f×f downscaled images that are
decoded by bilinear upsampling (`lmc_toolkit.multiformation`); the returned set holds the
decoded training images and `meta` records the factor.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from lmc_toolkit.data.dataset import Dataset
from lmc_toolkit.models import available, build
from lmc_toolkit.store.runs import Store
from lmc_toolkit.synth import multiformation
from lmc_toolkit.synth.augment import SiameseAugment, default_augment
from lmc_toolkit.synth.common import (
    Source,
    cached_set,
    check_ipc,
    check_seed,
    class_rows,
    draw_seed,
    generator,
    synthetic_dataset,
)
from lmc_toolkit.synth.subsets import random_rows

INITS = ("real", "noise")


@dataclass(frozen=True)
class DistributionMatchingRun:
    """The identity of one distribution-matching set in the store."""

    source: Source
    ipc: int
    iterations: int
    model: str = "convnet3"
    model_options: tuple[tuple[str, Any], ...] = ()
    lr: float = 1.0
    momentum: float = 0.5
    real_batch: int = 256
    init: str = "real"
    augment: SiameseAugment | None = None
    factor: int = 1
    seed: int = 0

    def run_prefix(self) -> str:
        return f"synth-dm-{self.source.name}-ipc{self.ipc}"


@dataclass(frozen=True)
class Setup:
    """What both methods need once the arguments are checked: the augmentation policy and
    the model options."""

    aug: SiameseAugment | None
    options: dict[str, Any]


def distribution_matching(
    data: Dataset,
    ipc: int,
    iterations: int,
    model: str = "convnet3",
    lr: float = 1.0,
    real_batch: int = 256,
    init: str = "real",
    augment: bool | SiameseAugment = True,
    seed: int = 0,
    *,
    model_options: dict[str, Any] | None = None,
    momentum: float = 0.5,
    factor: int = 1,
    store: Store | None = None,
    recompute: bool = False,
    progress: bool = True,
) -> Dataset:
    """Distill `ipc` images per class by matching mean embeddings of random networks.

    Each of `iterations` steps builds a freshly initialized `model` (with `model_options`,
    e.g. `{"width": 64}`), embeds (penultimate layer) an augmented batch of `real_batch` real
    images of each class and that class's augmented synthetic images, under the same
    augmentation draw, and takes one SGD step (learning rate `lr`, momentum 0.5) on the
    synthetic pixels against the sum over classes of the squared distance between the two mean
    embeddings. `init="real"` starts from random real images, `"noise"` from N(0, 1) pixels
    (in the normalized space). `augment=True` uses DSA's default policy for the dataset.
    """
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
    config = DistributionMatchingRun(
        source=Source.of(data),
        ipc=ipc,
        iterations=iterations,
        model=model,
        model_options=tuple(sorted(setup.options.items())),
        lr=float(lr),
        momentum=float(momentum),
        real_batch=real_batch,
        init=init,
        augment=setup.aug,
        factor=factor,
        seed=seed,
    )

    def compute() -> Dataset:
        return _run_dm(data, config, setup, progress)

    return cached_set(config, compute, store, data.device, recompute)


def check_int(name: str, value: Any, minimum: int) -> int:
    """Raise a `ValueError` naming `name` unless `value` is an int ≥ `minimum`."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int ≥ {minimum}, got {value!r}")
    return value


def check_args(
    data: Dataset,
    *,
    ipc: int,
    iterations: int,
    model: str,
    model_options: dict[str, Any] | None,
    lr: float,
    momentum: float,
    real_batch: int,
    init: str,
    augment: bool | SiameseAugment,
    seed: int,
    factor: int,
) -> Setup:
    """Validate the shared arguments before any work; resolve the augmentation policy."""
    check_ipc(data, ipc)
    multiformation.check_factor(factor)
    if factor > 1 and init == "real":
        check_ipc(data, ipc * factor * factor, f"ipc·factor² ({ipc}·{factor}²)")
    check_int("iterations", iterations, 0)
    check_int("real_batch", real_batch, 1)
    check_seed(seed)
    if model not in available():
        raise ValueError(f"unknown model {model!r}; known models: {', '.join(available())}")
    if not (isinstance(lr, int | float) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if not (isinstance(momentum, int | float) and 0 <= momentum < 1):
        raise ValueError(f"momentum must lie in [0, 1), got {momentum!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if isinstance(augment, bool):
        aug = default_augment(data.name) if augment else None
    elif isinstance(augment, SiameseAugment):
        aug = augment
    else:
        raise TypeError(f"augment must be True, False or a SiameseAugment, got {augment!r}")
    if model_options is not None and not isinstance(model_options, dict):
        raise TypeError(f"model_options must be a dict or None, got {model_options!r}")
    options = dict(model_options or {})
    build(model, data.num_classes, data.in_shape, 0, **options)  # bad options fail here
    return Setup(aug, options)


def initial_images(data: Dataset, ipc: int, init: str, factor: int, seed: int) -> Tensor:
    """The starting stored images, class-major: noise, or real images (encoded for factor > 1)
    chosen as `random_subset(data, ipc·factor², seed)` chooses them, so that zero iterations
    give back exactly the random control of the same seed."""
    if init == "noise":
        shape = (data.num_classes * ipc, *data.in_shape)
        return torch.randn(shape, generator=generator(seed, "init")).to(data.device)
    per_stored = factor * factor
    rows = random_rows(data, ipc * per_stored, seed).view(data.num_classes, -1)
    stored = [multiformation.encode(data.x[r.to(data.device)], factor) for r in rows]
    return torch.cat(stored).detach().clone()


def _embedder(net: nn.Module) -> nn.Module:
    """The network without its classifier: the penultimate features."""
    if isinstance(net, nn.Sequential):
        return net[:-1]
    if isinstance(getattr(net, "fc", None), nn.Linear):
        net.fc = nn.Identity()
        return net
    raise ValueError(f"cannot find the classifier of {type(net).__name__} to embed with it")


def fresh_net(data: Dataset, config: Any, init_seed: int) -> nn.Module:
    """A newly initialized `config.model` for `data`, on the data's device."""
    return build(
        config.model,
        data.num_classes,
        data.in_shape,
        init_seed,
        data.device,
        **dict(config.model_options),
    )


def real_batch_of(data: Dataset, rows: Tensor, n: int, g: torch.Generator) -> Tensor:
    """Up to `n` images drawn without replacement from `rows` of `data`."""
    pick = rows[torch.randperm(len(rows), generator=g)[:n]]
    return data.x[pick.to(data.device)]


def apply_augment(aug: SiameseAugment | None, x: Tensor, seed: int) -> Tensor:
    """`x` under the draw `seed` of `aug` (unchanged when there is no augmentation)."""
    return x if aug is None else aug(x, seed)


def finish(
    data: Dataset, config: Any, method: str, stored: Tensor, losses: list[float], seconds: float
) -> Dataset:
    """Decode the stored images and record how they were made."""
    ipc = config.ipc
    labels = torch.arange(data.num_classes, device=data.device).repeat_interleave(ipc)
    x, y = multiformation.decode_by_class(stored.detach(), labels, config.factor)
    settings = {
        k: v for k, v in asdict(config).items() if k not in ("source", "ipc", "augment", "seed")
    }
    settings["model_options"] = dict(config.model_options)
    meta = {
        **settings,
        "seed": config.seed,
        "augment": None if config.augment is None else asdict(config.augment),
        "stored_images": len(stored),
        "losses": losses,
        "seconds": seconds,
    }
    return synthetic_dataset(x, y, data, method, ipc, meta)


def _run_dm(
    data: Dataset, config: DistributionMatchingRun, setup: Setup, progress: bool
) -> Dataset:
    start = time.perf_counter()
    stored = initial_images(data, config.ipc, config.init, config.factor, config.seed)
    stored.requires_grad_(True)
    opt = torch.optim.SGD([stored], lr=config.lr, momentum=config.momentum)
    g_net, g_batch, g_aug = (generator(config.seed, s) for s in ("net", "batch", "augment"))
    rows_of = class_rows(data)
    per_class = config.ipc
    losses = []
    bar = tqdm(range(config.iterations), desc="distribution matching", disable=not progress)
    for _ in bar:
        embed = _embedder(fresh_net(data, config, draw_seed(g_net)))
        embed.requires_grad_(False)
        loss = torch.zeros((), device=data.device)
        for c, rows in enumerate(rows_of):
            aug_seed = draw_seed(g_aug)
            real = apply_augment(
                setup.aug, real_batch_of(data, rows, config.real_batch, g_batch), aug_seed
            )
            syn, _ = multiformation.decode(
                stored[c * per_class : (c + 1) * per_class], None, config.factor
            )
            syn = apply_augment(setup.aug, syn, aug_seed)
            with torch.no_grad():
                mean_real = embed(real).flatten(1).mean(0)
            mean_syn = embed(syn).flatten(1).mean(0)
            loss = loss + ((mean_real - mean_syn) ** 2).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
    bar.close()
    return finish(data, config, "dm", stored, losses, time.perf_counter() - start)
