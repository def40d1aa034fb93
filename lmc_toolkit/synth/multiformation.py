"""IDC's multi-formation parameterization (Kim et al. 2022): one stored image holds f×f images.

A stored H×W image is cut into f×f tiles of side ⌈H/f⌉ (the image is first padded on the
bottom and right with `PAD_VALUE` when f does not divide it, as IDC does) and every tile is
upsampled bilinearly back to H×W. Decoding N stored images gives f²·N training images ordered
tile-major, as IDC orders them: all images' tile (0, 0), then all images' tile (0, 1), ...,
row by row; labels repeat in the same order. `encode` is the inverse layout: it downsamples
f² images and tiles them into one.
"""

from __future__ import annotations

import math
from typing import overload

import torch
import torch.nn.functional as F
from torch import Tensor

#: The fill IDC pads with when the factor does not divide the image side.
PAD_VALUE = 0.5


def check_factor(factor: int) -> int:
    if not isinstance(factor, int) or isinstance(factor, bool) or factor < 1:
        raise ValueError(f"factor (multi-formation) must be an int ≥ 1, got {factor!r}")
    return factor


def tile_side(size: int, factor: int) -> int:
    """The side of one tile of a `size`-pixel image cut `factor` times."""
    return math.ceil(size / factor)


def split_tiles(x: Tensor, factor: int) -> Tensor:
    """N×C×H×W stored images → (f²·N)×C×s×s tiles, tile-major (s = ⌈H/f⌉, ⌈W/f⌉)."""
    check_factor(factor)
    n, c, h, w = x.shape
    sh, sw = tile_side(h, factor), tile_side(w, factor)
    if sh * factor != h or sw * factor != w:
        x = F.pad(x, (0, sw * factor - w, 0, sh * factor - h), value=PAD_VALUE)
    tiles = x.reshape(n, c, factor, sh, factor, sw).permute(2, 4, 0, 1, 3, 5)
    return tiles.reshape(factor * factor * n, c, sh, sw)


def join_tiles(tiles: Tensor, factor: int, size: tuple[int, int]) -> Tensor:
    """The inverse of `split_tiles`: (f²·N)×C×s×s tiles → N×C×H×W images of `size` (H, W)."""
    check_factor(factor)
    m, c, sh, sw = tiles.shape
    if m % (factor * factor):
        raise ValueError(f"{m} tiles do not make whole images of {factor}×{factor} tiles")
    n = m // (factor * factor)
    x = tiles.reshape(factor, factor, n, c, sh, sw).permute(2, 3, 0, 4, 1, 5)
    x = x.reshape(n, c, factor * sh, factor * sw)
    return x[:, :, : size[0], : size[1]]


@overload
def decode(x: Tensor, y: Tensor, factor: int = 1) -> tuple[Tensor, Tensor]: ...
@overload
def decode(x: Tensor, y: None = None, factor: int = 1) -> tuple[Tensor, None]: ...
def decode(x: Tensor, y: Tensor | None = None, factor: int = 1) -> tuple[Tensor, Tensor | None]:
    """Stored images (and labels) → training images of the same size (and repeated labels)."""
    check_factor(factor)
    if factor == 1:
        return x, y
    h, w = x.shape[-2:]
    tiles = split_tiles(x, factor)
    images = F.interpolate(tiles, size=(h, w), mode="bilinear", align_corners=False)
    labels = None if y is None else y.repeat(factor * factor)
    return images, labels


def encode(images: Tensor, factor: int = 1) -> Tensor:
    """f²·N training images → N stored images: each downsampled (area average) to a tile and
    placed where `decode` takes it from. `decode(encode(z), factor)` gives back `z` when the
    images are smooth enough to survive the down- and upsampling (e.g. constant images)."""
    check_factor(factor)
    if factor == 1:
        return images
    m, _, h, w = images.shape
    if m % (factor * factor):
        raise ValueError(
            f"encoding with factor {factor} needs a multiple of {factor * factor} images, got {m}"
        )
    sh, sw = tile_side(h, factor), tile_side(w, factor)
    small = F.interpolate(images, size=(sh, sw), mode="area")
    return join_tiles(small, factor, (h, w))


def labels_for_encoding(y: Tensor, factor: int) -> Tensor:
    """The labels of the stored images that `encode` makes from images labelled `y`: all f²
    images of one stored image must share a label, which this checks and returns."""
    check_factor(factor)
    k = factor * factor
    if len(y) % k:
        raise ValueError(f"need a multiple of {k} labels for factor {factor}, got {len(y)}")
    grid = y.reshape(k, len(y) // k)
    if not bool((grid == grid[:1]).all()):
        raise ValueError("the images encoded into one stored image must share their label")
    return grid[0].clone()


def decode_by_class(x: Tensor, y: Tensor, factor: int) -> tuple[Tensor, Tensor]:
    """Decode each class's stored images on their own, as IDC does, and return the training
    images class by class (classes in increasing label order, tiles tile-major within each)."""
    check_factor(factor)
    xs, ys = [], []
    for c in torch.unique(y).tolist():
        rows = torch.nonzero(y == c).flatten()
        dx, dy = decode(x[rows], y[rows], factor)
        xs.append(dx)
        ys.append(dy)
    return torch.cat(xs), torch.cat(ys)
