"""Differentiable siamese augmentation (DSA, Zhao & Bilen 2021) on image tensors.

Distillation compares real and synthetic batches through a network; augmenting both with the
*same* random transform (drawn from one seed) makes the comparison invariant to it while the
gradient still flows back into the synthetic pixels. A draw picks one transform for the whole
batch, so batches of any size given the same seed get the same flip, colour change and
geometry. Every operation is built from differentiable tensor ops (affine grids, arithmetic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

OPERATIONS = ("flip", "color", "crop", "scale", "rotate", "cutout")

#: Datasets whose classes change under a mirror image (digits): their default skips `flip`.
NO_FLIP_DATASETS = ("mnist", "mnist-full", "digits")


@dataclass(frozen=True)
class Transform:
    """One drawn transform: the parameters every image of a batch gets."""

    flip: bool = False
    brightness: float = 0.0  # added to every pixel
    saturation: float = 1.0  # factor on the deviation from the per-pixel channel mean
    contrast: float = 1.0  # factor on the deviation from the per-image mean
    shift: tuple[int, int] = (0, 0)  # (dy, dx) in pixels, zero padded
    scale: tuple[float, float] = (1.0, 1.0)  # (sy, sx) of the sampling grid
    angle: float = 0.0  # radians
    cutout: tuple[float, float, float] | None = None  # (cy, cx, size) as fractions of H and W
    ops: tuple[str, ...] = ()

    def apply(self, x: Tensor) -> Tensor:
        """The transformed batch (N×C×H×W); differentiable with respect to `x`."""
        if x.dim() != 4 or not x.is_floating_point():
            raise ValueError(f"augmentation needs a float N×C×H×W batch, got {tuple(x.shape)}")
        for op in self.ops:
            x = _APPLY[op](self, x)
        return x


@dataclass(frozen=True)
class SiameseAugment:
    """A DSA policy: the operations in `always`, then one chosen at random from `one_of`.

    The strengths follow DSA's defaults: brightness ±0.5·`brightness`, saturation factor in
    [0, `saturation`], contrast factor in [`contrast`, 1 + `contrast`], crop shifts up to
    `crop`·size pixels, scale factors in [1/`scale`, `scale`], rotation up to ±`rotate`
    degrees, and a cutout square of side `cutout`·size.
    """

    always: tuple[str, ...] = ("flip", "color")
    one_of: tuple[str, ...] = ("crop", "scale", "rotate")
    brightness: float = 1.0
    saturation: float = 2.0
    contrast: float = 0.5
    crop: float = 0.125
    scale: float = 1.2
    rotate: float = 15.0
    cutout: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "always", tuple(self.always))
        object.__setattr__(self, "one_of", tuple(self.one_of))
        for op in self.always + self.one_of:
            if op not in OPERATIONS:
                raise ValueError(f"unknown augmentation {op!r}; known: {', '.join(OPERATIONS)}")
        if not (self.scale >= 1 and 0 <= self.crop < 1 and 0 < self.cutout <= 1):
            raise ValueError(
                f"need scale ≥ 1, 0 ≤ crop < 1 and 0 < cutout ≤ 1, got scale={self.scale}, "
                f"crop={self.crop}, cutout={self.cutout}"
            )
        if min(self.brightness, self.saturation, self.contrast, self.rotate) < 0:
            raise ValueError("brightness, saturation, contrast and rotate must be ≥ 0")

    def draw(self, seed: int, size: tuple[int, int]) -> Transform:
        """The transform for `seed` and images of `size` (H, W): the same seed, the same one."""
        g = torch.Generator().manual_seed(int(seed))

        def u(lo: float = 0.0, hi: float = 1.0) -> float:
            return lo + (hi - lo) * float(torch.rand((), generator=g))

        ops = list(self.always)
        if self.one_of:
            ops.append(self.one_of[int(torch.randint(len(self.one_of), (), generator=g))])
        fields: dict = {"ops": tuple(ops)}
        h, w = size
        for op in ops:
            if op == "flip":
                fields["flip"] = u() < 0.5
            elif op == "color":
                fields["brightness"] = (u() - 0.5) * self.brightness
                fields["saturation"] = u() * self.saturation
                fields["contrast"] = u() + self.contrast
            elif op == "crop":
                dy, dx = round(h * self.crop), round(w * self.crop)
                fields["shift"] = (
                    int(torch.randint(-dy, dy + 1, (), generator=g)),
                    int(torch.randint(-dx, dx + 1, (), generator=g)),
                )
            elif op == "scale":
                fields["scale"] = (u(1 / self.scale, self.scale), u(1 / self.scale, self.scale))
            elif op == "rotate":
                fields["angle"] = math.radians(u(-self.rotate, self.rotate))
            elif op == "cutout":
                fields["cutout"] = (u(), u(), self.cutout)
        return Transform(**fields)

    def __call__(self, x: Tensor, seed: int) -> Tensor:
        """`x` transformed by the draw of `seed` (differentiable with respect to `x`)."""
        return self.draw(seed, tuple(x.shape[-2:])).apply(x)  # type: ignore[arg-type]


def default_augment(dataset_name: str) -> SiameseAugment:
    """DSA's default policy, without flips for digit datasets."""
    if dataset_name in NO_FLIP_DATASETS:
        return SiameseAugment(always=("color",))
    return SiameseAugment()


def _flip(t: Transform, x: Tensor) -> Tensor:
    return x.flip(-1) if t.flip else x


def _color(t: Transform, x: Tensor) -> Tensor:
    x = x + t.brightness
    m = x.mean(dim=1, keepdim=True)
    x = (x - m) * t.saturation + m
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - m) * t.contrast + m


def _affine(x: Tensor, theta: list[list[float]]) -> Tensor:
    """Resample `x` at the affine grid `theta` (normalized coordinates), zeros outside."""
    th = torch.tensor(theta, dtype=x.dtype, device=x.device).expand(len(x), 2, 3)
    grid = F.affine_grid(th, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _crop(t: Transform, x: Tensor) -> Tensor:
    """Translate by whole pixels (a random crop of the zero-padded image)."""
    dy, dx = t.shift
    h, w = x.shape[-2:]
    return _affine(x, [[1.0, 0.0, 2.0 * dx / w], [0.0, 1.0, 2.0 * dy / h]])


def _scale(t: Transform, x: Tensor) -> Tensor:
    sy, sx = t.scale
    return _affine(x, [[sx, 0.0, 0.0], [0.0, sy, 0.0]])


def _rotate(t: Transform, x: Tensor) -> Tensor:
    c, s = math.cos(t.angle), math.sin(t.angle)
    return _affine(x, [[c, -s, 0.0], [s, c, 0.0]])


def _cutout(t: Transform, x: Tensor) -> Tensor:
    assert t.cutout is not None
    cy, cx, size = t.cutout
    h, w = x.shape[-2:]
    half_h, half_w = max(1, round(size * h / 2)), max(1, round(size * w / 2))
    y0, x0 = round(cy * (h - 1)), round(cx * (w - 1))
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    inside_r = (rows >= y0 - half_h) & (rows < y0 + half_h)
    inside_c = (cols >= x0 - half_w) & (cols < x0 + half_w)
    keep = ~(inside_r[:, None] & inside_c[None, :])
    return x * keep.to(x.dtype)


_APPLY = {
    "flip": _flip,
    "color": _color,
    "crop": _crop,
    "scale": _scale,
    "rotate": _rotate,
    "cutout": _cutout,
}
