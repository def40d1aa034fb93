"""Synthetic data: the random control, herding, DM, gradient matching, multi-formation, files."""

from __future__ import annotations

import json

import pytest
import torch

from lmc_toolkit import data as D
from lmc_toolkit import synth
from lmc_toolkit.data.dataset import normalize
from lmc_toolkit.models import build
from lmc_toolkit.store import Store
from lmc_toolkit.synth.common import class_rows, draw_seed, generator
from lmc_toolkit.synth.gradient_matching import layer_distance
from lmc_toolkit.synth.multiformation import decode_by_class, join_tiles, split_tiles

TINY = {"width": 8, "depth": 2}  # a convnet3 this small keeps each distillation test fast
# On 8×8 digits a depth-3 convnet3 instance-normalizes 2×2 maps: its embedding says little.
SMALL = {"width": 16, "depth": 2}


def _balanced(s: D.Dataset, source: D.Dataset, per_class: int) -> None:
    assert s.in_shape == source.in_shape and s.classes == source.classes
    assert s.class_counts().tolist() == [per_class] * source.num_classes
    assert s.x.dtype == torch.float32 and torch.isfinite(s.x).all()


def _assert_same(a: D.Dataset, b: D.Dataset) -> None:
    """Same images, labels and record (apart from how long the making took)."""
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert {**a.meta, "seconds": None} == {**b.meta, "seconds": None}


# --- the random control ------------------------------------------------------------------


def test_random_subset_takes_ipc_real_images_per_class(digits_train):
    s = synth.random_subset(digits_train, 7, seed=3)
    _balanced(s, digits_train, 7)
    rows = torch.tensor(s.meta["indices"])
    assert len(set(rows.tolist())) == 70
    assert torch.equal(s.x, digits_train.x[rows]) and torch.equal(s.y, digits_train.y[rows])
    assert s.meta["method"] == "random" and s.meta["ipc"] == 7 and s.meta["seed"] == 3
    assert s.meta["source"]["name"] == "digits" and s.meta["source"]["n"] == len(digits_train)
    assert s.meta["mean"] == digits_train.meta["mean"]
    json.dumps(dict(s.meta))


def test_random_subset_is_fixed_by_its_seed(digits_train):
    a, b = synth.random_subset(digits_train, 5, 0), synth.random_subset(digits_train, 5, 0)
    _assert_same(a, b)
    assert a.meta["indices"] != synth.random_subset(digits_train, 5, 1).meta["indices"]


def test_too_many_images_per_class_are_refused_before_any_work(digits_train):
    smallest = int(digits_train.class_counts().min())
    with pytest.raises(ValueError, match=f"use ipc ≤ {smallest}"):
        synth.random_subset(digits_train, smallest + 1)
    with pytest.raises(ValueError, match="must be an int ≥ 1"):
        synth.random_subset(digits_train, 0)
    with pytest.raises(ValueError, match="ipc·factor²"):
        synth.gradient_matching(digits_train, 40, factor=2)


# --- herding ---------------------------------------------------------------------------------


def test_herd_follows_the_greedy_rule_on_a_worked_example():
    # Mean 5: the first pick is 4 or 6 (distance 1; the tie goes to the lower row, 4), the
    # second completes the mean exactly (6), the third keeps it nearest (0 or 10 → 0).
    features = torch.tensor([[0.0], [10.0], [4.0], [6.0]])
    assert synth.herd(features, 3).tolist() == [2, 3, 0]


def test_herd_matches_an_independent_brute_force(rng):
    features = torch.from_numpy(rng.normal(size=(30, 5)))
    picked = synth.herd(features, 8).tolist()
    mu = features.mean(0)
    chosen: list[int] = []
    for k in range(1, 9):
        best = min(
            (i for i in range(30) if i not in chosen),
            key=lambda i: float(((mu - (features[[*chosen, i]].sum(0)) / k) ** 2).sum()),
        )
        chosen.append(best)
    assert picked == chosen


