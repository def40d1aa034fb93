"""Linear mode connectivity: interpolation curves and their barriers, among two or more solutions.

`interpolate(a, b, data)` scores (1-α)·a + α·b for a grid of α on the landscape evaluator; the
`Curve` it returns gives Frankle et al.'s barrier. `pairwise` does it for every pair of several
solutions and adds their weight distances. Instability analysis (training copies from a spawn
point) lives in `lmc_toolkit.connectivity.instability_analysis`.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import numpy as np
from torch import Tensor, nn

from lmc_toolkit.alignment.permute import permute
from lmc_toolkit.checks import check_choice
from lmc_toolkit.connectivity.aligned import (
    ALIGN_METHODS,
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
from lmc_toolkit.training.params import Params, norm, sub


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


@dataclass(frozen=True, eq=False)
class PairwiseResult:
    """Barriers and weight distances among several solutions (figure F8).

    `error_barriers[i, j]` and `loss_barriers[i, j]` are the barriers of the curve from
    solution i to j (symmetric, zero diagonal); `distances[i, j]` is ‖θ_i − θ_j‖₂ over the
    (masked) parameters. With `align` other than "none", these are after aligning j onto i,
    and `unaligned` holds the same three matrices before ("error_barriers", ...).
    """

    labels: tuple[str, ...]
    error_barriers: np.ndarray
    loss_barriers: np.ndarray
    distances: np.ndarray
    curves: Mapping[tuple[int, int], Curve]
    bn: str
    meta: Mapping[str, Any] = field(default_factory=dict)
    align: str = "none"
    unaligned: Mapping[str, np.ndarray] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "labels": list(self.labels),
            "error_barriers": self.error_barriers.tolist(),
            "loss_barriers": self.loss_barriers.tolist(),
            "distances": self.distances.tolist(),
            "curves": {f"{i}-{j}": c.to_dict() for (i, j), c in self.curves.items()},
            "bn": self.bn,
            "meta": dict(self.meta),
        }
        if self.align != "none":
            out["align"] = self.align
            out["unaligned"] = {k: v.tolist() for k, v in (self.unaligned or {}).items()}
        return out

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> PairwiseResult:
        curves = {}
        for key, c in d["curves"].items():
            i, j = (int(v) for v in key.split("-"))
            curves[(i, j)] = Curve.from_dict(c)
        return PairwiseResult(
            labels=tuple(d["labels"]),
            error_barriers=np.asarray(d["error_barriers"], float),
            loss_barriers=np.asarray(d["loss_barriers"], float),
            distances=np.asarray(d["distances"], float),
            curves=curves,
            bn=d["bn"],
            meta=dict(d["meta"]),
            align=d.get("align", "none"),
            unaligned={k: np.asarray(v, float) for k, v in d["unaligned"].items()}
            if d.get("unaligned") is not None
            else None,
        )

    def plot(self, **kwargs: Any) -> Any:
        """Heat maps of the barrier and distance matrices (see `plots.plot_pairwise`)."""
        from lmc_toolkit.plots.connectivity import plot_pairwise

        return plot_pairwise(self, **kwargs)


def pairwise(
    models: Sequence[Solution],
    data: DataLike,
    alphas: int | Sequence[float] | np.ndarray = 11,
    bn: BNMode | BNPolicy = "recalibrate",
    mask: Mapping[str, Tensor] | None = None,
    *,
    labels: Sequence[str] | None = None,
    model: nn.Module | None = None,
    bn_data: DataLike | None = None,
    progress: bool = True,
    align: AlignMethod = "none",
    align_data: DataLike | None = None,
    **evaluator_options: Any,
) -> PairwiseResult:
    """Interpolate every pair of `models` and measure their distances (figure F8).

    Args:
        models: Two or more solutions of one architecture (models, state or parameter dicts).
        data: What every point is scored on.
        alphas: Interpolation points per pair (a count or the values).
        bn: The BatchNorm policy (as `interpolate`'s).
        mask: Pruned coordinates are zero along every path.
        labels: One name per model (default: "0", "1", ...).
        model: The architecture, where no solution is a model.
        bn_data: The batches `"recalibrate"` uses (default: `data`).
        progress: Show progress bars.
        align: `"weights"` or `"activations"`: j is aligned onto i for each pair i < j, and the
            matrices before and after are both kept.
        align_data: The examples alignment measures (default: `bn_data`, else `data`).
        **evaluator_options: Passed to the `Evaluator`.

    Returns:
        A `PairwiseResult`: the error and loss barrier matrices, the weight distances and every
        pair's curve.
    """
    models = list(models)
    if len(models) < 2:
        raise ValueError(f"pairwise needs at least 2 solutions, got {len(models)}")
    labels = tuple(labels) if labels is not None else tuple(f"#{i}" for i in range(len(models)))
    if len(labels) != len(models):
        raise ValueError(f"got {len(labels)} labels for {len(models)} solutions")
    template = template_of(models, model)
    params = [
        apply_mask(split_solution(m, template, f"solution {labels[i]}")[0], mask)
        for i, m in enumerate(models)
    ]
    as_policy(bn), alpha_grid(alphas)  # checked before any work
    data = as_dataset(data, "evaluation data")  # a loader is read once, not once per pair
    bn_data = None if bn_data is None else as_dataset(bn_data, "bn_data")
    align_data = None if align_data is None else as_dataset(align_data, "align_data")
    check_choice("align", align, ALIGN_METHODS)
    n = len(models)
    after, before = ({k: np.zeros((n, n)) for k in _PAIR_MEASURES} for _ in "ab")
    curves = {}
    along: dict[str, Any] = {"model": template, "bn_data": bn_data, "progress": progress}
    along |= {"align": align, "align_data": align_data, **evaluator_options}
    for i, j in itertools.combinations(range(n), 2):
        label = f"{labels[i]}–{labels[j]}"
        result = interpolate(models[i], models[j], data, alphas, bn, mask, label=label, **along)
        pj = params[j]
        if isinstance(result, AlignedCurve):
            for key, value in _pair_measures(result.before, params[i], params[j]).items():
                before[key][i, j] = before[key][j, i] = value
            pj = permute(params[j], result.alignment.permutation)
            result = result.after
        curves[(i, j)] = result
        for key, value in _pair_measures(result, params[i], pj).items():
            after[key][i, j] = after[key][j, i] = value
    meta = {"dataset": data.name, "n": len(data), "sparsity": sparsity(params[0], mask)}
    return PairwiseResult(
        labels,
        after["error_barriers"],
        after["loss_barriers"],
        after["distances"],
        curves,
        as_policy(bn).mode,
        meta,
        align,
        before if align != "none" else None,
    )


#: what `pairwise` measures of each pair
_PAIR_MEASURES = ("error_barriers", "loss_barriers", "distances")


def _pair_measures(curve: Curve, pi: Params, pj: Params) -> dict[str, float]:
    """A pair's error and loss barriers on its curve, and the distance ‖θ_i − θ_j‖₂."""
    return {
        "error_barriers": curve.barrier("error").value,
        "loss_barriers": curve.barrier("loss").value,
        "distances": float(norm(sub(pi, pj))),
    }
