"""Linear mode connectivity modulo permutation: align b's hidden units onto a's, then interpolate.

Two networks trained from different initializations compute similar functions with their
hidden units in different orders; the straight line between them then crosses a barrier that
may vanish once b's units are permuted to match a's (Entezari et al. 2022; Ainsworth et al.
2023). `interpolate(a, b, data, align="weights" | "activations")` reports the curve before and
after alignment in one `AlignedCurve`; with masks, each end keeps its own (b's permuted with
its weights), and the masks' IoU before and after alignment is recorded. With `repair=True`,
the aligned curve is also scored with REPAIR's renormalization at every α
(`lmc_toolkit.alignment.repair`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch import Tensor, nn

from lmc_toolkit.alignment.activation_matching import activation_matching
from lmc_toolkit.alignment.permute import permute
from lmc_toolkit.alignment.repair import repair, repairable_layers
from lmc_toolkit.alignment.result import Alignment
from lmc_toolkit.alignment.spec import PermutationSpec, permutation_spec
from lmc_toolkit.alignment.weight_matching import weight_matching
from lmc_toolkit.data.dataset import Dataset
from lmc_toolkit.data.stream import Stream
from lmc_toolkit.landscape.curve import Barrier, Curve
from lmc_toolkit.landscape.evaluator.core import Evaluator
from lmc_toolkit.landscape.solutions import Solution, apply_mask, split_solution
from lmc_toolkit.pruning.compare import iou
from lmc_toolkit.pruning.mask import Mask
from lmc_toolkit.training.batchnorm import BNPolicy
from lmc_toolkit.training.params import lerp

AlignMethod = Literal["none", "weights", "activations"]
ALIGN_METHODS: tuple[AlignMethod, ...] = get_args(AlignMethod)


@dataclass(frozen=True, eq=False)
class AlignedCurve:
    """Interpolation curves between a and b before and after aligning b onto a, the alignment
    (its method and permutation), and the IoU of the two ends' masks before and after (None
    for unmasked networks)."""

    before: Curve
    after: Curve
    alignment: Alignment
    mask_iou: tuple[float, float] | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    repaired: Curve | None = None

    def barrier(self, metric: str = "error", baseline: str = "mean") -> Barrier:
        """The barrier after alignment (see `Curve.barrier`)."""
        return self.after.barrier(metric, baseline)

    def barriers(self, metric: str = "error") -> dict[str, float]:
        """The barrier before and after alignment (and after REPAIR, when it ran)."""
        out = {
            "before": self.before.barrier(metric).value,
            "after": self.after.barrier(metric).value,
        }
        if self.repaired is not None:
            out["repaired"] = self.repaired.barrier(metric).value
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "alignment": self.alignment.to_dict(),
            "mask_iou": None if self.mask_iou is None else list(self.mask_iou),
            "meta": dict(self.meta),
            "repaired": None if self.repaired is None else self.repaired.to_dict(),
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any], spec: PermutationSpec) -> AlignedCurve:
        """The result `to_dict` wrote; `spec` (`permutation_spec` of the networks' architecture)
        gives the permutation's groups."""
        return AlignedCurve(
            Curve.from_dict(d["before"]),
            Curve.from_dict(d["after"]),
            Alignment.from_dict(d["alignment"], spec),
            None if d.get("mask_iou") is None else (d["mask_iou"][0], d["mask_iou"][1]),
            dict(d.get("meta", {})),
            None if d.get("repaired") is None else Curve.from_dict(d["repaired"]),
        )

    def plot(self, **kwargs: Any) -> Any:
        """Loss and error along both curves (see `plots.plot_curve`)."""
        from lmc_toolkit.plots.connectivity import plot_curve

        method = self.alignment.method
        return plot_curve(
            [self.before, self.after], ["before alignment", f"{method} matched"], **kwargs
        )


@dataclass(frozen=True)
class AlignedPair:
    """Both ends ready to interpolate: a and the aligned b as networks with their masks
    applied, their masks (b's permuted), b before alignment, and the alignment."""

    a: nn.Module
    b: nn.Module
    b_aligned: nn.Module
    masks: tuple[Mask | None, Mask | None]
    alignment: Alignment

    def mask_iou(self, before: Mask | None) -> tuple[float, float] | None:
        """IoU of a's mask with b's before (`before`) and after alignment."""
        ma, mb = self.masks
        if ma is None or mb is None or before is None:
            return None
        return float(iou(ma, before)), float(iou(ma, mb))


def align_pair(
    a: Solution,
    b: Solution,
    template: nn.Module,
    method: str,
    masks: tuple[Mapping[str, Tensor] | None, Mapping[str, Tensor] | None] = (None, None),
    data: Dataset | None = None,
    seed: int = 0,
) -> AlignedPair:
    """Align b onto a by `method` ("weights" or "activations", the latter on `data`), each end
    with its mask applied first, so that pruned weights never count as matches."""
    if method not in ALIGN_METHODS[1:]:
        raise ValueError(f"align must be one of {ALIGN_METHODS}, got {method!r}")
    net_a = masked_network(a, template, masks[0], "a")
    net_b = masked_network(b, template, masks[1], "b")
    # the data's input shape traces a model the registry does not know
    spec = None if data is None else permutation_spec(net_a, example=data.x)
    if method == "weights":
        alignment = weight_matching(net_a, net_b, spec=spec, seed=seed)
    else:
        if not isinstance(data, Dataset):
            raise ValueError(
                "activation matching needs data (the images the units are compared on)"
            )
        alignment = activation_matching(net_a, net_b, data, spec=spec)
    perm = alignment.permutation
    mask_b = None if masks[1] is None else permute(Mask(masks[1]), perm)
    mask_a = None if masks[0] is None else Mask(masks[0])
    return AlignedPair(net_a, net_b, permute(net_b, perm), (mask_a, mask_b), alignment)


def repaired_curve(
    a: nn.Module,
    b: nn.Module,
    data: Dataset | Stream,
    alphas: np.ndarray,
    policy: BNPolicy,
    bn_data: Dataset | None,
    repair_data: Dataset,
    label: str = "",
    **evaluator_options: Any,
) -> Curve:
    """The curve from `a` to `b` with REPAIR applied at every α (`alignment.repair`): each
    point's hidden units renormalized to the interpolated statistics of the ends, measured on
    `repair_data`, then scored on `data` under the BatchNorm `policy`."""
    start = time.perf_counter()
    layers = repairable_layers(a, permutation_spec(a, example=repair_data.x))
    evaluator = Evaluator(a, data, bn=policy, bn_data=bn_data, progress=False, **evaluator_options)
    sa, sb = a.state_dict(), b.state_dict()
    loss, accuracy = [], []
    for alpha in alphas:
        point = copy.deepcopy(a)
        point.load_state_dict(lerp(sa, sb, float(alpha)))
        fixed = repair(point, a, b, float(alpha), repair_data, layers=layers)
        params, buffers = split_solution(fixed, a, "the repaired point")
        zero = {k: torch.zeros_like(v) for k, v in params.items()}
        scored = evaluator(params, [zero], np.zeros((1, 1)), buffers=buffers)
        loss.append(float(scored.loss[0]))
        accuracy.append(float(scored.accuracy[0]))
    meta = {
        "dataset": data.name, "n": len(data), "repair": True, "repaired_layers": layers,
        "repair_data": repair_data.name, "bn_policy": policy.to_dict(),
        "seconds": time.perf_counter() - start,
    }  # fmt: skip
    return Curve(np.asarray(alphas, float), np.array(loss), np.array(accuracy), policy.mode,
                 "interpolation", label, meta)  # fmt: skip


def masked_network(solution: Solution, template: nn.Module, mask: Any, what: str) -> nn.Module:
    """`solution` as a new network of `template`'s architecture, its mask applied."""
    params, buffers = split_solution(solution, template, what)
    net = copy.deepcopy(template)
    state = dict(net.state_dict())
    state.update(apply_mask(params, mask))
    state.update(buffers)
    net.load_state_dict(state)
    return net