def test_herding_tracks_the_class_mean_better_than_random(digits_train):
    embed = build("convnet3", 10, digits_train.in_shape, 0, depth=2, width=8)[:-1]
    h = synth.herding(digits_train, 5, embed=embed, progress=False)
    _balanced(h, digits_train, 5)
    r = synth.random_subset(digits_train, 5, 0)
    with torch.no_grad():
        for c in range(10):
            mean = embed(digits_train.x[digits_train.y == c]).mean(0)
            gap_h = (embed(h.x[h.y == c]).mean(0) - mean).norm()
            gap_r = (embed(r.x[r.y == c]).mean(0) - mean).norm()
            assert gap_h < gap_r
    assert h.meta["method"] == "herding" and h.meta["embed"].startswith("Sequential:")


def test_herding_with_the_default_network_is_deterministic(digits_small):
    a = synth.herding(digits_small, 3, seed=1, model_options=TINY, progress=False)
    _assert_same(a, synth.herding(digits_small, 3, seed=1, model_options=TINY, progress=False))
    with pytest.raises(TypeError, match="nn.Module"):
        synth.herding(digits_small, 3, embed=lambda x: x)


# --- distribution matching -------------------------------------------------------------------


def _dm(data, **kw):
    options = {"model_options": TINY, "real_batch": 32, "progress": False}
    return synth.distribution_matching(data, **{**options, **kw})


def test_distribution_matching_shapes_labels_and_record(digits_small):
    s = _dm(digits_small, ipc=3, iterations=2, seed=4)
    _balanced(s, digits_small, 3)
    assert s.y.tolist() == sorted(s.y.tolist())
    meta = s.meta
    assert (meta["method"], meta["ipc"], meta["iterations"], meta["seed"]) == ("dm", 3, 2, 4)
    assert meta["lr"] == 1.0 and meta["momentum"] == 0.5 and meta["init"] == "real"
    assert meta["augment"]["always"] == ["color"] and meta["model_options"] == TINY
    assert len(meta["losses"]) == 2 and meta["source"]["name"] == "digits"
    json.dumps(dict(meta))


def test_distribution_matching_is_fixed_by_its_seed(digits_small):
    a = _dm(digits_small, ipc=2, iterations=3, seed=0)
    b = _dm(digits_small, ipc=2, iterations=3, seed=0)
    assert torch.equal(a.x, b.x) and a.meta["losses"] == b.meta["losses"]
    assert not torch.equal(a.x, _dm(digits_small, ipc=2, iterations=3, seed=1).x)


def test_distillation_starts_from_the_random_subset_of_its_seed(digits_small):
    """Zero iterations give back the random control of the same seed, so what distillation
    adds is measured against exactly the images it started from."""
    control = synth.random_subset(digits_small, 2, seed=5)
    start = _dm(digits_small, ipc=2, iterations=0, seed=5)
    assert torch.equal(start.x, control.x) and torch.equal(start.y, control.y)
    assert torch.equal(_gm(digits_small, ipc=2, iterations=0, seed=5).x, control.x)
    moved = _dm(digits_small, ipc=2, iterations=2, seed=5)
    assert not torch.equal(moved.x, start.x)


def test_distribution_matching_pulls_noise_towards_the_real_embedding(digits_train):
    """From noise, DM must close most of the gap between the mean embeddings of real and
    synthetic images, measured by networks it never trained with."""
    kw = {"ipc": 5, "init": "noise", "model_options": SMALL, "seed": 0}
    s = _dm(digits_train, iterations=40, augment=False, **kw)
    start = _dm(digits_train, iterations=0, **kw)

    def gap(images: D.Dataset, net_seed: int) -> float:
        embed = build("convnet3", 10, digits_train.in_shape, 1000 + net_seed, **SMALL)[:-1]
        total = 0.0
        with torch.no_grad():
            for c in range(10):
                real = embed(digits_train.x[digits_train.y == c]).mean(0)
                total += float((real - embed(images.x[images.y == c]).mean(0)).pow(2).sum())
        return total

    for net_seed in range(3):
        assert gap(s, net_seed) < 0.2 * gap(start, net_seed)


