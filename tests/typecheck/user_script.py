"""A user's script, as a type checker reads it (`tests/test_typecheck.py`): every top-level
name must resolve, and the results must have the types the library documents. Not run."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lmc_toolkit as L

x, y = torch.randn(64, 20), torch.randint(0, 3, (64,))
loader = DataLoader(TensorDataset(x, y), batch_size=16)
net = nn.Sequential(nn.Linear(20, 8), nn.ReLU(), nn.Linear(8, 3))

data: L.Dataset = L.as_dataset(loader)
streamed: L.Stream = L.stream(loader)
H: L.Hessian = L.Hessian(net, loader, bn="eval", hvp_method="auto")
eig: L.Eigen = L.top_eigenvalues(H, k=2, which="LA")
tr: L.Estimate = L.trace(H, probes=10, method="hutchinson")
diag: L.Diagonal = L.diagonal(L.GGN(net, data), method="ggn")
config = L.TrainConfig(epochs=1, optimizer="sgd", augment="none")
a: L.TrainResult = L.train(net, loader, config, data_seed=0, loss="cross_entropy")
b: L.TrainResult = L.train(net, loader, config, data_seed=1)
metrics: L.Metrics = L.evaluate(a.model(), streamed)
curve: L.Curve = L.interpolate(a, b, data, alphas=5, bn="eval")
aligned: L.AlignedCurve = L.interpolate(a, b, data, align="weights", bn="eval")
surface: L.Surface = L.random_plane(a.model(), data, seeds=(0, 1), bn="eval")
imp: L.ImpResult = L.imp(net, data, L.ImpConfig(rounds=1, rewind="init", scope="global"))
mask: L.Mask = imp.rounds[-1].mask
print(eig.values, tr.mean, diag.values, metrics.loss, curve.barrier("error"), surface.loss)
print(aligned.after, mask.sparsity)
