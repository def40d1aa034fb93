"""The study's networks behind one registry: `build(name, num_classes, in_shape, init_seed)`.

Every model adapts to its input shape (1×8×8 digits, 1×28×28 MNIST, 3×32×32 CIFAR, 3×224×224
ImageNet) and is initialized from `init_seed` alone, as the paper does: conv weights
N(0, 2/(k²·out_channels)), norm γ=1 and β=0, linear layers PyTorch's default. `build` records a
`ModelSpec` on the model (`model.spec`) so that runs can rebuild it.
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

Builder = Callable[..., nn.Module]
_REGISTRY: dict[str, Builder] = {}


@dataclass(frozen=True)
class ModelSpec:
    """Everything `build` needs to make the same network again."""

    name: str
    num_classes: int
    in_shape: tuple[int, int, int]
    init_seed: int = 0
    options: tuple[tuple[str, Any], ...] = ()

    def build(self, device: torch.device | str | None = None) -> nn.Module:
        return build(
            self.name, self.num_classes, self.in_shape, self.init_seed, device, **dict(self.options)
        )


def register(name: str) -> Callable[[Builder], Builder]:
    """Add a model builder `fn(num_classes, in_shape, **options) -> nn.Module` under `name`."""

    def add(fn: Builder) -> Builder:
        _REGISTRY[name] = fn
        return fn

    return add


def available() -> list[str]:
    """The model names `build` accepts."""
    return sorted(_REGISTRY)


def build(
    name: str,
    num_classes: int = 10,
    in_shape: tuple[int, int, int] = (1, 28, 28),
    init_seed: int = 0,
    device: torch.device | str | None = None,
    **options: Any,
) -> nn.Module:
    """Build registry model `name`, initialized from `init_seed` (the global RNG is left untouched).

    Args:
        name: One of `available()` (e.g. `"convnet3"`, `"lenet"`, `"resnet18"`).
        num_classes: Outputs of the classifier (≥ 2).
        in_shape: C×H×W of one input image.
        init_seed: Seeds the initialization: the same seed gives the same θ0 on every device.
        device: Where the model lives (default: the CPU).
        **options: The architecture's own options (e.g. `width`, `depth`, `norm`).

    Returns:
        The model, with `model.spec` recording how to build it again.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(available())}")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int ≥ 2, got {num_classes!r}")
    shape = tuple(in_shape)
    if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ValueError(f"in_shape must be three positive ints (C, H, W), got {in_shape!r}")
    _check_options(name, options)
    with torch.random.fork_rng(devices=[]):
        model = _REGISTRY[name](num_classes, shape, **options)
    initialize(model, torch.Generator().manual_seed(int(init_seed)))
    model.spec = ModelSpec(name, num_classes, shape, int(init_seed), tuple(sorted(options.items())))
    return model.to(device) if device is not None else model


def _check_options(name: str, options: Mapping[str, Any]) -> None:
    """A `ValueError` naming an option model `name` does not take, and the ones it does."""
    params = inspect.signature(_REGISTRY[name]).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    known = list(params)[2:]  # after (num_classes, in_shape)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(
            f"unknown option {unknown[0]!r} for model {name!r}; its options: {', '.join(known) or 'none'}"
        )


