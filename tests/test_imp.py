"""IMP with rewinding, distilled pruning, resuming through the store, cost accounting."""

from __future__ import annotations

import dataclasses
import importlib

import pytest
import torch
from helpers import tensors_equal

from lmc_toolkit import models
from lmc_toolkit.data import Dataset
from lmc_toolkit.pruning import ImpConfig, Mask, combined, distilled_pruning, imp
from lmc_toolkit.pruning.imp_config import ImpRun, parse_rewind, samples_seen
from lmc_toolkit.store import Store
from lmc_toolkit.training import TrainConfig, train
from lmc_toolkit.training.params import state_of

# the module that trains each round (`start_point`, then `train`)
level_module = importlib.import_module("lmc_toolkit.pruning.imp_level")

INNER = TrainConfig(steps=12, batch_size=32, lr=0.05)


def mlp(seed: int = 0):
    return models.build("mlp", 10, (1, 8, 8), init_seed=seed, hidden=(24, 16))


class Spy:
    """Wraps the rounds' `train` and records what each round starts from."""

    def __init__(self, monkeypatch, fail_on: int | None = None):
        self.calls: list[dict] = []
        self.fail_on = fail_on
        monkeypatch.setattr(level_module, "train", self)
        # rounds trained from θ0 go through train_ticket (stored as tickets)
        monkeypatch.setattr(importlib.import_module("lmc_toolkit.pruning.tickets"), "train", self)

    def __call__(self, model, data, config, data_seed, mask=None, resume=None, **kw):
        if self.fail_on is not None and len(self.calls) == self.fail_on:
            raise KeyboardInterrupt("interrupted")
        start = resume.state if resume is not None else state_of(model)
        self.calls.append(
            {"start": start, "mask": mask, "config": config, "resume": resume, "data": data}
        )
        return train(model, data, config, data_seed, mask=mask, resume=resume, **kw)


def test_sparsity_after_r_rounds_is_1_minus_0_8_to_the_r(digits_small):
    model = models.build("convnet3", 10, (1, 8, 8), width=8)
    result = imp(model, digits_small, ImpConfig(rounds=5, train=INNER), progress=False)
    assert [r.round for r in result.rounds] == list(range(6))
    layers = len(result.rounds[0].mask)
    for r in result.rounds:
        exact = (1 - 0.8**r.round) * r.mask.total
        assert abs(r.mask.pruned - exact) <= layers, r.round  # within one weight per layer
    layerwise = imp(
        mlp(), digits_small, ImpConfig(rounds=4, scope="layerwise", train=INNER), progress=False
    )
    for r in layerwise.rounds:
        for row in r.mask.per_layer():  # per layer, the rounding drift stays below 2.5 weights
            assert abs(row.pruned - (1 - 0.8**r.round) * row.total) < 2.5


def test_masks_are_nested_and_pruned_weights_stay_exactly_zero(digits_small):
    for rewind in ("init", 3, "lr", "finetune"):
        result = imp(
            mlp(), digits_small, ImpConfig(rounds=3, rewind=rewind, train=INNER), progress=False
        )
        for prev, cur in zip(result.rounds, result.rounds[1:], strict=False):
            assert (cur.mask & prev.mask) == cur.mask and cur.mask.kept < prev.mask.kept
        for r in result.rounds:
            for name, m in r.mask.items():
                assert (r.state[name][~m] == 0).all(), (rewind, r.round, name)
                assert (r.state[name][m] != 0).any()


def test_rewind_init_restores_theta0_exactly_on_the_survivors(digits_small, monkeypatch):
    spy = Spy(monkeypatch)
    model = mlp()
    theta0 = state_of(model)
    result = imp(model, digits_small, ImpConfig(rounds=3, train=INNER), progress=False)
    assert len(spy.calls) == 4 and tensors_equal(state_of(model), theta0)  # not mutated
    for call, r in zip(spy.calls, result.rounds, strict=True):
        assert call["mask"] == r.mask and call["resume"] is None and call["config"] == INNER
        assert tensors_equal(call["start"], theta0)  # train applies the mask: θ0 ⊙ m
        trained_from = train(model, digits_small, INNER, 0, mask=r.mask, progress=False)
        assert tensors_equal(trained_from.state, r.state)


