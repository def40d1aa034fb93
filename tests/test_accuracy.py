"""The foundation's headline number: convnet3, default config, embedded MNIST split, ≥ 97%.

Ten epochs of the full-width ConvNet-3 take about 4.5 minutes on 2 CPU cores, a third of the
default suite's budget, so this check runs with `make test-slow`."""

from __future__ import annotations

import pytest

from lmc_toolkit.training import TrainRun, train_run


@pytest.mark.slow
def test_convnet3_default_config_reaches_97_percent_on_embedded_mnist():
    result = train_run(TrainRun(), device="cpu", progress=False)
    assert result.final.n == 1000
    assert result.final.accuracy >= 0.97, result.final
