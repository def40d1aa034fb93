"""Any loss and dict inputs, end to end: an MSE regression model and a model whose forward
takes a dict train, evaluate, interpolate, take a plane and a Hessian, each number checked
against a direct computation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

import lmc_toolkit as L
from lmc_toolkit.data.entrance import as_dataset


def regression_data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=g, dtype=torch.float64)
    y = torch.sin(x[:, :2]) + 0.05 * torch.randn(200, 2, generator=g, dtype=torch.float64)
    return x, y


def regressor(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 2)).double()


def test_an_mse_regression_model_trains_evaluates_and_interpolates():
    x, y = regression_data()
    config = L.TrainConfig(epochs=3, batch_size=20, lr=0.1, momentum=0.0, warmup_steps=0)
    a = L.train(regressor(0), (x, y), config, data_seed=0, loss="mse", progress=False)
    b = L.train(regressor(0), (x, y), config, data_seed=1, loss="mse", progress=False)
    start = F.mse_loss(regressor(0)(x), y).item()
    assert a.history[-1].loss < start and math.isnan(a.history[-1].accuracy)
    net = a.model()
    m = L.evaluate(net, (x, y), loss="mse")
    assert math.isclose(m.loss, F.mse_loss(net(x), y).item(), rel_tol=1e-12)
    assert math.isnan(m.accuracy)
    curve = L.interpolate(a, b, (x, y), alphas=3, bn="eval", loss="mse", progress=False)
    for alpha, loss in zip(curve.alphas, curve.loss, strict=True):
        mid = regressor(0)
        mid.load_state_dict({k: (1 - alpha) * a.state[k] + alpha * b.state[k] for k in a.state})
        assert math.isclose(loss, F.mse_loss(mid(x), y).item(), rel_tol=1e-9)
    with pytest.raises(ValueError, match="cross-entropy cannot score; pass loss='mse'"):
        L.train(regressor(0), (x, y), config, progress=False)


def test_a_callable_loss_scores_as_the_direct_mean_over_the_data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(90, 6, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 2, (90,), generator=g)
    net = regressor(3)

    def smoothed(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out, y, label_smoothing=0.1)

    m = L.evaluate(net, (x, labels), batch_size=32, loss=smoothed)
    assert math.isclose(m.loss, smoothed(net(x), labels).item(), rel_tol=1e-12)
    assert m.accuracy == (net(x).argmax(1) == labels).double().mean().item()
    d = {k: torch.ones_like(p) for k, p in net.named_parameters()}
    axis = [0.0, 0.5]
    surface = L.plane(net, d, d, (x, labels), axis, axis, bn="eval", loss=smoothed, progress=False)
    assert math.isclose(surface.loss[0, 0], m.loss, rel_tol=1e-9)  # the origin is the model
    assert surface.meta["loss"] == "smoothed"
    with pytest.raises(ValueError, match="loss must be one of .* got 'hinge'"):
        L.evaluate(net, (x, labels), loss="hinge")


class TwoInputs(nn.Module):
    """A forward over a dict: dense features and token ids, as multimodal models take them."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(30, 4)
        self.dense = nn.Linear(5, 8)
        self.head = nn.Linear(8 + 4, 3)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        tokens = self.embed(batch["tokens"]).mean(1)
        return self.head(torch.cat([torch.tanh(self.dense(batch["features"])), tokens], 1))


def dict_examples() -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    inputs = {
        "features": torch.randn(120, 5, generator=g, dtype=torch.float64),
        "tokens": torch.randint(0, 30, (120, 6), generator=g),
    }
    return inputs, torch.randint(0, 3, (120,), generator=g)


class DictRows(torch.utils.data.Dataset):
    """A map-style dataset of (dict, label) examples, batched by the default collate."""

    def __init__(self, inputs: dict[str, torch.Tensor], y: torch.Tensor) -> None:
        self.inputs, self.y = inputs, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return {k: v[i] for k, v in self.inputs.items()}, self.y[i]


def test_a_model_with_a_dict_input_works_end_to_end():
    inputs, y = dict_examples()
    loader = DataLoader(DictRows(inputs, y), batch_size=32)
    data = as_dataset(loader)
    assert data.in_shape == {"features": (5,), "tokens": (6,)} and data.num_classes == 3
    assert torch.equal(data.x["tokens"], inputs["tokens"])
    torch.manual_seed(0)
    model = TwoInputs().double()
    m = L.evaluate(model, loader)
    assert math.isclose(m.loss, F.cross_entropy(model(inputs), y).item(), rel_tol=1e-12)

    config = L.TrainConfig(epochs=2, batch_size=16, lr=0.1, warmup_steps=0)
    first = L.train(model, loader, config, data_seed=0, progress=False)
    again = L.train(model, (inputs, y), config, data_seed=0, progress=False)
    assert all(torch.equal(v, again.state[k]) for k, v in first.state.items())
    assert first.history[-1].loss < m.loss

    H = L.Hessian(first.model(), loader)
    net = first.model()
    names = [n for n, _ in net.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    sizes = [p.numel() for p in net.parameters()]
    shapes = [p.shape for p in net.parameters()]

    def loss(v: torch.Tensor) -> torch.Tensor:
        views = [t.view(s) for t, s in zip(v.split(sizes), shapes, strict=True)]
        parts = dict(zip(names, views, strict=True))
        return F.cross_entropy(torch.func.functional_call(net, parts, (inputs,)), y)

    dense = torch.autograd.functional.hessian(loss, flat)
    v = torch.randn(len(flat), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert torch.allclose(H.hvp(v), dense @ v, rtol=1e-8, atol=1e-10)
    top = L.top_eigenvalues(H, k=1, seed=0).values[0]
    assert math.isclose(top, torch.linalg.eigvalsh(dense)[-1].item(), rel_tol=1e-6)
    curve = L.interpolate(first, again, loader, alphas=2, bn="eval", progress=False)
    assert math.isclose(curve.loss[0], L.evaluate(net, loader).loss, rel_tol=1e-9)


def test_dict_inputs_are_checked_and_refused_where_images_are_needed():
    inputs, y = dict_examples()
    with pytest.raises(ValueError, match="different numbers of examples"):
        as_dataset(({"a": inputs["features"], "b": inputs["tokens"][:5]}, y))
    data = as_dataset((inputs, y))
    with pytest.raises(ValueError, match="augment='crop' .* needs float N×C×H×W inputs"):
        next(data.batches(8, torch.Generator(), augment="crop"))
    with pytest.raises(TypeError, match="model takes one input tensor; .* dict of inputs"):
        L.evaluate(L.build("mlp", in_shape=(1, 1, 5), num_classes=3), data)
    wrong = {"features": inputs["features"], "ids": inputs["tokens"]}
    with pytest.raises(KeyError, match="'tokens'"):  # the model's own error, with the inputs
        L.evaluate(TwoInputs().double(), (wrong, y))