def test_rewind_to_step_k_restores_theta_k(digits_small, monkeypatch):
    k = 5
    spy = Spy(monkeypatch)
    model = mlp()
    result = imp(model, digits_small, ImpConfig(rounds=2, rewind=k, train=INNER), progress=False)
    theta_k = train(model, digits_small, dataclasses.replace(INNER, steps=k), progress=False).state
    assert tensors_equal(result.rewind_state, theta_k)
    assert spy.calls[0]["resume"] is None
    for call, r in zip(spy.calls[1:], result.rounds[1:], strict=True):
        assert call["resume"].step == k and call["resume"].optimizer["state"] == {}
        for name, value in theta_k.items():
            expected = value * r.mask[name] if name in r.mask else value
            assert torch.equal(call["resume"].state[name], expected), name
        assert r.steps == INNER.steps - k
        assert r.samples == samples_seen(len(digits_small), 32, k, INNER.steps)


def test_lr_rewinding_and_finetuning_start_from_the_last_weights(digits_small, monkeypatch):
    config = dataclasses.replace(INNER, milestones=(0.5,), gamma=0.1)
    for rewind in ("lr", "finetune"):
        spy = Spy(monkeypatch)
        result = imp(
            mlp(), digits_small, ImpConfig(rounds=2, rewind=rewind, train=config), progress=False
        )
        for call, prev in zip(spy.calls[1:], result.rounds, strict=False):
            for name, value in prev.state.items():
                expected = value * call["mask"][name] if name in call["mask"] else value
                assert torch.equal(call["start"][name], expected), name
        later = spy.calls[1]["config"]
        if rewind == "lr":
            assert later == config
        else:  # the schedule's final rate, flat, for the same number of steps
            assert later.lr == pytest.approx(0.005) and later.milestones == ()
            assert later.total_steps(10) == config.total_steps(10)


def test_the_interrupted_then_resumed_run_equals_the_uninterrupted_one(
    digits_small, digits_test, tmp_path, monkeypatch
):
    config = ImpConfig(rounds=3, rewind=4, train=dataclasses.replace(INNER, augment="crop"))
    kwargs = dict(eval_data=digits_test, data_seed=2, progress=False)
    full = imp(mlp(), digits_small, config, store=Store(tmp_path / "a"), **kwargs)
    store = Store(tmp_path / "b")
    Spy(monkeypatch, fail_on=2)
    with pytest.raises(KeyboardInterrupt):
        imp(mlp(), digits_small, config, store=store, **kwargs)
    (run,) = store.runs("imp-")
    assert sorted(p.name for p in (store.root / run).glob("round-*.pt")) == [
        "round-000.pt",
        "round-001.pt",
    ]
    spy = Spy(monkeypatch)
    resumed = imp(mlp(), digits_small, config, store=store, **kwargs)
    assert len(spy.calls) == 2  # only rounds 2 and 3 were trained
    assert tensors_equal(resumed.rewind_state, full.rewind_state)
    for a, b in zip(full.rounds, resumed.rounds, strict=True):
        assert a.mask == b.mask and tensors_equal(a.state, b.state)
        assert a.eval == b.eval and a.samples == b.samples and a.mask_samples == b.mask_samples
    # a longer run extends the stored one; a finished run is only loaded
    spy = Spy(monkeypatch)
    longer = imp(mlp(), digits_small, dataclasses.replace(config, rounds=4), store=store, **kwargs)
    assert len(spy.calls) == 1 and longer.run == resumed.run and len(longer.rounds) == 5
    again = imp(mlp(), digits_small, config, store=store, **kwargs)
    assert len(spy.calls) == 1 and again.accuracies == resumed.accuracies


def test_a_corrupt_stored_round_is_trained_again_to_the_same_values(
    digits_small, tmp_path, monkeypatch
):
    config = ImpConfig(rounds=2, rewind=4, train=INNER)
    store = Store(tmp_path)
    first = imp(mlp(), digits_small, config, store=store, progress=False)
    (run,) = store.runs("imp-")
    path = store.root / run / "round-001.pt"
    path.write_bytes(path.read_bytes()[:-100])
    spy = Spy(monkeypatch)
    with pytest.warns(RuntimeWarning, match=r"round-001\.pt is corrupted.*training the round"):
        again = imp(mlp(), digits_small, config, store=store, progress=False)
    assert len(spy.calls) == 1  # round 1 only; rounds 0 and 2 were loaded
    for a, b in zip(first.rounds, again.rounds, strict=True):
        assert a.mask == b.mask and tensors_equal(a.state, b.state)


