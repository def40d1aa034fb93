"""Figures of synthetic sets: the images of each class on one grid."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch

from lmc_toolkit.data import Dataset
from lmc_toolkit.data.inputs import is_dict


def image_grid(data: Dataset, per_class: int | None = None, gap: int = 1) -> np.ndarray:
    """An H×W×3 uint8 array: one row per class, its first `per_class` images side by side.

    Pixels are mapped back to [0, 1] with the set's `meta` mean and std when it has them,
    else stretched from the set's minimum to maximum. Missing images stay white.
    """
    if not isinstance(data, Dataset):
        raise TypeError(f"expected an lmc_toolkit Dataset, got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError(f"{data.name!r} is empty: there is nothing to draw")
    counts = data.class_counts()
    cols = int(counts.max()) if per_class is None else per_class
    if not isinstance(cols, int) or cols < 1:
        raise ValueError(f"per_class must be a positive int or None, got {per_class!r}")
    x = _to_unit(data).cpu()
    c, h, w = data.image_shape
    grid = np.ones((data.num_classes * (h + gap) - gap, cols * (w + gap) - gap, 3))
    y = data.y.cpu()
    for k in range(data.num_classes):
        for j, i in enumerate(torch.nonzero(y == k).flatten()[:cols].tolist()):
            img = x[i].permute(1, 2, 0).numpy()
            if c != 3:
                img = np.repeat(img[..., :1], 3, axis=2)
            top, left = k * (h + gap), j * (w + gap)
            grid[top : top + h, left : left + w] = img
    return (np.clip(grid, 0, 1) * 255).round().astype(np.uint8)


def _to_unit(data: Dataset) -> torch.Tensor:
    if is_dict(data.x):
        raise TypeError(f"{data.name!r} holds dict inputs, not images: there is nothing to draw")
    x = data.x.detach().float()
    mean, std = data.meta.get("mean"), data.meta.get("std")
    if mean is not None and std is not None and len(mean) == len(std) == x.shape[1]:
        m = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
        s = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
        return x * s + m
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo).clamp_min(1e-12)


def plot_synthetic(
    data: Dataset, per_class: int | None = None, title: str | None = None, scale: int = 3
) -> go.Figure:
    """The synthetic images of each class as one picture, with the class names down the side."""
    grid = image_grid(data, per_class)
    h = data.image_shape[1]
    meta = data.meta
    if title is None:
        how = meta.get("method", "images")
        ipc = f", ipc {meta['ipc']}" if "ipc" in meta else ""
        title = f"{data.name}: {how}{ipc} ({len(data)} images)"
    fig = go.Figure(go.Image(z=grid, hoverinfo="skip"))
    centers = [k * (h + 1) + (h - 1) / 2 for k in range(data.num_classes)]
    fig.update_yaxes(
        title_text="class", tickvals=centers, ticktext=list(data.classes), showgrid=False
    )
    fig.update_xaxes(showticklabels=False, showgrid=False)
    fig.update_layout(
        title=title,
        width=max(300, grid.shape[1] * scale + 120),
        height=max(250, grid.shape[0] * scale + 100),
        margin={"l": 80, "r": 20, "t": 50, "b": 20},
    )
    return fig
