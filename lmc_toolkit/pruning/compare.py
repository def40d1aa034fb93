"""Comparing masks: IoU and Hamming distance, overall and per layer, and the IoU two random
masks of the same densities would have (the chance level).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, overload

import torch
from torch import Tensor

from lmc_toolkit.pruning.mask import Mask, same_layout


def _pairs(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> list[tuple[str, Tensor, Tensor]]:
    a = a if isinstance(a, Mask) else Mask(a)
    b = same_layout(a, b)
    return [
        (n, m.reshape(-1), b[n].reshape(-1).to(device=m.device, dtype=torch.bool))
        for n, m in a.items()
    ]


@overload
def iou(
    a: Mapping[str, Tensor], b: Mapping[str, Tensor], per_layer: Literal[False] = ...
) -> float: ...
@overload
def iou(
    a: Mapping[str, Tensor], b: Mapping[str, Tensor], per_layer: Literal[True]
) -> dict[str, float]: ...
@overload
def iou(
    a: Mapping[str, Tensor], b: Mapping[str, Tensor], per_layer: bool
) -> float | dict[str, float]: ...
def iou(
    a: Mapping[str, Tensor], b: Mapping[str, Tensor], per_layer: bool = False
) -> float | dict[str, float]:
    """Intersection over union of the kept weights: |a ∧ b| / |a ∨ b| (1.0 when both keep nothing).

    Args:
        a: A mask (name → bool tensor).
        b: A mask over the same tensors.
        per_layer: Per tensor (a dict name → IoU) instead of overall.

    Returns:
        The IoU, or name → IoU with `per_layer=True`.
    """
    pairs = _pairs(a, b)
    counts = {n: (int((x & y).sum()), int((x | y).sum())) for n, x, y in pairs}
    if per_layer:
        return {n: (i / u if u else 1.0) for n, (i, u) in counts.items()}
    inter, union = (sum(c[j] for c in counts.values()) for j in (0, 1))
    return inter / union if union else 1.0


@overload
def hamming(
    a: Mapping[str, Tensor],
    b: Mapping[str, Tensor],
    per_layer: Literal[False] = ...,
    normalized: bool = ...,
) -> float: ...
@overload
def hamming(
    a: Mapping[str, Tensor],
    b: Mapping[str, Tensor],
    per_layer: Literal[True],
    normalized: bool = ...,
) -> dict[str, float]: ...
@overload
def hamming(
    a: Mapping[str, Tensor], b: Mapping[str, Tensor], per_layer: bool, normalized: bool = ...
) -> float | dict[str, float]: ...
def hamming(
    a: Mapping[str, Tensor],
    b: Mapping[str, Tensor],
    per_layer: bool = False,
    normalized: bool = True,
) -> float | dict[str, float]:
    """How many entries the masks disagree on.

    Args:
        a: A mask (name → bool tensor).
        b: A mask over the same tensors.
        per_layer: Per tensor (a dict name → value) instead of overall.
        normalized: As a fraction of the prunable set; False: a count.

    Returns:
        The Hamming distance, or name → distance with `per_layer=True`.
    """
    pairs = _pairs(a, b)
    diff = {n: (int((x ^ y).sum()), x.numel()) for n, x, y in pairs}
    if per_layer:
        return {n: (d / t if normalized else float(d)) for n, (d, t) in diff.items()}
    d, t = (sum(c[j] for c in diff.values()) for j in (0, 1))
    return d / t if normalized else float(d)


def random_iou(a: Mapping[str, Tensor], b: Mapping[str, Tensor], per_layer: bool = False):
    """The IoU two masks would have in expectation if each were drawn at random with its own
    per-tensor density: d_a·d_b / (d_a + d_b − d_a·d_b), summed over tensors for the overall
    value. The chance level to read `iou` against."""
    pairs = _pairs(a, b)
    exp = {}
    for n, x, y in pairs:
        t = x.numel()
        da, db = float(x.sum()) / t, float(y.sum()) / t
        exp[n] = (t * da * db, t * (da + db - da * db))
    if per_layer:
        return {n: (i / u if u else 1.0) for n, (i, u) in exp.items()}
    inter, union = (sum(c[j] for c in exp.values()) for j in (0, 1))
    return inter / union if union else 1.0
