"""Several solutions compared pair by pair (figure F8): every pair's interpolation curve and
barriers, and the distances between their weights, optionally after aligning each pair."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import Tensor, nn

from lmc_toolkit.alignment.permute import permute
from lmc_toolkit.checks import check_choice
from lmc_toolkit.connectivity.aligned import (
    ALIGN_METHODS,
    AlignedCurve,
    AlignMethod,
)
from lmc_toolkit.connectivity.interpolation import interpolate
from lmc_toolkit.data.entrance import DataLike, as_dataset
from lmc_toolkit.landscape.curve import Curve
from lmc_toolkit.landscape.solutions import (
    Solution,
    apply_mask,
    sparsity,
    split_solution,
    template_of,
)
from lmc_toolkit.training.batchnorm import BNMode, BNPolicy, as_policy
from lmc_toolkit.training.params import Params, norm, sub


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
    policy = as_policy(bn)  # the α grid is checked by the first pair's interpolate, before work
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
        result = interpolate(models[i], models[j], data, alphas, policy, mask, label=label, **along)
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
        policy.mode,
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