def initialize(model: nn.Module, generator: torch.Generator) -> None:
    """The paper's initialization, drawn from `generator` module by module in order."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(
                    m.weight, mode="fan_out", nonlinearity="relu", generator=generator
                )
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
                if m.bias is not None:
                    bound = 1 / math.sqrt(m.in_features)
                    nn.init.uniform_(m.bias, -bound, bound, generator=generator)
            elif (
                isinstance(m, nn.BatchNorm2d | nn.GroupNorm | nn.InstanceNorm2d | nn.LayerNorm)
                and m.weight is not None
            ):
                m.weight.fill_(1.0)
                m.bias.zero_()


def _flat_size(features: nn.Module, in_shape: tuple[int, int, int]) -> int:
    with torch.no_grad():
        return features(torch.zeros(1, *in_shape)).numel()


def _option_int(name: str, value: Any, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int ≥ {minimum}, got {value!r}")
    return value


@register("mlp")
def mlp(num_classes: int, in_shape: tuple[int, int, int], hidden: tuple[int, ...] = (300, 100)):
    """A fully connected ReLU network; the default is LeNet-300-100. `hidden` is a tuple of
    widths (one int means one hidden layer)."""
    hidden = (hidden,) if isinstance(hidden, int) and not isinstance(hidden, bool) else hidden
    widths = [math.prod(in_shape), *(_option_int("hidden width", h) for h in hidden)]
    layers: list[nn.Module] = [nn.Flatten()]
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(widths[-1], num_classes))
    return nn.Sequential(*layers)


@register("lenet")
def lenet(num_classes: int, in_shape: tuple[int, int, int]):
    """LeNet-5 with 'same' padding, so it also fits 8×8 inputs."""
    features = nn.Sequential(
        nn.Conv2d(in_shape[0], 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
    )
    if min(in_shape[1:]) < 4:
        raise ValueError(f"lenet needs inputs of at least 4×4, got {in_shape}")
    n = _flat_size(features, in_shape)
    head = [nn.Linear(n, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes)]
    return nn.Sequential(*features, *head)


@register("convnet3")
def convnet(
    num_classes: int, in_shape: tuple[int, int, int], width: int = 128, depth: int = 3
) -> nn.Module:
    """The paper's ConvNet-3: depth × [conv3×3 → InstanceNorm(affine) → ReLU → AvgPool 2], linear.

    Instance norm is `GroupNorm(width, width)` as in the distillation code bases. As in DC's
    ConvNet, a 1×28×28 input gets padding 3 in the first conv, so it is seen as 32×32.
    """
    width, depth = _option_int("width", width), _option_int("depth", depth)
    c, h, w = in_shape
    layers: list[nn.Module] = []
    size = min(h, w) + (4 if (c, h, w) == (1, 28, 28) else 0)
    for d in range(depth):
        if size < 2:
            raise ValueError(
                f"convnet3 with depth {depth} pools a {h}×{w} input below 1×1; "
                f"use depth ≤ {d} for this input"
            )
        pad = 3 if d == 0 and (c, h, w) == (1, 28, 28) else 1
        layers += [
            nn.Conv2d(c if d == 0 else width, width, 3, padding=pad),
            nn.GroupNorm(width, width, affine=True),
            nn.ReLU(),
            nn.AvgPool2d(2),
        ]
        size //= 2
    features = nn.Sequential(*layers, nn.Flatten())
    return nn.Sequential(*features, nn.Linear(_flat_size(features, in_shape), num_classes))


class BasicBlock(nn.Module):
    """conv3×3-BN-ReLU-conv3×3-BN plus a (1×1 conv + BN when the shape changes) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    """A ResNet of BasicBlocks: stem, four stages (widths w, 2w, 4w, 8w), average pool, linear."""

    def __init__(
        self, num_classes: int, in_channels: int, blocks: list[int], width: int, imagenet_stem: bool
    ):
        super().__init__()
        if imagenet_stem:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, width, 7, 2, 3, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.MaxPool2d(3, 2, 1),
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
            )
        stages, cin = [], width
        for i, n in enumerate(blocks):
            cout = width * 2**i
            for j in range(n):
                stages.append(BasicBlock(cin, cout, 2 if (i > 0 and j == 0) else 1))
                cin = cout
        self.layers = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.layers(self.stem(x))))


@register("resnet10")
def resnet10(num_classes: int, in_shape: tuple[int, int, int], width: int = 32) -> nn.Module:
    """The paper's narrow CIFAR ResNet-10: one block per stage, widths 32/64/128/256, 3×3 stem."""
    return ResNet(num_classes, in_shape[0], [1, 1, 1, 1], _option_int("width", width), False)


@register("resnet18")
def resnet18(num_classes: int, in_shape: tuple[int, int, int], width: int = 32) -> nn.Module:
    """The paper's narrow CIFAR ResNet-18: two blocks per stage, widths 32/64/128/256."""
    return ResNet(num_classes, in_shape[0], [2, 2, 2, 2], _option_int("width", width), False)


@register("resnet10_imagenet")
def resnet10_imagenet(
    num_classes: int, in_shape: tuple[int, int, int], width: int = 64
) -> nn.Module:
    """ImageNet ResNet-10: 7×7 stride-2 stem with max pool, [1, 1, 1, 1] blocks, widths 64-512."""
    if min(in_shape[1:]) < 32:
        raise ValueError(f"resnet10_imagenet needs inputs of at least 32×32, got {in_shape}")
    return ResNet(num_classes, in_shape[0], [1, 1, 1, 1], _option_int("width", width), True)


def check_input(model: nn.Module, in_shape: tuple[int, ...], what: str = "data") -> None:
    """Raise a clear error when `in_shape` is not the input shape `model` was built for."""
    spec = getattr(model, "spec", None)
    if isinstance(spec, ModelSpec) and tuple(in_shape) != spec.in_shape:
        raise ValueError(
            f"{what} has images of shape {tuple(in_shape)} but the {spec.name} model was built "
            f"for {spec.in_shape}"
        )
