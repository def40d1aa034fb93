"""The ipywidgets explorer: interpolation curves and 2-D slices of trained networks, live."""

from lmc_toolkit.widgets.explorer_widget import Explorer
from lmc_toolkit.widgets.launch import explorer

__all__ = ["Explorer", "explorer"]