def test_the_store_key_names_data_model_config_and_seeds(digits_small, tmp_path):
    store = Store(tmp_path)
    a = imp(mlp(), digits_small, ImpConfig(rounds=1, train=INNER), store=store, progress=False)
    assert a.run.startswith("imp-digits-mlp-")
    b = imp(mlp(1), digits_small, ImpConfig(rounds=1, train=INNER), store=store, progress=False)
    c = imp(
        mlp(),
        digits_small,
        ImpConfig(rounds=1, train=INNER),
        data_seed=1,
        store=store,
        progress=False,
    )
    d = imp(
        mlp(), digits_small[:200], ImpConfig(rounds=1, train=INNER), store=store, progress=False
    )
    e = imp(
        mlp(),
        digits_small,
        ImpConfig(rounds=1, train=INNER),
        init_seed=1,
        store=store,
        progress=False,
    )
    assert len({a.run, b.run, c.run, d.run}) == 4 and e.run == b.run
    record = (tmp_path / a.run / "config.json").read_text()
    assert '"prune_data": "digits"' in record and '"rounds": 10' in record  # rounds reset
    assert store.run(ImpRun()).path.parent == tmp_path


def test_distilled_pruning_trains_on_the_synthetic_set_and_counts_its_cost(
    digits_small, digits_test
):
    synthetic = digits_small[:40]
    inner = TrainConfig(epochs=5, batch_size=16, lr=0.05)
    result = distilled_pruning(
        mlp(),
        digits_small,
        synthetic,
        ImpConfig(rounds=3, train=inner),
        eval_data=digits_test,
        progress=False,
    )
    assert result.method == "distilled" and result.prune_size == 40 and result.train_size == 300
    assert all(r.samples == 5 * 40 and r.steps == 15 for r in result.rounds)
    assert [r.mask_samples for r in result.rounds] == [0, 200, 400, 600]
    assert all(r.accuracy is not None for r in result.rounds)
    seconds = [r.mask_seconds for r in result.rounds]
    assert seconds == sorted(seconds) and seconds[0] == 0
    text = result.format()
    assert "mask cost" in text and text.count("\n") == 4


def test_combined_hands_the_distilled_mask_to_real_data_imp(digits_small):
    synthetic = dataclasses.replace(digits_small[:40], name="synthetic")
    result = combined(
        mlp(),
        digits_small,
        synthetic,
        ImpConfig(rounds=4, train=INNER),
        distilled_rounds=2,
        synthetic_train=TrainConfig(epochs=3, batch_size=16, lr=0.05),
        progress=False,
    )
    assert [r.round for r in result.rounds] == [0, 1, 2, 3, 4]
    assert [r.samples for r in result.rounds] == [120, 120, 364, 364, 364]
    assert [r.data for r in result.rounds] == ["synthetic"] * 2 + ["digits"] * 3
    assert result.rounds[2].mask_samples == 240
    assert result.rounds[2].sparsity == pytest.approx(
        1 - 0.8**2, abs=2 / result.rounds[0].mask.total
    )
    assert result.method == "combined"
    distilled = distilled_pruning(
        mlp(),
        digits_small,
        synthetic,
        ImpConfig(rounds=2, train=TrainConfig(epochs=3, batch_size=16, lr=0.05)),
        progress=False,
    )
    assert result.rounds[2].mask == distilled.rounds[2].mask


def test_samples_seen_counts_short_last_batches():
    assert samples_seen(10, 4, 0, 3) == 10 and samples_seen(10, 4, 0, 4) == 14
    assert samples_seen(10, 4, 2, 6) == 2 + 4 + 4 + 2
    assert samples_seen(300, 32, 0, 12) == 300 + 2 * 32


def test_a_start_mask_is_respected(digits_small):
    model = mlp()
    start = Mask.ones(model, last=False)
    result = imp(model, digits_small, ImpConfig(rounds=1, train=INNER), mask=start, progress=False)
    assert result.rounds[0].mask == start and "4.weight" not in result.rounds[1].mask
    default = imp(
        model, digits_small, ImpConfig(rounds=1, train=INNER, prune_last=False), progress=False
    )
    assert default.rounds[1].mask == result.rounds[1].mask


