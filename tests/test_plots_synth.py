"""The image grid of a synthetic set."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmc_toolkit import data as D
from lmc_toolkit import synth
from lmc_toolkit.plots.synth import image_grid, plot_synthetic


def test_the_grid_has_one_row_per_class_and_the_original_pixels(digits_train):
    s = synth.random_subset(digits_train, 3, 0)
    grid = image_grid(s)
    assert grid.shape == (10 * 9 - 1, 3 * 9 - 1, 3) and grid.dtype == np.uint8
    # The first image of class 2 sits at row 2, column 0, un-normalized back to [0, 1].
    first = s.x[s.y == 2][0, 0] * s.meta["std"][0] + s.meta["mean"][0]
    expected = (first.clamp(0, 1) * 255).round().numpy().astype(np.uint8)
    assert np.array_equal(grid[18:26, 0:8, 0], expected)
    assert np.array_equal(grid[..., 0], grid[..., 2])  # grey images on all three channels
    assert (grid[8, :, :] == 255).all()  # the white gap between class rows


def test_missing_images_stay_white_and_sets_without_statistics_are_stretched():
    x = torch.linspace(-3, 5, 2 * 4).view(2, 1, 2, 2)
    s = D.Dataset(x=x, y=torch.tensor([0, 0]), classes=("a", "b"), name="toy")
    grid = image_grid(s, gap=0)
    assert grid.shape == (4, 4, 3)
    assert grid.min() == 0 and grid[:2].max() == 255
    assert (grid[2:] == 255).all()  # class "b" has no image


def test_the_figure_names_the_classes_and_the_method(digits_train):
    s = synth.random_subset(digits_train, 2, 0)
    fig = plot_synthetic(s)
    assert list(fig.layout.yaxis.ticktext) == list(digits_train.classes)
    assert "random" in fig.layout.title.text and "ipc 2" in fig.layout.title.text
    assert fig.data[0].z.shape == image_grid(s).shape
    with pytest.raises(ValueError, match="per_class"):
        plot_synthetic(s, per_class=0)
