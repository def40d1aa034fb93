"""Test-wide set-up: a throwaway run store, so tests and the notebooks they execute (nbval,
papermill kernels inherit the environment) never read or write a user's store, and share one
store within a run (the figure notebooks and the reproduce test then train each network once)."""

import os
import tempfile

os.environ["LMC_TOOLKIT_STORE"] = tempfile.mkdtemp(prefix="lmc_toolkit_test_store_")
# the tutorial's smallest scale (its parameters cell reads this; nbval cannot pass parameters)
os.environ.setdefault("LMC_TUTORIAL_PRESET", "smoke")
