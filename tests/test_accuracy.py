"""The foundation's headline number: convnet3, default config, embedded MNIST split, ≥ 97%."""

from __future__ import annotations

from lmc_toolkit.train import TrainRun, train_run


def test_convnet3_default_config_reaches_97_percent_on_embedded_mnist():
    result = train_run(TrainRun(), device="cpu", progress=False)
    assert result.final.n == 1000
    assert result.final.accuracy >= 0.97, result.final