def test_one_dm_step_is_sgd_on_the_squared_distance_of_mean_embeddings(digits_small):
    """Recompute the first step by hand from the same random streams: a fresh network, a real
    batch per class, the squared distance of mean embeddings, one SGD step (no velocity yet)."""
    kw = {"ipc": 2, "seed": 3, "augment": False, "lr": 0.5}
    start = _dm(digits_small, iterations=0, **kw).x
    one = _dm(digits_small, iterations=1, **kw).x
    g_net, g_batch, g_aug = (generator(3, s) for s in ("net", "batch", "augment"))
    embed = build("convnet3", 10, digits_small.in_shape, draw_seed(g_net), **TINY)[:-1]
    x = start.clone().requires_grad_(True)
    loss = torch.zeros(())
    for c, rows in enumerate(class_rows(digits_small)):
        draw_seed(g_aug)  # the augmentation seed is drawn even when nothing uses it
        real = digits_small.x[rows[torch.randperm(len(rows), generator=g_batch)[:32]]]
        loss = loss + ((embed(real).mean(0) - embed(x[2 * c : 2 * c + 2]).mean(0)) ** 2).sum()
    loss.backward()
    torch.testing.assert_close(one, start - 0.5 * x.grad)


# --- gradient matching -----------------------------------------------------------------------


def _gm(data, **kw):
    options = {
        "model_options": TINY,
        "real_batch": 32,
        "outer_loops": 2,
        "inner_loops": 2,
        "iterations": 1,
        "progress": False,
    }
    return synth.gradient_matching(data, **{**options, **kw})


def test_gradient_matching_shapes_labels_and_determinism(digits_small):
    a = _gm(digits_small, ipc=2, seed=2)
    _balanced(a, digits_small, 2)
    assert a.meta["method"] == "gm" and a.meta["distance"] == "cosine"
    assert a.meta["outer_loops"] == 2 and len(a.meta["losses"]) == 2
    b = _gm(digits_small, ipc=2, seed=2)
    assert torch.equal(a.x, b.x) and a.meta["losses"] == b.meta["losses"]
    assert not torch.equal(a.x, _gm(digits_small, ipc=2, seed=3).x)


def test_gradient_matching_with_multi_formation_decodes_factor_squared_images(digits_small):
    s = _gm(digits_small, ipc=2, factor=2, distance="mse")
    _balanced(s, digits_small, 8)
    assert s.meta["factor"] == 2 and s.meta["stored_images"] == 20 and s.meta["ipc"] == 2


def test_gradient_matching_lowers_the_matching_loss_from_noise(digits_train):
    """With a fixed network (no inner training), repeated matching steps must reduce the
    gradient distance that DC minimizes."""
    s = _gm(digits_train, ipc=2, init="noise", outer_loops=20, inner_loops=0, augment=False, lr=1.0)
    losses = s.meta["losses"]
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5


def test_one_gm_step_is_sgd_on_the_layerwise_gradient_distance(digits_small):
    """Recompute the first matching step by hand: per class, the gradient of the loss on a real
    batch and on the synthetic images, compared layer by layer, then one SGD step."""
    kw = {"ipc": 2, "seed": 1, "augment": False, "lr": 0.5, "outer_loops": 1}
    start = _gm(digits_small, iterations=0, **kw).x
    one = _gm(digits_small, iterations=1, **kw).x
    g_net, g_batch, g_aug = (generator(1, s) for s in ("net", "batch", "augment"))
    net = build("convnet3", 10, digits_small.in_shape, draw_seed(g_net), **TINY)
    weights = [p for p in net.parameters() if p.dim() > 1]
    x = start.clone().requires_grad_(True)
    loss = torch.zeros(())
    for c, rows in enumerate(class_rows(digits_small)):
        draw_seed(g_aug)
        real = digits_small.x[rows[torch.randperm(len(rows), generator=g_batch)[:32]]]
        ce = torch.nn.functional.cross_entropy
        g_real = torch.autograd.grad(ce(net(real), torch.full((len(real),), c)), weights)
        syn = x[2 * c : 2 * c + 2]
        g_syn = torch.autograd.grad(ce(net(syn), torch.full((2,), c)), weights, create_graph=True)
        for gr, gs in zip(g_real, g_syn, strict=True):
            r, s_ = gr.flatten(1), gs.flatten(1)
            cos = (r * s_).sum(1) / (r.norm(dim=1) * s_.norm(dim=1) + 1e-6)
            loss = loss + (1 - cos).sum()
    loss.backward()
    torch.testing.assert_close(one, start - 0.5 * x.grad)


