"""The one data entrance: a DataLoader, an (X, Y) pair, a torch Dataset or an iterable of
batches works wherever a toolkit Dataset does, and gives the same numbers; models the registry
does not know are checked on one batch when a function is called."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lmc_toolkit as L
from lmc_toolkit.data.entrance import as_dataset


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(20, 16), nn.Tanh(), nn.Linear(16, 3)).double()


@pytest.fixture(scope="module")
def xy() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 20, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (256,), generator=g)
    return x, y


def kinds(x: torch.Tensor, y: torch.Tensor) -> dict[str, object]:
    return {
        "loader": DataLoader(TensorDataset(x, y), batch_size=64),
        "pair": (x, y),
        "tensor dataset": TensorDataset(x, y),
        "generator of batches": ((x[i : i + 50], y[i : i + 50]) for i in range(0, len(x), 50)),
    }


def dense_hessian(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The float64 Hessian of the mean cross-entropy, from autograd's dense routine."""
    names = [n for n, _ in model.named_parameters()]
    params = [p.detach() for p in model.parameters()]
    shapes, sizes = [p.shape for p in params], [p.numel() for p in params]

    def loss(flat: torch.Tensor) -> torch.Tensor:
        parts = [t.view(s) for t, s in zip(flat.split(sizes), shapes, strict=True)]
        out = torch.func.functional_call(model, dict(zip(names, parts, strict=True)), (x,))
        return nn.functional.cross_entropy(out, y)

    return torch.autograd.functional.hessian(loss, torch.cat([p.reshape(-1) for p in params]))


def test_every_kind_becomes_the_same_dataset(xy):
    x, y = xy
    for name, data in kinds(x, y).items():
        d = as_dataset(data)
        assert torch.equal(d.x, x) and torch.equal(d.y, y), name
        assert d.in_shape == (20,) and d.num_classes == 3 and not d.regression


