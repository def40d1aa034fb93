"""Linear mode connectivity: interpolation curves and their barriers, among two or more solutions.

`interpolate(a, b, data)` scores (1-α)·a + α·b for a grid of α on the landscape evaluator; the
`Curve` it returns gives Frankle et al.'s barrier. `pairwise` does it for every pair of several
solutions and adds their weight distances. Instability analysis (training copies from a spawn
point) lives in `lmc_toolkit.connectivity.instability_analysis`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np
from torch import Tensor, nn

from lmc_toolkit.connectivity.aligned import (
    AlignedCurve,
    AlignMethod,
    align_pair,
    masked_network,
    repaired_curve,
)
from lmc_toolkit.data.dataset import Dataset
from lmc_toolkit.data.entrance import DataLike, as_data, as_dataset
from lmc_toolkit.data.stream import Stream
from lmc_toolkit.landscape.curve import Curve
from lmc_toolkit.landscape.evaluator.core import Evaluator
from lmc_toolkit.landscape.solutions import (
    Solution,
    apply_mask,
    sparsity,
    split_solution,
    template_of,
)
from lmc_toolkit.pruning.mask import Mask
from lmc_toolkit.training.batchnorm import BNMode, BNPolicy, as_policy
from lmc_toolkit.training.params import norm, sub


def alpha_grid(alphas: int | Sequence[float] | np.ndarray) -> np.ndarray:
    """Evenly spaced α in [0, 1] for an int, else the given α with 0 and 1 added, sorted."""
    if isinstance(alphas, bool):
        raise TypeError("alphas must be an int or a sequence of numbers, got a bool")
    if isinstance(alphas, int):
        if alphas < 2:
            raise ValueError(f"alphas needs at least 2 points (0 and 1), got {alphas}")
        return np.linspace(0.0, 1.0, alphas)
    grid = np.asarray(alphas, dtype=float).ravel()
    if not np.isfinite(grid).all():
        raise ValueError(f"alphas must be finite numbers, got {grid}")
    return np.unique(np.concatenate([grid, [0.0, 1.0]]))


@overload
def interpolate(
    a: Solution,
    b: Solution,
    data: DataLike,
    alphas: int | Sequence[float] | np.ndarray = ...,
    bn: BNMode | BNPolicy = ...,
    mask: Mapping[str, Tensor] | None = ...,
    *,
    model: nn.Module | None = ...,
    bn_data: DataLike | None = ...,
    label: str = ...,
    progress: bool = ...,
    align: Literal["none"] = ...,
    align_data: DataLike | None = ...,
    masks: tuple[Mapping[str, Tensor] | None, Mapping[str, Tensor] | None] | None = ...,
    repair: bool = ...,
    **evaluator_options: Any,
) -> Curve: ...


@overload
def interpolate(
    a: Solution,
    b: Solution,
    data: DataLike,
    alphas: int | Sequence[float] | np.ndarray = ...,
    bn: BNMode | BNPolicy = ...,
    mask: Mapping[str, Tensor] | None = ...,
    *,
    model: nn.Module | None = ...,
    bn_data: DataLike | None = ...,
    label: str = ...,
    progress: bool = ...,
    align: Literal["weights", "activations"],
    align_data: DataLike | None = ...,
    masks: tuple[Mapping[str, Tensor] | None, Mapping[str, Tensor] | None] | None = ...,
    repair: bool = ...,
    **evaluator_options: Any,
) -> AlignedCurve: ...


@overload
def interpolate(
    a: Solution,
    b: Solution,
    data: DataLike,
    alphas: int | Sequence[float] | np.ndarray = ...,
    bn: BNMode | BNPolicy = ...,
    mask: Mapping[str, Tensor] | None = ...,
    *,
    model: nn.Module | None = ...,
    bn_data: DataLike | None = ...,
    label: str = ...,
    progress: bool = ...,
    align: AlignMethod = ...,
    align_data: DataLike | None = ...,
    masks: tuple[Mapping[str, Tensor] | None, Mapping[str, Tensor] | None] | None = ...,
    repair: bool = ...,
    **evaluator_options: Any,
) -> Curve | AlignedCurve: ...


def interpolate(
    a: Solution,
    b: Solution,
    data: DataLike,
    alphas: int | Sequence[float] | np.ndarray = 31,
    bn: BNMode | BNPolicy = "recalibrate",
    mask: Mapping[str, Tensor] | None = None,
    *,
    model: nn.Module | None = None,
    bn_data: DataLike | None = None,
    label: str = "",
    progress: bool = True,
    align: AlignMethod = "none",
    align_data: DataLike | None = None,
    masks: tuple[Mapping[str, Tensor] | None, Mapping[str, Tensor] | None] | None = None,
    repair: bool = False,
    **evaluator_options: Any,
) -> Curve | AlignedCurve:
    """Loss and accuracy of (1-α)·a + α·b on `data` for every α.

    Args:
        a: The first end: a model, a state dict, a parameter dict or a `TrainResult`.
        b: The second end, of the same architecture.
        data: What every point is scored on (a `Stream` is read batch by batch).
        alphas: The points: a count in [0, 1] or the values.
        bn: The BatchNorm policy: `"recalibrate"` re-estimates the statistics at every α on
            fixed batches of `bn_data`, `"interpolate"` interpolates them, `"eval"` uses a's.
        mask: Pruned coordinates are zero all along the path.
        model: The architecture, where neither end is a model.
        bn_data: The batches `"recalibrate"` uses (default: `data`).
        label: The curve's name in plots.
        progress: Show a progress bar.
        align: `"weights"` or `"activations"`: b's hidden units are first permuted onto a's
            (measured on `align_data`) and the curves before and after are returned.
        align_data: The examples alignment and REPAIR measure (default: `bn_data`, else `data`).
        masks: `(mask_a, mask_b)`: each end its own mask (instead of `mask`).
        repair: Add the aligned curve with REPAIR's renormalization at every α (without
            `align`, the plain curve is repaired).
        **evaluator_options: Passed to the `Evaluator` (method, batch_size, compile, ...).

    Returns:
        A `Curve` (α, loss, accuracy, per-image evidence); with `align`, an `AlignedCurve`
        holding the curves before and after (`lmc_toolkit.connectivity.aligned`).
    """
    data = as_data(data, "evaluation data")  # a loader is read once, here; a Stream per call
    path = _Path(
        alphas=alpha_grid(alphas),
        policy=as_policy(bn),
        template=template_of([a, b], model),
        bn_data=None if bn_data is None else as_dataset(bn_data, "bn_data"),
        progress=progress,
        options=evaluator_options,
    )
    if align == "none" and masks is None and not repair:
        return _straight(a, b, data, mask, label, path)
    ends = (mask, mask) if masks is None else (masks[0], masks[1])
    if align == "none":
        pair_a, pair_b = (
            masked_network(s, path.template, m, w)
            for s, m, w in zip((a, b), ends, "ab", strict=True)
        )
        if repair:
            stats = _statistics_data(data, align_data, path.bn_data)
            return _repaired(pair_a, pair_b, data, stats, label, path)
        return _straight(pair_a, pair_b, data, None, label, path)
    stats = _statistics_data(data, align_data, path.bn_data)
    return _aligned(
        a, b, data, path, align=align, ends=ends, stats=stats, label=label, repair=repair
    )


def _aligned(
    a: Solution,
    b: Solution,
    data: Dataset | Stream,
    path: _Path,
    *,
    align: AlignMethod,
    ends: tuple[Mapping[str, Tensor] | None, Mapping[str, Tensor] | None],
    stats: Dataset,
    label: str,
    repair: bool,
) -> AlignedCurve:
    """The curves before and after permuting b's units onto a's (measured on `stats`), and
    with REPAIR's renormalization too where `repair`."""
    pair = align_pair(a, b, path.template, align, ends, stats)
    before = _straight(pair.a, pair.b, data, None, f"{label} before".strip(), path)
    after = _straight(pair.a, pair.b_aligned, data, None, f"{label} {align}".strip(), path)
    repaired = None
    if repair:
        repaired = _repaired(
            pair.a, pair.b_aligned, data, stats, f"{label} {align} + REPAIR".strip(), path
        )
    iou_ = pair.mask_iou(None if ends[1] is None else Mask(ends[1]))
    return AlignedCurve(before, after, pair.alignment, iou_, {"align": align}, repaired)