def test_layer_distance_matches_its_definitions():
    g = torch.randn(4, 3, 3, 3)
    h = torch.randn(4, 3, 3, 3)
    assert float(layer_distance(g, g, "cosine")) == pytest.approx(0.0, abs=1e-5)
    assert float(layer_distance(g, -g, "cosine")) == pytest.approx(8.0, abs=1e-5)
    expected = sum(
        1 - float(torch.dot(g[i].flatten(), h[i].flatten()) / (g[i].norm() * h[i].norm()))
        for i in range(4)
    )
    assert float(layer_distance(g, h, "cosine")) == pytest.approx(expected, rel=1e-5)
    assert float(layer_distance(g, h, "mse")) == pytest.approx(float(((g - h) ** 2).sum()))


def test_bad_distillation_arguments_name_the_allowed_values(digits_small):
    with pytest.raises(ValueError, match="distance must be one of"):
        _gm(digits_small, ipc=1, distance="l1")
    with pytest.raises(ValueError, match="init must be one of"):
        _dm(digits_small, ipc=1, iterations=1, init="zeros")
    with pytest.raises(ValueError, match="unknown model"):
        _dm(digits_small, ipc=1, iterations=1, model="vgg")
    with pytest.raises(TypeError, match="augment must be"):
        _dm(digits_small, ipc=1, iterations=1, augment="dsa")
    with pytest.raises(ValueError, match="factor"):
        _dm(digits_small, ipc=1, iterations=1, factor=0)


# --- caching ---------------------------------------------------------------------------------


def test_each_method_is_cached_in_the_store(digits_small, tmp_path):
    store = Store(tmp_path)
    first = _dm(digits_small, ipc=2, iterations=1, store=store)
    again = _dm(digits_small, ipc=2, iterations=1, store=store)
    assert store.computed == 1
    _assert_same(first, again)
    synth.random_subset(digits_small, 2, 0, store=store)
    synth.random_subset(digits_small, 2, 1, store=store)
    assert store.computed == 3
    names = store.runs("synth-")
    assert len(names) == 3 and any(n.startswith("synth-dm-digits-ipc2-") for n in names)


# --- multi-formation -------------------------------------------------------------------------


def test_tiles_round_trip_exactly_in_idc_order():
    stored = torch.randn(3, 2, 8, 8)
    tiles = split_tiles(stored, 2)
    assert tiles.shape == (12, 2, 4, 4)
    # tile-major: all images' top-left tiles first, then top-right, bottom-left, bottom-right
    torch.testing.assert_close(tiles[0], stored[0, :, :4, :4])
    torch.testing.assert_close(tiles[3 + 1], stored[1, :, :4, 4:])
    torch.testing.assert_close(tiles[6 + 2], stored[2, :, 4:, :4])
    torch.testing.assert_close(tiles[9], stored[0, :, 4:, 4:])
    assert torch.equal(join_tiles(tiles, 2, (8, 8)), stored)