def test_the_hessian_over_every_kind_matches_a_dense_float64_hessian(xy):
    x, y = xy
    model = mlp()
    dense = dense_hessian(model, x, y)
    exact = torch.linalg.eigvalsh(dense)
    fast = L.Hessian(model, as_dataset((x, y)))
    for name, data in kinds(x, y).items():
        H = L.Hessian(model, data)
        top = L.top_eigenvalues(H, k=2, seed=0, progress=False).values
        assert torch.allclose(torch.as_tensor(top).double(), exact.flip(0)[:2], rtol=1e-6), name
        v = torch.randn(H.dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        assert torch.allclose(H.hvp(v), dense @ v, rtol=1e-9, atol=1e-12), name
        assert torch.allclose(H.hvp(v), fast.hvp(v), rtol=0, atol=1e-14), name
        diag = L.diagonal(H, progress=False)
        flat = torch.cat([diag.values[n].reshape(-1) for n, _ in model.named_parameters()])
        assert torch.allclose(flat, dense.diagonal(), rtol=1e-8, atol=1e-12), name
        assert math.isclose(float(flat.sum()), float(dense.trace()), rel_tol=1e-9), name


def test_evaluate_and_interpolate_over_a_loader_match_a_direct_loop(xy):
    x, y = xy
    a, b = mlp(0), mlp(1)
    loader = DataLoader(TensorDataset(x, y), batch_size=64)
    curve = L.interpolate(a, b, loader, alphas=5, bn="eval", progress=False)
    for alpha, loss, acc in zip(curve.alphas, curve.loss, curve.accuracy, strict=True):
        net = mlp(0)
        with torch.no_grad():
            for p, pa, pb in zip(net.parameters(), a.parameters(), b.parameters(), strict=True):
                p.copy_((1 - alpha) * pa + alpha * pb)
        want_loss, want_acc = loop_metrics(net, loader)
        assert math.isclose(loss, want_loss, rel_tol=1e-6) and acc == want_acc
    m = L.evaluate(a, loader)
    assert math.isclose(m.loss, curve.loss[0], rel_tol=1e-6) and m.accuracy == curve.accuracy[0]


def loop_metrics(net: nn.Module, loader: DataLoader) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of `net` over `loader`, batch by batch."""
    total, right, n = 0.0, 0, 0
    with torch.no_grad():
        for xb, yb in loader:
            out = net(xb)
            total += float(nn.functional.cross_entropy(out, yb, reduction="sum"))
            right += int((out.argmax(1) == yb).sum())
            n += len(yb)
    return total / n, right / n


def test_a_plane_over_a_loader_matches_a_direct_loop(xy):
    x, y = xy
    center = mlp(0)
    g = torch.Generator().manual_seed(2)
    d1, d2 = (
        {k: torch.randn(p.shape, generator=g, dtype=p.dtype) for k, p in center.named_parameters()}
        for _ in range(2)
    )
    loader = DataLoader(TensorDataset(x, y), batch_size=64)
    surface = L.plane(center, d1, d2, loader, (-1, 1, 3), (-0.5, 0.5, 2), bn="eval", progress=False)
    for i, b in enumerate(surface.y):
        for j, a in enumerate(surface.x):
            net = mlp(0)
            with torch.no_grad():
                for k, p in net.named_parameters():
                    p.add_(a * d1[k] + b * d2[k])
            loss, acc = loop_metrics(net, loader)
            assert math.isclose(surface.loss[i, j], loss, rel_tol=1e-6)
            assert surface.accuracy[i, j] == acc


def test_training_refuses_a_shuffling_loader_and_takes_an_ordered_one(xy):
    x, y = xy
    config = L.TrainConfig(epochs=1, batch_size=32, lr=0.1)
    with pytest.raises(ValueError, match="DataLoader that shuffles .*RandomSampler.*shuffle=False"):
        L.train(mlp(), DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True), config)
    ordered = L.train(mlp(), DataLoader(TensorDataset(x, y), batch_size=32), config)
    again = L.train(mlp(), (x, y), config)
    for k, v in ordered.state.items():
        assert torch.equal(v, again.state[k])  # the loader is read once, then seeded batching
    net = ordered.model()  # a model the registry does not know is rebuilt from the one given
    assert all(torch.equal(p, ordered.state[k]) for k, p in net.state_dict().items())


def test_regression_targets_take_the_mse_hessian_and_cross_entropy_is_refused_by_name():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 5, generator=g, dtype=torch.float64)
    y = x @ torch.randn(5, 1, generator=g, dtype=torch.float64) + 0.1
    data = as_dataset((x, y))
    assert data.regression and data.num_classes == 0 and data.classes == ()
    torch.manual_seed(0)
    model = nn.Linear(5, 1).double()
    H = L.Hessian(model, data, loss="mse")
    # the MSE Hessian of a linear model is 2/(N) Σ [x, 1][x, 1]ᵀ, whatever its weights
    z = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    dense = 2 * z.T @ z / len(x)
    v = torch.randn(6, generator=g, dtype=torch.float64)
    assert torch.allclose(H.hvp(v), dense @ v, rtol=1e-10)
    with pytest.raises(ValueError, match="cross-entropy cannot score; pass loss='mse'"):
        L.evaluate(model, data)
    with pytest.raises(ValueError, match="GGN needs loss in"):
        L.GGN(model, data, loss="mse")


def test_token_ids_are_inputs_too():
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 50, (64, 7), generator=g)
    labels = torch.randint(0, 2, (64,), generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(50, 8), nn.Flatten(), nn.Linear(56, 2))
    m = L.evaluate(model, (tokens, labels))
    assert m.n == 64 and 0 <= m.accuracy <= 1


def test_a_model_missing_its_flatten_fails_at_call_time_naming_the_layer(xy):
    x, y = xy
    images = x.float().view(256, 1, 4, 5)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Linear(80, 3))
    with pytest.raises(
        RuntimeError, match=r"at layer '2' \(Linear\), given input of shape \(2, 4, 4, 5\)"
    ):
        L.Hessian(model, (images, y))
    with pytest.raises(ValueError, match="2 inputs .* into 8 outputs|outputs on evaluation data"):
        L.evaluate(nn.Sequential(nn.Conv2d(1, 3, 1)), (images, y))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("mnist", "must be a toolkit Dataset, an \\(X, Y\\) pair .* got str"),
        (torch.zeros(3, 2), "got a tensor of shape \\(3, 2\\)"),
        (
            [(torch.zeros(2, 3), torch.zeros(2), torch.zeros(2))],
            "batch 0 must be an \\(x, y\\) pair",
        ),
        ((torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)), "is empty"),
        ((torch.zeros(3, 2), torch.zeros(4, dtype=torch.long)), "3 inputs but 4 targets"),
        ((torch.zeros(3, 2, dtype=torch.bool), torch.zeros(3)), "float or integer tensor"),
    ],
)
def test_bad_data_is_refused_with_what_is_allowed(data, message):
    with pytest.raises((TypeError, ValueError), match=message):
        as_dataset(data)


def test_instability_alignment_and_synthetic_sets_take_a_loader_and_agree(xy):
    x, y = xy
    x = x.float()
    loader = DataLoader(TensorDataset(x, y), batch_size=64)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 3))
    config = L.TrainConfig(epochs=1, batch_size=32, lr=0.1)
    options = {"alphas": 3, "bn": "eval", "progress": False}
    a = L.instability(net, loader, loader, config, **options)
    b = L.instability(net, (x, y), (x, y), config, **options)
    assert list(a.error_barriers) == list(b.error_barriers)
    with pytest.raises(ValueError, match="DataLoader that shuffles"):
        L.instability(net, DataLoader(TensorDataset(x, y), shuffle=True), loader, config, **options)
    other = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 3))
    p, q = L.activation_matching(net, other, loader), L.activation_matching(net, other, (x, y))
    perms = p.permutation.perms
    assert all(torch.equal(perms[k], q.permutation.perms[k]) for k in perms)
    s, t = L.random_subset(loader, 4, seed=1), L.random_subset((x, y), 4, seed=1)
    assert torch.equal(s.x, t.x) and torch.equal(s.y, t.y)


def test_alignment_traces_a_model_the_registry_does_not_know_from_the_data(xy):
    x, y = xy
    a, b = mlp(0), mlp(1)
    loader = DataLoader(TensorDataset(x, y), batch_size=64)
    for align in ("weights", "activations"):
        curve = L.interpolate(a, b, loader, alphas=3, bn="eval", align=align, progress=False)
        assert list(curve.after.alphas) == [0.0, 0.5, 1.0]  # b permuted onto a
        # a permutation leaves b's function unchanged: the aligned curve ends where b does
        assert math.isclose(curve.after.loss[-1], curve.before.loss[-1], rel_tol=1e-9)


def test_a_loader_lacking_the_last_class_fits_a_registry_model():
    digits = L.load("digits", "test")
    keep = digits.y < 9  # a user's subset without class 9: its labels name classes 0-8
    loader = DataLoader(TensorDataset(digits.x[keep], digits.y[keep]), batch_size=50)
    assert as_dataset(loader).num_classes == 9
    net = L.build("convnet3", 10, digits.in_shape, width=2, depth=1)
    assert L.evaluate(net, loader).n == int(keep.sum())
    assert L.Hessian(net, loader).n == int(keep.sum())
