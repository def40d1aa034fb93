"""Figures for pruning: accuracy vs sparsity with std bands (F1), per-layer sparsity profiles and
per-layer mask overlap between methods (F7), and the rounds of an IMP run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lmc_toolkit.plots.style import nth_color
from lmc_toolkit.pruning.compare import hamming, iou, random_iou
from lmc_toolkit.pruning.mask import Mask


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def plot_accuracy_vs_sparsity(
    table: Any,
    methods: Sequence[str] | None = None,
    percent: bool = True,
    dense_line: bool = True,
    title: str = "",
) -> go.Figure:
    """Test accuracy (mean over data seeds) against sparsity, one line per method, with a band
    of ± one standard deviation. `table` is a `TicketTable`. A method with a single entry at
    sparsity 0 (the dense network) is drawn as a horizontal reference line and band."""
    summary = table.summary()
    order = list(methods) if methods is not None else list(table.methods)
    unknown = [m for m in order if m not in table.methods]
    if unknown:
        raise ValueError(f"method {unknown[0]!r} is not in the table ({table.methods})")
    scale = 100.0 if percent else 1.0
    unit = " (%)" if percent else ""
    fig = go.Figure()
    xs_all = [s.sparsity for s in summary if s.method in order]
    x_lo, x_hi = (min(xs_all), max(xs_all)) if xs_all else (0.0, 1.0)
    for i, method in enumerate(order):
        rows = sorted((s for s in summary if s.method == method), key=lambda s: s.sparsity)
        color = nth_color(i)
        x = [scale * s.sparsity for s in rows]
        mean = [scale * s.mean for s in rows]
        lo = [scale * (s.mean - s.std) for s in rows]
        hi = [scale * (s.mean + s.std) for s in rows]
        if dense_line and len(rows) == 1 and rows[0].sparsity == 0.0 and x_hi > 0:
            x = [scale * x_lo, scale * x_hi]
            mean, lo, hi = mean * 2, lo * 2, hi * 2
            dash = "dash"
        else:
            dash = "solid"
        fig.add_trace(_band(x, lo, hi, color, method))
        n = max((s.n for s in rows), default=0)
        fig.add_trace(
            go.Scatter(
                x=x,
                y=mean,
                mode="lines" if dash == "dash" else "lines+markers",
                line={"color": color, "dash": dash},
                name=method,
                legendgroup=method,
                customdata=[[scale * s.std, s.n] for s in rows] * (2 if dash == "dash" else 1),
                hovertemplate=(
                    f"{method}<br>sparsity %{{x:.1f}}<br>accuracy %{{y:.2f}} ± "
                    f"%{{customdata[0]:.2f}} (n=%{{customdata[1]}})<extra></extra>"
                )
                if percent
                else None,
                meta={"seeds": n},
            )
        )
    fig.update_xaxes(title_text=f"sparsity{unit}")
    fig.update_yaxes(title_text=f"test accuracy{unit}")
    fig.update_layout(
        title=title or f"accuracy vs sparsity (mean ± std over {len(table.data_seeds)} data seeds)",
        template="plotly_white",
    )
    return fig


def _band(x: list[float], lo: list[float], hi: list[float], color: str, method: str) -> go.Scatter:
    """The shaded band between `lo` and `hi` (mean ± std) along `x`, in the method's colour."""
    return go.Scatter(
        x=x + x[::-1],
        y=hi + lo[::-1],
        fill="toself",
        fillcolor=_rgba(color, 0.18),
        line={"width": 0},
        hoverinfo="skip",
        showlegend=False,
        legendgroup=method,
        name=f"{method} ± std",
    )


def _short(name: str) -> str:
    return name.removesuffix(".weight") or name


def plot_layer_sparsity(
    masks: Mapping[str, Mask], percent: bool = True, title: str = ""
) -> go.Figure:
    """Per-layer sparsity of each mask (one bar group per prunable tensor, one colour per
    method), with the overall sparsity in the legend."""
    if not masks:
        raise ValueError("plot_layer_sparsity needs at least one mask")
    names = list(next(iter(masks.values())))
    scale = 100.0 if percent else 1.0
    fig = go.Figure()
    for i, (label, mask) in enumerate(masks.items()):
        if list(mask) != names:
            raise ValueError(f"mask {label!r} covers other tensors than the first mask")
        rows = mask.per_layer()
        fig.add_trace(
            go.Bar(
                x=[_short(r.name) for r in rows],
                y=[scale * r.sparsity for r in rows],
                name=f"{label} ({scale * mask.sparsity:.1f}{'%' if percent else ''} overall)",
                marker_color=nth_color(i),
                customdata=[[r.kept, r.total] for r in rows],
                hovertemplate="%{x}: %{y:.2f} (kept %{customdata[0]} of %{customdata[1]})"
                "<extra></extra>",
            )
        )
    fig.update_layout(
        barmode="group",
        title=title or "per-layer sparsity",
        template="plotly_white",
        xaxis_title="layer",
        yaxis_title="sparsity (%)" if percent else "sparsity",
    )
    return fig


