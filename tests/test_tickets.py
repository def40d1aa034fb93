"""Ticket evaluation: training θ0 ⊙ m per data seed, the table, the store keys."""

from __future__ import annotations

import pytest
from helpers import tensors_equal

from lmc_toolkit import models
from lmc_toolkit.pruning import (
    ImpConfig,
    Mask,
    evaluate_tickets,
    imp,
    magnitude,
    random,
    train_ticket,
)
from lmc_toolkit.pruning import tickets as tickets_module
from lmc_toolkit.pruning.tickets import TicketRun, ticket_key
from lmc_toolkit.store import Store
from lmc_toolkit.training import TrainConfig, TrainResult, train
from lmc_toolkit.training.params import state_of

CONFIG = TrainConfig(steps=10, batch_size=32, lr=0.05)


def mlp(seed: int = 0):
    return models.build("mlp", 10, (1, 8, 8), init_seed=seed, hidden=(24, 16))


@pytest.fixture
def count_training(monkeypatch):
    calls = []

    def counting(*args, **kwargs):
        calls.append(kwargs.get("mask"))
        return train(*args, **kwargs)

    monkeypatch.setattr(tickets_module, "train", counting)
    return calls


def test_evaluate_tickets_trains_each_mask_for_each_seed(
    digits_small, digits_test, tmp_path, count_training
):
    model = mlp()
    store = Store(tmp_path)
    run = imp(model, digits_small, ImpConfig(rounds=2, train=CONFIG), progress=False)
    masks = {
        "dense": None,
        "imp": run,  # all its rounds (round 0 keeps everything)
        "random": [random(model, s, seed=0) for s in run.sparsities[1:]],
    }
    count_training.clear()  # count the tickets' trainings only, not IMP's
    table = evaluate_tickets(
        model,
        masks,
        digits_small,
        digits_test,
        CONFIG,
        data_seeds=(0, 1),
        store=store,
        progress=False,
    )
    assert len(table.entries) == (1 + 3 + 2) * 2 and len(count_training) == 10
    assert table.methods == ("dense", "imp", "random")
    summary = {(s.method, round(s.sparsity, 3)): s for s in table.summary()}
    assert set(summary) == {
        ("dense", 0.0),
        ("imp", 0.0),
        ("imp", round(run.sparsities[1], 3)),
        ("imp", round(run.sparsities[2], 3)),
        ("random", round(run.sparsities[1], 3)),
        ("random", round(run.sparsities[2], 3)),
    }
    for s in summary.values():
        accs = [
            e.accuracy
            for e in table.entries
            if e.method == s.method and round(e.sparsity, 3) == round(s.sparsity, 3)
        ]
        mean = sum(accs) / len(accs)
        assert s.n == 2 and s.mean == pytest.approx(mean)
        # the sample standard deviation (ddof 1) over the two seeds
        assert s.std == pytest.approx((sum((a - mean) ** 2 for a in accs) / 1) ** 0.5)
    # dense and the unpruned IMP round are the same network: one stored ticket per seed
    assert table.entry("dense", 0.0, 0).key == table.entry("imp", 0.0, 0).key
    assert table.entry("imp", 0.0, 1).cached and table.entry("imp", 0.0, 1).key.mask == ""
    assert "dense" in table.format() and "±" in table.format()
    # a second evaluation loads every ticket from the store
    again = evaluate_tickets(
        model,
        masks,
        digits_small,
        digits_test,
        CONFIG,
        data_seeds=(0, 1),
        store=store,
        progress=False,
    )
    assert len(count_training) == 10 and all(e.cached for e in again.entries)
    assert [e.accuracy for e in again.entries] == [e.accuracy for e in table.entries]


