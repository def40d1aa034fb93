"""Streamed data: a loader read batch by batch on every pass gives the numbers of the same data
held in memory (Hessian, GGN, evaluation, interpolation, a plane), and whatever needs the
examples at random refuses a stream by name."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import lmc_toolkit as L


class CountingRows(Dataset):
    """A map-style dataset that counts how many examples were read: the evidence that a
    stream re-reads its source per pass instead of holding it."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y, self.reads = x, y, 0

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        self.reads += 1
        return self.x[i], self.y[i]


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 16), nn.Tanh(), nn.Linear(16, 3)).double()


@pytest.fixture(scope="module")
def xy() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(230, 20, generator=g, dtype=torch.float64)
    return x, torch.randint(0, 3, (230,), generator=g)


def test_the_hessian_and_ggn_over_a_stream_equal_those_over_the_data_in_memory(xy):
    x, y = xy
    rows = CountingRows(x, y)
    s = L.stream(DataLoader(rows, batch_size=64), classes=["a", "b", "c"])
    assert (s.n, s.num_classes, s.batch_size, s.in_shape) == (230, 3, 64, (20,))
    model = mlp()
    for op in (L.Hessian, L.GGN):
        streamed, held = op(model, s), op(model, (x, y))
        assert streamed.hvp_method == "fresh"  # no graph of the whole data is kept
        v = torch.randn(held.dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        before = rows.reads
        assert torch.allclose(streamed.hvp(v), held.hvp(v), rtol=0, atol=1e-14)
        assert rows.reads - before == len(y)  # one product, one pass over the source
        top = L.top_eigenvalues(streamed, k=1, seed=0, progress=False).values[0]
        assert math.isclose(top, L.top_eigenvalues(held, k=1, seed=0).values[0], rel_tol=1e-10)
        tr = L.trace(streamed, seed=0, progress=False).mean
        assert math.isclose(tr, L.trace(held, seed=0, progress=False).mean, rel_tol=1e-10)


def test_evaluation_interpolation_and_a_plane_over_a_stream_match_memory(xy):
    x, y = xy
    s = L.stream(TensorDataset(x.float(), y))
    net = mlp().float()
    other = mlp().float()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.3)
    m = L.evaluate(net, s)
    ref = L.evaluate(net, (x.float(), y))
    assert math.isclose(m.loss, ref.loss, rel_tol=1e-6) and m.accuracy == ref.accuracy
    curve = L.interpolate(net, other, s, alphas=5, bn="eval", progress=False)
    held = L.interpolate(net, other, (x.float(), y), alphas=5, bn="eval", progress=False)
    assert curve.meta["evaluator"]["method"] == "stream"
    assert torch.allclose(torch.tensor(curve.loss), torch.tensor(held.loss), rtol=1e-6)
    assert (curve.accuracy == held.accuracy).all() and (curve.correct == held.correct).all()
    digits = L.load("digits", "test")  # a registry model is checked by its recorded shapes
    convnet = L.build("convnet3", 10, digits.in_shape, width=2, depth=1)
    on_stream = L.evaluate(convnet, L.stream(TensorDataset(digits.x, digits.y)))
    assert math.isclose(on_stream.loss, L.evaluate(convnet, digits).loss, rel_tol=1e-6)
    d = {k: torch.ones_like(p) * 0.1 for k, p in net.named_parameters()}
    grid = (-1.0, 1.0, 3)
    surface = L.plane(net, d, d, s, grid, grid, bn="eval", progress=False)
    again = L.plane(net, d, d, (x.float(), y), grid, grid, bn="eval", progress=False)
    assert torch.allclose(torch.tensor(surface.loss), torch.tensor(again.loss), rtol=1e-6)


def test_what_needs_examples_at_random_refuses_a_stream_by_name(xy):
    x, y = xy
    s = L.stream(DataLoader(TensorDataset(x, y), batch_size=50))
    with pytest.raises(TypeError, match="training data is a Stream .* pass a toolkit Dataset"):
        L.train(mlp(), s, L.TrainConfig(epochs=1), progress=False)
    bn_net = nn.Sequential(nn.Linear(20, 8), nn.BatchNorm1d(8), nn.Linear(8, 3)).double()
    with pytest.raises(ValueError, match="bn='recalibrate' .* pass bn_data="):
        L.interpolate(bn_net, bn_net, s, alphas=3, progress=False)
    with pytest.raises(ValueError, match="align= and repair= .* pass align_data="):
        L.interpolate(mlp(), mlp(), s, alphas=3, align="weights", progress=False)


def test_a_stream_refuses_sources_that_break_its_passes(xy):
    x, y = xy
    with pytest.raises(ValueError, match="shuffles .* pass shuffle=False"):
        L.stream(DataLoader(TensorDataset(x, y), batch_size=50, shuffle=True))
    with pytest.raises(TypeError, match="re-iterable source .* one-shot generator"):
        L.stream((x[i : i + 50], y[i : i + 50]) for i in range(0, 230, 50))
    dropping = L.stream(DataLoader(TensorDataset(x, y), batch_size=50, drop_last=True))
    assert dropping.n == 200 and L.evaluate(mlp(), dropping).n == 200  # the short batch dropped
    batches = [(x[i : i + 50], y[i : i + 50]) for i in range(0, 230, 50)]
    s = L.stream(batches)  # a list is re-iterable: its length is counted in one pass
    assert s.n == 230 and s.num_classes == 3
    batches.pop()  # the source changes between passes
    with pytest.raises(RuntimeError, match="yielded 200 examples on this pass, not the 230"):
        L.evaluate(mlp(), s)