def test_multi_formation_decoding_round_trips_a_known_image():
    """Four constant images survive the 2× down- and upsampling exactly: encode them into one
    stored image, decode it and get them back, in order and with their label."""
    values = torch.tensor([0.25, -1.0, 2.0, 0.5])
    images = values.view(4, 1, 1, 1).expand(4, 1, 8, 8).clone()
    stored = synth.encode(images, 2)
    assert stored.shape == (1, 1, 8, 8)
    assert torch.equal(stored[0, 0, :4, :4], torch.full((4, 4), 0.25))
    assert torch.equal(stored[0, 0, 4:, 4:], torch.full((4, 4), 0.5))
    decoded, labels = synth.decode(stored, torch.tensor([7]), 2)
    torch.testing.assert_close(decoded, images)
    assert labels.tolist() == [7, 7, 7, 7]


def test_decoding_upsamples_each_tile_bilinearly_and_pads_as_idc_does():
    stored = torch.randn(2, 1, 9, 9)
    decoded, _ = synth.decode(stored, None, 2)  # 9 = 2·5 - 1: padded to 10, tiles of 5
    padded = torch.nn.functional.pad(stored, (0, 1, 0, 1), value=0.5)
    tile = padded[1:2, :, 5:, :5]  # image 1, bottom-left tile
    expected = torch.nn.functional.interpolate(tile, size=(9, 9), mode="bilinear")
    torch.testing.assert_close(decoded[2 * 2 + 1 : 2 * 2 + 2], expected)


def test_decode_by_class_keeps_each_class_together():
    x = torch.randn(4, 1, 8, 8)
    y = torch.tensor([1, 0, 1, 0])
    dx, dy = decode_by_class(x, y, 2)
    assert dy.tolist() == [0] * 8 + [1] * 8
    torch.testing.assert_close(dx[:8], synth.decode(x[[1, 3]], None, 2)[0])


# --- published distilled sets ------------------------------------------------------------------

_UNPICKLED: list[str] = []


def _record_unpickling(tag: str) -> str:
    _UNPICKLED.append(tag)
    return tag


class _Payload:
    """An object whose unpickling would run code (it calls `_record_unpickling`)."""

    def __reduce__(self):
        return (_record_unpickling, ("ran",))


def _stored_set(n_per_class: int = 2, classes: int = 10, size: int = 8) -> tuple:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n_per_class * classes, 1, size, size, generator=g)
    y = torch.arange(classes).repeat_interleave(n_per_class)
    return x, y


def test_idc_dc_and_mtt_files_are_read(digits_train, tmp_path):
    x, y = _stored_set()
    torch.save([x, y], tmp_path / "data.pt")  # IDC
    other = torch.zeros_like(x)
    torch.save(
        {"data": [[other, y], [x, y]], "accs_all_exps": {"ConvNet": [0.9]}}, tmp_path / "res.pt"
    )
    mtt = tmp_path / "mtt"
    mtt.mkdir()
    torch.save(x, mtt / "images_best.pt")
    torch.save(y, mtt / "labels_best.pt")
    loaded = [
        synth.load_distilled(tmp_path / "data.pt", target=digits_train),
        synth.load_distilled(tmp_path / "res.pt", target=digits_train, experiment=1),
        synth.load_distilled(mtt, target=digits_train),
        synth.load_distilled(mtt / "images_best.pt", target=digits_train),
    ]
    for s, fmt in zip(loaded, ("idc", "dc", "mtt", "mtt"), strict=True):
        assert torch.equal(s.x, x) and torch.equal(s.y, y) and s.meta["format"] == fmt
        assert s.classes == digits_train.classes and s.meta["mean"] == digits_train.meta["mean"]
        assert s.meta["ipc"] == 2
    assert torch.equal(synth.load_distilled(tmp_path / "res.pt", experiment=0).x, other)


def test_multi_formation_files_are_decoded(digits_train, tmp_path):
    x, y = _stored_set()
    torch.save([x, y], tmp_path / "data.pt")
    s = synth.load_distilled(tmp_path / "data.pt", factor=2, target=digits_train)
    expected_x, expected_y = decode_by_class(x, y, 2)
    assert torch.equal(s.x, expected_x) and torch.equal(s.y, expected_y)
    assert len(s) == 80 and s.meta["stored_images"] == 20 and s.meta["factor"] == 2