@dataclass(frozen=True)
class _Path:
    """What every curve of one `interpolate` call shares: the α grid, the BatchNorm policy and
    its data, the architecture, and the evaluator's options."""

    alphas: np.ndarray
    policy: BNPolicy
    template: nn.Module
    bn_data: Dataset | None
    progress: bool
    options: Mapping[str, Any]


def _statistics_data(
    data: Dataset | Stream, align_data: DataLike | None, bn_data: Dataset | None
) -> Dataset:
    """The examples alignment and REPAIR measure activations on: `align_data`, else `bn_data`,
    else `data` (which must then be held, not streamed)."""
    if align_data is not None:
        return as_dataset(align_data, "align_data")
    if bn_data is not None:
        return bn_data
    if isinstance(data, Stream):
        raise ValueError(
            "align= and repair= measure activations on examples a Stream cannot give at "
            "random: pass align_data= (a Dataset, e.g. a few thousand training examples)"
        )
    return data


def _repaired(
    a: nn.Module, b: nn.Module, data: Dataset | Stream, stats: Dataset, label: str, path: _Path
) -> Curve:
    return repaired_curve(
        a, b, data, path.alphas, path.policy, path.bn_data, stats, label, **path.options
    )


def _straight(
    a: Solution,
    b: Solution,
    data: Dataset | Stream,
    mask: Mapping[str, Tensor] | None,
    label: str,
    path: _Path,
) -> Curve:
    """The curve of (1-α)·a + α·b (with `mask` applied to both) along `path`."""
    pa, buf_a = split_solution(a, path.template, "a")
    pb, buf_b = split_solution(b, path.template, "b")
    pa, pb = apply_mask(pa, mask), apply_mask(pb, mask)
    policy = path.policy
    start = time.perf_counter()
    evaluator = Evaluator(
        path.template,
        data,
        bn=policy,
        bn_data=path.bn_data,
        progress=path.progress,
        **path.options,
    )
    buffer_dirs = [sub(buf_b, buf_a)] if policy.mode == "interpolate" else None
    result = evaluator(
        pa,
        [sub(pb, pa)],
        path.alphas[:, None],
        buffers=buf_a,
        buffer_directions=buffer_dirs,
        per_image=True,
    )
    meta = {
        "dataset": data.name,
        "n": len(data),
        "sparsity": sparsity(pa, mask),
        "distance": float(norm(sub(pb, pa))),
        "bn_policy": policy.to_dict(),
        "precision": result.details["precision"],
        "seconds": time.perf_counter() - start,
        "evaluator": dict(result.details),
    }
    return Curve(
        path.alphas,
        result.loss,
        result.accuracy,
        policy.mode,
        "interpolation",
        label,
        meta,
        result.correct,
    )
