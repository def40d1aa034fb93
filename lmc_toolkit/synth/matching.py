"""What distribution matching and gradient matching share: the run record's common fields, the
argument checks, the starting images, the random streams, the per-class batch pair (a real
batch and the synthetic images under one augmentation draw), and the finished `Dataset`.

Both learn `ipc` stored images per class by gradient descent on the pixels, comparing real and
synthetic batches through randomly initialized networks. With `factor=f` (IDC's
multi-formation), each stored image holds f×f downscaled images decoded by bilinear upsampling
(`lmc_toolkit.synth.multiformation`); the returned set holds the decoded training images.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from lmc_toolkit.checks import check_int
from lmc_toolkit.data.dataset import Dataset
from lmc_toolkit.models import available, build
from lmc_toolkit.synth import multiformation
from lmc_toolkit.synth.augment import SiameseAugment, default_augment
from lmc_toolkit.synth.common import (
    Source,
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
class MatchingRun:
    """The fields every matching method records (its store key is the subclass's name and the
    fields that differ from their defaults)."""

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


@dataclass(frozen=True)
class Setup:
    """What both methods need once the arguments are checked: the augmentation policy and
    the model options."""

    aug: SiameseAugment | None
    options: dict[str, Any]


def matching_run(
    cls: type[MatchingRun], data: Dataset, setup: Setup, lr: float, momentum: float, **fields: Any
) -> Any:
    """The run record `cls(...)` of checked arguments: the source, sorted model options, the
    resolved augmentation and float rates filled in."""
    return cls(
        source=Source.of(data),
        model_options=tuple(sorted(setup.options.items())),
        augment=setup.aug,
        lr=float(lr),
        momentum=float(momentum),
        **fields,
    )


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
    data = check_ipc(data, ipc)
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
    build(model, data.num_classes, data.image_shape, 0, **options)  # bad options fail here
    return Setup(aug, options)


def initial_images(data: Dataset, ipc: int, init: str, factor: int, seed: int) -> Tensor:
    """The starting stored images, class-major: noise, or real images (encoded for factor > 1)
    chosen as `random_subset(data, ipc·factor², seed)` chooses them, so that zero iterations
    give back exactly the random control of the same seed."""
    if init == "noise":
        shape = (data.num_classes * ipc, *data.image_shape)
        return torch.randn(shape, generator=generator(seed, "init")).to(data.device)
    per_stored = factor * factor
    rows = random_rows(data, ipc * per_stored, seed).view(data.num_classes, -1)
    stored = [multiformation.encode(data.x[r.to(data.device)], factor) for r in rows]
    return torch.cat(stored).detach().clone()


def fresh_net(data: Dataset, config: Any, init_seed: int) -> nn.Module:
    """A newly initialized `config.model` for `data`, on the data's device."""
    return build(
        config.model,
        data.num_classes,
        data.image_shape,
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


@dataclass
class Matching:
    """The state of one run: the stored images (optimized), their optimizer, the random
    streams (networks, batches, augmentation draws) and each class's rows of the real data."""

    data: Dataset
    config: Any
    aug: SiameseAugment | None
    stored: Tensor
    opt: torch.optim.Optimizer
    g_net: torch.Generator
    g_batch: torch.Generator
    g_aug: torch.Generator
    rows_of: list[Tensor]

    @classmethod
    def start(cls, data: Dataset, config: Any, setup: Setup) -> Matching:
        stored = initial_images(data, config.ipc, config.init, config.factor, config.seed)
        stored.requires_grad_(True)
        opt = torch.optim.SGD([stored], lr=config.lr, momentum=config.momentum)
        g_net, g_batch, g_aug = (generator(config.seed, s) for s in ("net", "batch", "augment"))
        return cls(data, config, setup.aug, stored, opt, g_net, g_batch, g_aug, class_rows(data))

    def fresh_net(self) -> nn.Module:
        """The next randomly initialized network of the run."""
        return fresh_net(self.data, self.config, draw_seed(self.g_net))

    def class_pair(self, c: int) -> tuple[Tensor, Tensor]:
        """Class `c`'s augmented real batch and its decoded synthetic images under the same
        augmentation draw."""
        aug_seed = draw_seed(self.g_aug)
        rows = self.rows_of[c]
        real = real_batch_of(self.data, rows, self.config.real_batch, self.g_batch)
        ipc = self.config.ipc
        syn, _ = multiformation.decode(
            self.stored[c * ipc : (c + 1) * ipc], None, self.config.factor
        )
        return apply_augment(self.aug, real, aug_seed), apply_augment(self.aug, syn, aug_seed)

    def step(self, loss: Tensor) -> float:
        """One optimizer step of the stored images on `loss`; its value."""
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(loss.detach())
