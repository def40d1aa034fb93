"""Mistakes a type checker must catch in a user's script (`tests/test_typecheck.py` expects an
error on every line marked `# error`): proof that the top-level names resolve to their real
types and are not `Any`. Not run."""

from __future__ import annotations

from torch import nn

import lmc_toolkit as L

net = nn.Linear(4, 2)
data = L.load("digits")
count: int = L.Hessian(net, data)  # error
L.Hessian(net, data, bn="recalibrate")  # error
L.top_eigenvalues(L.Hessian(net, data), which="largest")  # error
L.TrainConfig(optimizer="rmsprop")  # error
curve: L.AlignedCurve = L.interpolate(net, net, data)  # error
L.evaluate(net, data, loss="hinge")  # error
L.no_such_function()  # error
