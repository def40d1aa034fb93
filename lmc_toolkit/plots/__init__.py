"""Plotly figures for every result type: library functions return data, these draw it.

The only part of the toolkit that imports plotly. One submodule per area; everything public is
re-exported here, so `from lmc_toolkit import plots; plots.plot_curve(...)` works.
"""
