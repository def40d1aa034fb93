"""Training: determinism, SGD noise, masks, checkpoints and resuming, errors, evaluation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import tensors_equal

from lmc_toolkit import models
from lmc_toolkit.training import TrainConfig, TrainResult, evaluate, train
from lmc_toolkit.training.loop import epoch_generator
from lmc_toolkit.training.params import params_of, state_of

FAST = TrainConfig(epochs=2, batch_size=32, lr=0.05, augment="crop")


def small_convnet(seed: int = 0):
    return models.build("convnet3", 10, (1, 8, 8), init_seed=seed, width=8)


def test_same_seeds_give_bit_identical_weights(digits_small):
    a = train(small_convnet(), digits_small, FAST, data_seed=3, progress=False)
    b = train(small_convnet(), digits_small, FAST, data_seed=3, progress=False)
    assert tensors_equal(a.state, b.state)
    assert a.history == b.history


def test_another_data_seed_changes_order_augmentation_and_weights(digits_small):
    perm = [torch.randperm(10, generator=epoch_generator(s, 0)) for s in (0, 1)]
    assert not torch.equal(*perm)
    assert not torch.equal(
        torch.randperm(10, generator=epoch_generator(0, 0)),
        torch.randperm(10, generator=epoch_generator(0, 1)),
    )
    a = train(small_convnet(), digits_small, FAST, data_seed=0, progress=False)
    b = train(small_convnet(), digits_small, FAST, data_seed=1, progress=False)
    assert not tensors_equal(a.state, b.state)


def test_the_callers_model_is_not_changed(digits_small):
    model = small_convnet()
    before = state_of(model)
    model.eval()
    train(model, digits_small, FAST, progress=False)
    assert tensors_equal(before, state_of(model)) and not model.training


def test_masked_weights_stay_exactly_zero(digits_small):
    model = small_convnet()
    g = torch.Generator().manual_seed(0)
    mask = {
        name: torch.rand(p.shape, generator=g) < 0.5
        for name, p in model.named_parameters()
        if name.endswith("weight") and p.dim() > 1
    }
    for optimizer in ("sgd", "adam"):
        config = TrainConfig(
            epochs=2, batch_size=32, lr=0.01, optimizer=optimizer, weight_decay=1e-3
        )
        result = train(model, digits_small, config, mask=mask, progress=False)
        init = params_of(model)
        for name, m in mask.items():
            w = result.state[name]
            assert (w[~m] == 0).all(), name
            assert not torch.equal(w[m], init[name][m]), f"{name} did not train"


def test_masked_momentum_stays_zero(digits_small):
    model = small_convnet()
    name = "0.weight"
    mask = {name: torch.zeros_like(model.get_parameter(name), dtype=torch.bool)}
    mask[name][:4] = True
    result = train(model, digits_small, FAST, mask=mask, checkpoint_steps=[10], progress=False)
    opt = result.checkpoints[10].optimizer
    index = list(dict(model.named_parameters())).index(name)
    momentum = opt["state"][index]["momentum_buffer"]
    assert (momentum[~mask[name]] == 0).all() and (momentum[mask[name]] != 0).any()


def test_checkpoint_at_k_equals_a_run_stopped_at_k(digits_small):
    k = 13  # mid-epoch: 300 images in batches of 32 is 10 steps an epoch
    long = train(small_convnet(), digits_small, FAST, checkpoint_steps=[0, k], progress=False)
    short = train(
        small_convnet(), digits_small, TrainConfig(**{**FAST.__dict__, "steps": k}), progress=False
    )
    assert tensors_equal(long.checkpoints[k].state, short.state)
    assert tensors_equal(long.checkpoints[0].state, state_of(small_convnet()))


def test_resuming_from_a_checkpoint_reproduces_the_uninterrupted_run(digits_small, digits_test):
    config = TrainConfig(
        epochs=3, batch_size=32, lr=0.05, milestones=(1.5,), warmup_steps=4, augment="crop"
    )
    full = train(
        small_convnet(),
        digits_small,
        config,
        data_seed=2,
        checkpoint_steps=[17],
        eval_data=digits_test,
        progress=False,
    )
    resumed = train(
        small_convnet(),
        digits_small,
        config,
        data_seed=2,
        resume=full.checkpoints[17],
        eval_data=digits_test,
        progress=False,
    )
    assert tensors_equal(full.state, resumed.state)
    assert full.history == resumed.history
    assert resumed.steps == full.steps == 30


def test_schedule_warmup_and_milestones():
    config = TrainConfig(lr=0.1, milestones=(2, 3), gamma=0.5, warmup_steps=4)
    lrs = [config.lr_at(s, steps_per_epoch=10) for s in range(40)]
    assert lrs[0] == pytest.approx(0.025) and lrs[3] == pytest.approx(0.1)
    assert lrs[19] == pytest.approx(0.1) and lrs[20] == pytest.approx(0.05)
    assert lrs[30] == pytest.approx(0.025)
    assert (
        TrainConfig(epochs=2.5).total_steps(10) == 25 and TrainConfig(steps=7).total_steps(10) == 7
    )


def test_history_records_each_epoch(digits_small, digits_test):
    result = train(small_convnet(), digits_small, FAST, eval_data=digits_test, progress=False)
    assert [h.epoch for h in result.history] == [0, 1]
    assert [h.step for h in result.history] == [10, 20]
    assert all(0 <= h.accuracy <= 1 and h.eval_accuracy is not None for h in result.history)
    assert result.final.accuracy == result.history[-1].eval_accuracy


def test_a_small_model_learns_digits(digits_train, digits_test):
    model = models.build("mlp", 10, (1, 8, 8), hidden=(64,))
    config = TrainConfig(epochs=5, batch_size=32, lr=0.05)
    result = train(model, digits_train, config, eval_data=digits_test, progress=False)
    assert result.final.accuracy > 0.9
    assert result.history[-1].loss < result.history[0].loss


def test_nan_loss_names_the_step(digits_small):
    with pytest.raises(FloatingPointError, match=r"NaN or inf at step \d+"):
        train(
            small_convnet(),
            digits_small,
            TrainConfig(epochs=1, lr=1e30, batch_size=32),
            progress=False,
        )
    x = digits_small.x.clone()
    x[40] = float("nan")
    poisoned = type(digits_small)(x, digits_small.y, digits_small.classes, "poisoned")
    order = torch.randperm(len(poisoned), generator=epoch_generator(0, 0))
    step = int((order == 40).nonzero()) // 32  # the batch that holds image 40
    with pytest.raises(FloatingPointError, match=f"at step {step};"):
        train(small_convnet(), poisoned, TrainConfig(epochs=1, batch_size=32), progress=False)


def test_result_round_trips_through_a_dict(digits_small):
    result = train(small_convnet(), digits_small, FAST, checkpoint_steps=[5], progress=False)
    back = TrainResult.from_dict(result.to_dict())
    assert tensors_equal(back.state, result.state) and back.history == result.history
    assert back.config == result.config and back.spec == result.spec
    assert tensors_equal(back.checkpoints[5].state, result.checkpoints[5].state)
    assert tensors_equal(state_of(back.model()), result.state)


def test_evaluate_matches_a_direct_computation(digits_test):
    model = small_convnet()
    model.eval()
    metrics = evaluate(model, digits_test, batch_size=50)
    with torch.no_grad():
        out = model(digits_test.x)
    assert metrics.loss == pytest.approx(F.cross_entropy(out, digits_test.y).item(), rel=1e-5)
    assert metrics.accuracy == pytest.approx((out.argmax(1) == digits_test.y).float().mean().item())
    assert metrics.error == pytest.approx(1 - metrics.accuracy)
    assert not model.training  # evaluate leaves the mode it found
    model.train()
    evaluate(model, digits_test)
    assert model.training


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be a positive int"),
        ({"batch_size": -5}, "batch_size must be a positive int"),
        ({"epochs": 0}, "epochs must be a finite number > 0"),
        ({"optimizer": "lbfgs"}, r"optimizer must be one of \('sgd', 'adam'\)"),
        ({"lr": -1.0}, "lr must be a positive number"),
        ({"augment": "mixup"}, "augment must be one of"),
    ],
)
def test_bad_configs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_bad_inputs_are_refused_before_training(digits_small):
    model = small_convnet()
    with pytest.raises(ValueError, match="is empty"):
        train(model, digits_small[:0], FAST, progress=False)
    mnist_model = models.build("convnet3", 10, (1, 28, 28), width=8)
    with pytest.raises(
        ValueError, match=r"\(1, 8, 8\) but the convnet3 model was built for \(1, 28, 28\)"
    ):
        train(mnist_model, digits_small, FAST, progress=False)
    three = models.build("convnet3", 3, (1, 8, 8), width=8)
    with pytest.raises(ValueError, match="10 classes but the convnet3 model was built for 3"):
        train(three, digits_small, FAST, progress=False)
    with pytest.raises(ValueError, match="the mask names 'fc.weight', which the model lacks"):
        train(model, digits_small, FAST, mask={"fc.weight": torch.ones(3)}, progress=False)
    with pytest.raises(
        ValueError,
        match=r"the mask for '0.weight' has shape \(3,\) but the parameter has \(8, 1, 3, 3\)",
    ):
        train(model, digits_small, FAST, mask={"0.weight": torch.ones(3)}, progress=False)
    with pytest.raises(ValueError, match="checkpoint step 999 lies outside training"):
        train(model, digits_small, FAST, checkpoint_steps=[999], progress=False)
