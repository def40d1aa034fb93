"""What a user sees first: short reprs of the results that hold big tensors, the version on
the command line, and a model option that does not exist refused by name."""

from __future__ import annotations

import pytest
import torch

import lmc_toolkit as L
from lmc_toolkit.cli import main
from lmc_toolkit.hessian import LinearMap, top_eigenvalues, trace


def test_eigen_and_estimate_reprs_show_the_numbers_not_the_tensors():
    A = torch.diag(torch.arange(1.0, 41.0, dtype=torch.float64))
    eig = top_eigenvalues(LinearMap(A), k=2, progress=False)
    text = repr(eig)
    assert text.startswith("Eigen(values=[40, 39]") and "tensor" not in text
    est = trace(LinearMap(A), probes=8, method="hutchinson", progress=False)
    text = repr(est)
    assert f"mean={est.mean:.6g}" in text and "samples" not in text and "tensor" not in text


def test_train_result_repr_leaves_out_the_state_dict(digits_small):
    model = L.build("mlp", digits_small.num_classes, (1, 8, 8), hidden=(8,))
    result = L.train(model, digits_small, L.TrainConfig(epochs=1, batch_size=64), progress=False)
    text = repr(result)
    assert text.startswith(f"TrainResult(steps={result.steps}, data_seed=0")
    assert "tensor(" not in text and len(text) < 400


def test_the_command_line_prints_its_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"lmc-toolkit {L.__version__}"


def test_an_unknown_model_option_is_refused_naming_the_options():
    with pytest.raises(
        ValueError, match=r"unknown option 'widht' for model 'convnet3'; its options: width, depth"
    ):
        L.build("convnet3", 10, (1, 28, 28), widht=32)
    with pytest.raises(ValueError, match="its options: none"):
        L.build("lenet", 10, (1, 28, 28), width=3)
