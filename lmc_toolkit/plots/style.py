"""The look every figure shares: one colour sequence, so a method keeps its colour across
figures drawn in the same order."""

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