def plot_mask_iou(
    a: Mask | Sequence[Mask],
    b: Mask | Sequence[Mask],
    labels: tuple[str, str] = ("a", "b"),
    metric: str = "iou",
    chance: bool = True,
    title: str = "",
) -> go.Figure:
    """Overlap of two methods' masks per layer.

    With two masks: one bar per layer (and "all"), plus the chance level (`random_iou`: two
    random masks with the same per-layer densities) as markers. With two equally long lists
    (e.g. the rounds of two IMP runs): one line per layer against the sparsity of `a`'s masks.
    `metric` is "iou" or "hamming" (fraction of entries that differ).
    """
    if metric not in ("iou", "hamming"):
        raise ValueError(f"metric must be 'iou' or 'hamming', got {metric!r}")

    name = "IoU" if metric == "iou" else "Hamming distance (fraction)"
    head = title or f"{name} of the masks: {labels[0]} vs {labels[1]}"
    chance = chance and metric == "iou"
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        fig = _overlap_bars(a, b, metric, name, chance)
        fig.update_layout(
            title=head, template="plotly_white", xaxis_title="layer", yaxis_title=name
        )
        return fig
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        raise TypeError("a and b must both be masks, or both lists of masks")
    a, b = list(a), list(b)
    if len(a) != len(b) or not a:
        raise ValueError(
            f"need two equally long, non-empty lists of masks, got {len(a)} and {len(b)}"
        )
    fig = _overlap_lines(a, b, metric, chance)
    fig.update_layout(
        title=head,
        template="plotly_white",
        xaxis_title=f"sparsity of {labels[0]} (%)",
        yaxis_title=name,
    )
    return fig


def _overlap(metric: str, x: Mapping[str, Any], y: Mapping[str, Any], per_layer: bool) -> Any:
    """IoU or Hamming distance of two masks, overall or per layer."""
    if metric == "iou":
        return iou(x, y, per_layer=per_layer)
    return hamming(x, y, per_layer=per_layer)


def _overlap_bars(
    a: Mapping[str, Any], b: Mapping[str, Any], metric: str, name: str, chance: bool
) -> go.Figure:
    """One bar per layer (and "all"), with the chance level as markers."""
    per = _overlap(metric, a, b, True)
    x = [_short(n) for n in per] + ["all"]
    y = [*per.values(), _overlap(metric, a, b, False)]
    fig = go.Figure(go.Bar(x=x, y=y, name=name, marker_color=nth_color(0)))
    if chance:
        base = random_iou(a, b, per_layer=True)
        fig.add_trace(
            go.Scatter(
                x=x,
                y=[*base.values(), random_iou(a, b)],
                mode="markers",
                marker={"symbol": "line-ew-open", "size": 28, "color": "black"},
                name="chance (random masks, same densities)",
            )
        )
    return fig


def _overlap_lines(a: list[Mask], b: list[Mask], metric: str, chance: bool) -> go.Figure:
    """One line per layer (and "all") over the sparsities of `a`, with the chance level."""
    per = [_overlap(metric, x, y, True) for x, y in zip(a, b, strict=True)]
    overall = [_overlap(metric, x, y, False) for x, y in zip(a, b, strict=True)]
    xs = [100 * m.sparsity for m in a]
    fig = go.Figure()
    for i, layer in enumerate(per[0]):
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[p[layer] for p in per],
                mode="lines+markers",
                name=_short(layer),
                line={"color": nth_color(i)},
            )
        )
    fig.add_trace(
        go.Scatter(
            x=xs, y=overall, mode="lines+markers", name="all", line={"color": "black", "width": 3}
        )
    )
    if chance:
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[random_iou(x, y) for x, y in zip(a, b, strict=True)],
                mode="lines",
                name="chance (all)",
                line={"color": "black", "dash": "dot"},
            )
        )
    return fig


def plot_imp(results: Any, title: str = "") -> go.Figure:
    """The rounds of one or more IMP runs (`ImpResult`, or a mapping label → `ImpResult`):
    accuracy on the eval data against sparsity, and the cost of finding each mask (sample-
    gradient evaluations, log scale)."""
    runs = results if isinstance(results, Mapping) else {getattr(results, "method", "imp"): results}
    fig = make_subplots(rows=1, cols=2, subplot_titles=("eval accuracy (%)", "mask cost (samples)"))
    for i, (label, res) in enumerate(runs.items()):
        color = nth_color(i)
        xs = [100 * r.sparsity for r in res.rounds]
        acc = [None if r.accuracy is None else 100 * r.accuracy for r in res.rounds]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=acc,
                mode="lines+markers",
                name=label,
                legendgroup=label,
                line={"color": color},
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=xs[1:],
                y=[r.mask_samples for r in res.rounds[1:]],
                mode="lines+markers",
                name=label,
                legendgroup=label,
                showlegend=False,
                line={"color": color},
            ),
            row=1,
            col=2,
        )
    fig.update_xaxes(title_text="sparsity (%)")
    fig.update_yaxes(title_text="eval accuracy (%)", row=1, col=1)
    fig.update_yaxes(title_text="sample gradients to find the mask", type="log", row=1, col=2)
    fig.update_layout(title=title or "IMP rounds", template="plotly_white")
    return fig
