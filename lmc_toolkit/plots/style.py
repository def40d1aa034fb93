"""The look every figure shares: one colour sequence, so a method keeps its colour across
figures drawn in the same order."""

from collections.abc import Sequence
from typing import Any

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
