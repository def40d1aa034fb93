"""The look every figure shares: one colour sequence, so a method keeps its colour across
figures drawn in the same order."""

from collections.abc import Mapping, Sequence
from typing import Any

#: The loss every figure draws: mean cross-entropy, natural log.
LOSS_TITLE = "loss (cross-entropy, nats)"

COLORS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def nth_color(i: int) -> str:
    """The i-th colour of the sequence (cycling)."""
    return COLORS[i % len(COLORS)]


def method_colors(methods: Sequence[str]) -> dict[str, str]:
    """One colour per method, in order of first appearance."""
    order = list(dict.fromkeys(methods))
    return {m: nth_color(i) for i, m in enumerate(order)}


def group_by_method(items: Sequence[Any]) -> dict[str, list[Any]]:
    """Items by their `.method`, in order of first appearance, each sorted by `.sparsity`."""
    out: dict[str, list[Any]] = {}
    for item in items:
        out.setdefault(item.method, []).append(item)
    for rows in out.values():
        rows.sort(key=lambda r: r.sparsity)
    return out


def metric_title(metric: str) -> str:
    """An axis or colour-bar title for a landscape metric: the loss with its unit, the error and
    the accuracy in percent."""
    return LOSS_TITLE if metric == "loss" else f"{metric} (%)"


def plane_axis_titles(meta: Mapping[str, Any]) -> tuple[str, str]:
    """The x and y axis titles of a plane (`Surface.meta`): what each coordinate multiplies."""
    labels = list(meta.get("labels") or [])
    kind = meta.get("kind")
    if kind == "random":
        norm = meta.get("norm")
        how = f", {norm}-normalized" if norm else ""
        return f"x (random direction 1{how})", f"y (random direction 2{how})"
    if kind == "through" and len(labels) == 3:
        a, b, c = labels
        return f"x (along {b} − {a}; {b} at 1)", f"y (along {c} − {a} ⟂ x; {c} at 1)"
    if kind == "paper" and len(labels) == 4:
        return (
            f"x (along ({labels[0]} − {labels[1]})/2)",
            f"y (along ({labels[3]} − {labels[2]})/2)",
        )
    return "x (direction 1)", "y (direction 2)"