def test_bad_input_is_refused_before_any_training(digits_small, monkeypatch):
    spy = Spy(monkeypatch)
    with pytest.raises(ValueError, match="rewind step 12 lies beyond training.*k must be < 12"):
        imp(mlp(), digits_small, ImpConfig(rounds=2, rewind=12, train=INNER), progress=False)
    empty = Dataset(digits_small.x[:0], digits_small.y[:0], digits_small.classes, "empty")
    with pytest.raises(ValueError, match="prune_data.*empty"):
        imp(mlp(), digits_small, ImpConfig(rounds=1, train=INNER), prune_data=empty, progress=False)
    with pytest.raises(ValueError, match=r"'1\.weight' has shape \(32, 64\).*\(24, 64\)"):
        wide = models.build("mlp", 10, (1, 8, 8), hidden=(32, 16))
        imp(
            mlp(),
            digits_small,
            ImpConfig(rounds=1, train=INNER),
            mask=Mask.ones(wide),
            progress=False,
        )
    wrong = Dataset(
        torch.zeros(4, 1, 28, 28), torch.zeros(4, dtype=torch.long), digits_small.classes, "big"
    )
    with pytest.raises(ValueError, match="shape"):
        imp(mlp(), digits_small, ImpConfig(rounds=1, train=INNER), prune_data=wrong, progress=False)
    with pytest.raises(ValueError, match="distilled_rounds"):
        combined(
            mlp(), digits_small, digits_small, ImpConfig(rounds=2, train=INNER), 3, progress=False
        )
    assert spy.calls == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": 0.0}, "strictly between 0 and 1"),
        ({"rate": 1.0}, "strictly between 0 and 1"),
        ({"rounds": -1}, "rounds must be an int"),
        ({"scope": "local"}, "scope must be one of"),
        ({"rewind": "start"}, "rewind must be"),
        ({"rewind": -2}, "rewind must be"),
        ({"rewind": True}, "rewind must be"),
    ],
)
def test_bad_configs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ImpConfig(**kwargs)


def test_parse_rewind():
    assert parse_rewind("init") == "init" and parse_rewind("lr") == "lr" and parse_rewind("7") == 7
    with pytest.raises(ValueError, match="rewind must be"):
        parse_rewind("epoch1")


def test_the_imp_command_prints_a_per_round_table(tmp_path, capsys, digits_small):
    from lmc_toolkit.cli import main

    common = ["--data", "digits", "--model", "mlp", "--option", "hidden=16,16", "--steps", "6"]
    common += ["--batch-size", "32", "--store", str(tmp_path / "store"), "--no-progress"]
    assert main(["imp", "--rounds", "2", "--rewind", "2", *common]) == 0
    out = capsys.readouterr().out
    assert "rewind 2" in out and "mask cost (samples)" in out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [r[0] for r in rows] == ["0", "1", "2"] and rows[2][2] == "0.3597"
    synthetic = tmp_path / "tiny.pt"
    dataclasses.replace(digits_small[:30], name="tiny").save(synthetic)
    assert main(["imp", "--rounds", "1", "--prune-data", str(synthetic), *common]) == 0
    assert "inner training on tiny (30 images)" in capsys.readouterr().out
    assert main(["tickets", "--rounds", "1", "--data-seeds", "0", "1", *common]) == 0
    out = capsys.readouterr().out
    assert "random" in out and "±" in out and out.count("dense") == 1
    assert main(["imp", "--rewind", "epoch1", *common]) == 2
    assert "rewind must be init, lr, finetune or a step number" in capsys.readouterr().err
    assert main(["imp", "--prune-data", str(tmp_path / "none.pt"), *common]) == 2


def test_rounds_trained_from_theta0_are_stored_as_tickets(digits_small, tmp_path):
    from lmc_toolkit.pruning import train_ticket

    store = Store(tmp_path)
    net0 = mlp()
    result = imp(net0, digits_small, ImpConfig(rounds=2, train=INNER), store=store, progress=False)
    computed = store.computed
    for rnd in result.rounds:
        # round 0 keeps every weight: it is the dense ticket (mask=None)
        mask = None if rnd.round == 0 else rnd.mask
        ticket = train_ticket(net0, mask, digits_small, INNER, 0, store=store, progress=False)
        assert tensors_equal(ticket.state, rnd.state)
    assert store.computed == computed  # every ticket was loaded, none retrained
    # and the stored ticket is the independent re-computation, bit for bit
    fresh = train(net0, digits_small, INNER, 0, mask=result.rounds[2].mask, progress=False)
    assert tensors_equal(fresh.state, result.rounds[2].state)