def test_a_trained_ticket_comes_back_by_method_sparsity_and_seed(
    digits_small, digits_test, tmp_path
):
    model = mlp()
    store = Store(tmp_path)
    mask = magnitude(model, 0.5)
    table = evaluate_tickets(
        model,
        {"m": [mask]},
        digits_small,
        digits_test,
        CONFIG,
        data_seeds=(3, 4),
        store=store,
        progress=False,
    )
    direct = train(model, digits_small, CONFIG, data_seed=4, mask=mask, progress=False)
    back = table.trained("m", 0.5, 4, store)
    assert isinstance(back, TrainResult) and tensors_equal(back.state, direct.state)
    assert tensors_equal(state_of(table.model("m", 0.5, 4, store)), direct.state)
    key = ticket_key(model, mask, digits_small, CONFIG, data_seed=4)
    assert key == table.entry("m", 0.5, 4).key and isinstance(key, TicketRun)
    assert key.mask == mask.digest() and key.data == "digits" and key.model == "mlp"
    run = store.run(key)
    assert (
        run.path.name.startswith("ticket-digits-mlp-")
        and run.path.name == table.entry("m", 0.5, 4).run
    )
    assert Mask.from_dict(run.load("mask")) == mask
    assert tensors_equal(TrainResult.from_dict(run.load("result")).state, direct.state)
    loaded = train_ticket(
        model, mask, digits_small, CONFIG, data_seed=4, store=store, progress=False
    )
    assert tensors_equal(loaded.state, direct.state)
    with pytest.raises(ValueError, match="no ticket at sparsity 0.9"):
        table.entry("m", 0.9, 4)
    with pytest.raises(ValueError, match="no ticket for method 'x'"):
        table.entry("x", 0.5, 4)
    assert table.mask("m", 0.5) == mask


def test_keys_are_stable_and_tell_tickets_apart(digits_small):
    model = mlp()
    mask = magnitude(model, 0.5)
    key = ticket_key(model, mask, digits_small, CONFIG, data_seed=1)
    assert key == ticket_key(mlp(), Mask(dict(mask)), digits_small, CONFIG, data_seed=1)
    others = [
        ticket_key(model, None, digits_small, CONFIG, data_seed=1),
        ticket_key(model, magnitude(model, 0.6), digits_small, CONFIG, data_seed=1),
        ticket_key(model, mask, digits_small, CONFIG, data_seed=2),
        ticket_key(mlp(1), mask, digits_small, CONFIG, data_seed=1),
        ticket_key(model, mask, digits_small[:100], CONFIG, data_seed=1),
        ticket_key(model, mask, digits_small, TrainConfig(steps=11, batch_size=32), data_seed=1),
    ]
    assert all(o != key for o in others) and len(set(others)) == len(others)
    assert ticket_key(model, mask, digits_small, CONFIG, 1, init_seed=1) == others[3]


def test_without_a_store_tickets_are_trained_and_not_saved(digits_small, digits_test):
    model = mlp()
    table = evaluate_tickets(
        model, {"dense": None}, digits_small, digits_test, CONFIG, data_seeds=(0,), progress=False
    )
    (entry,) = table.entries
    assert entry.run is None and not entry.cached and 0 <= entry.accuracy <= 1
    assert table.to_dict()["summary"][0]["n"] == 1


def test_bad_input_is_refused_before_training(digits_small, digits_test, count_training):
    model = mlp()
    wide = models.build("mlp", 10, (1, 8, 8), hidden=(32, 16))
    with pytest.raises(ValueError, match=r"'1\.weight' has shape \(32, 64\)"):
        evaluate_tickets(
            model, {"a": [None, Mask.ones(wide)]}, digits_small, digits_test, CONFIG, progress=False
        )
    with pytest.raises(ValueError, match="data_seeds"):
        evaluate_tickets(
            model, {"a": None}, digits_small, digits_test, CONFIG, data_seeds=(), progress=False
        )
    with pytest.raises(ValueError, match="at least one method"):
        evaluate_tickets(model, {}, digits_small, digits_test, CONFIG, progress=False)
    with pytest.raises(TypeError, match="masks\\['a'\\]"):
        evaluate_tickets(model, {"a": 3}, digits_small, digits_test, CONFIG, progress=False)
    empty = digits_test[:0]
    with pytest.raises(ValueError, match="test_data.*empty"):
        evaluate_tickets(model, {"a": None}, digits_small, empty, CONFIG, progress=False)
    assert count_training == []