def test_a_pickle_payload_is_refused_without_running_it(tmp_path):
    x, y = _stored_set()
    torch.save({"data": [[x, y]], "extra": _Payload()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="refusing to load"):
        synth.load_distilled(tmp_path / "evil.pt")
    assert _UNPICKLED == []


def test_mismatched_classes_shapes_and_labels_are_refused(digits_train, tmp_path):
    x, y = _stored_set(classes=5)
    torch.save([x, y], tmp_path / "five.pt")
    with pytest.raises(ValueError, match="do not match the target"):
        synth.load_distilled(tmp_path / "five.pt", target=digits_train)
    x, y = _stored_set(classes=12)
    torch.save([x, y], tmp_path / "twelve.pt")
    with pytest.raises(ValueError, match=r"labels in \[0, 11\] but the target has 10 classes"):
        synth.load_distilled(tmp_path / "twelve.pt", target=digits_train)
    x, y = _stored_set(size=28)
    torch.save([x, y], tmp_path / "mnist.pt")
    with pytest.raises(ValueError, match=r"shape \(1, 28, 28\) but 'digits' has \(1, 8, 8\)"):
        synth.load_distilled(tmp_path / "mnist.pt", target=digits_train)
    torch.save([x[:, 0], y], tmp_path / "flat.pt")
    with pytest.raises(ValueError, match="N×C×H×W"):
        synth.load_distilled(tmp_path / "flat.pt")
    torch.save([x, torch.nn.functional.one_hot(y).float()], tmp_path / "soft.pt")
    with pytest.raises(ValueError, match="soft labels"):
        synth.load_distilled(tmp_path / "soft.pt")
    torch.save([x, y[:-1]], tmp_path / "short.pt")
    with pytest.raises(ValueError, match="20 images but 19 labels"):
        synth.load_distilled(tmp_path / "short.pt")


def test_raw_pixels_are_put_into_the_targets_normalization(digits_train, tmp_path):
    raw = torch.rand(20, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.arange(10).repeat_interleave(2)
    torch.save([raw, y], tmp_path / "raw.pt")
    s = synth.load_distilled(tmp_path / "raw.pt", target=digits_train, file_stats="raw")
    meta = digits_train.meta
    torch.testing.assert_close(s.x, normalize(raw, meta["mean"], meta["std"]))


def test_a_saved_synthetic_set_loads_back_through_both_paths(digits_small, tmp_path):
    s = synth.random_subset(digits_small, 2, 0)
    path = s.save(tmp_path / "set.pt")
    _assert_same(D.Dataset.load(path), s)
    again = synth.load_distilled(path, target=digits_small)
    assert torch.equal(again.x, s.x) and again.meta["format"] == "lmc_toolkit"


# --- the command line --------------------------------------------------------------------------


def test_distill_command_saves_the_set_prints_where_and_draws_it(tmp_path, capsys):
    from lmc_toolkit.cli import main

    args = ["distill", "--data", "digits", "--method", "dm", "--ipc", "2", "--iterations", "2"]
    args += ["--width", "8", "--real-batch", "16", "--store", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    saved = next(line for line in out.splitlines() if line.startswith("saved to "))
    path = saved.removeprefix("saved to ")
    s = D.Dataset.load(path)
    assert len(s) == 20 and s.meta["method"] == "dm" and s.meta["iterations"] == 2
    figure = next(line for line in out.splitlines() if line.startswith("figure: "))
    assert figure.removeprefix("figure: ").endswith(".html")
    assert (tmp_path / "synthetic" / "plotly.min.js").exists()
    assert main(args) == 0
    assert "loaded from the store" in capsys.readouterr().out
    assert main(["distill", "--data", "digits", "--method", "random", "--ipc", "999"]) == 2
    assert "use ipc ≤" in capsys.readouterr().err
