"""`--checkpoint FILE` and `--data-root`: the CLI's curvature, landscape and alignment commands
on networks a user trained elsewhere, checked against the library on the same network."""

from __future__ import annotations

import json
import re

import pytest
import torch
from torch import nn

import lmc_toolkit as L
from lmc_toolkit.cli import main

NET = "--data digits --model convnet3 --option width=2 --option depth=1"


def saved_net(tmp_path, seed: int, whole: bool = False):
    """A digits convnet3 trained a few steps by the library, saved as a state dict (or, with
    `whole`, as a pickled model)."""
    data = L.load("digits")
    net = L.build("convnet3", data.num_classes, data.in_shape, seed, width=2, depth=1)
    trained = L.train(net, data, L.TrainConfig(steps=4), data_seed=seed, progress=False).model()
    path = tmp_path / f"net{seed}{'-whole' if whole else ''}.pt"
    torch.save(trained if whole else trained.state_dict(), path)
    return trained, path


def test_hessian_of_a_checkpoint_equals_the_library_on_the_same_network(tmp_path, capsys):
    net, path = saved_net(tmp_path, 0)
    out = tmp_path / "h.json"
    argv = f"hessian {NET} --checkpoint {path} --images 64 --k 1 --probes 0 --runs 0"
    assert main([*argv.split(), "--no-progress", "--json", str(out)]) == 0
    assert f"checkpoint {path}" in json.loads(out.read_text())["run"]
    top = json.loads(out.read_text())["eigen"]["values"][0]
    H = L.Hessian(net, L.load("digits")[:64])
    assert top == pytest.approx(
        float(L.top_eigenvalues(H, seed=0, progress=False).values[0]), rel=1e-6
    )
    assert "Hessian(" in capsys.readouterr().out


def test_align_and_landscape_take_checkpoints(tmp_path, capsys):
    a, path_a = saved_net(tmp_path, 0)
    b, path_b = saved_net(tmp_path, 1)
    argv = f"align {NET} --checkpoint {path_a} --checkpoint {path_b} --alphas 3 --no-progress"
    assert main(argv.split()) == 0
    printed = capsys.readouterr().out
    assert "checkpoints" in printed and re.search(r"^none\s+\d", printed, re.M)
    curve = L.interpolate(a, b, L.load("digits", "test"), alphas=3, bn_data=L.load("digits"))
    plain = float(re.search(r"^none\s+([\d.]+)%", printed, re.M).group(1))
    assert plain == pytest.approx(100 * curve.barrier("error").value, abs=0.006)
    argv = f"landscape {NET} --checkpoint {path_a} --grid 2 --images 50 --bn eval --no-progress"
    assert main(argv.split()) == 0
    assert "random plane on digits (50 images, 4 points)" in capsys.readouterr().out


def test_bad_checkpoints_are_refused_naming_what_is_wrong(tmp_path, capsys):
    _, whole = saved_net(tmp_path, 0, whole=True)
    argv = f"hessian {NET} --checkpoint {whole} --images 32 --probes 0 --runs 0 --no-progress"
    assert main(argv.split()) == 2
    err = capsys.readouterr().err
    assert "pickled objects" in err and "pass --trust-checkpoint" in err
    assert main([*argv.split(), "--trust-checkpoint"]) == 0  # the user vouches for the file
    other = tmp_path / "other.pt"
    torch.save(nn.Linear(3, 2).state_dict(), other)
    assert main(f"hessian {NET} --checkpoint {other} --no-progress".split()) == 2
    err = capsys.readouterr().err
    assert "does not fit --model convnet3" in err and "missing" in err and "unexpected" in err
    with pytest.raises(SystemExit):
        main(f"hessian {NET} --checkpoint {tmp_path / 'absent.pt'}".split())
    assert "must be an existing file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(f"train {NET} --data-root {tmp_path / 'nowhere'}".split())
    assert "must be an existing folder" in capsys.readouterr().err


def test_data_root_lets_a_training_subcommand_read_file_datasets(tmp_path, capsys):
    from helpers import write_cifar10

    write_cifar10(tmp_path / "cifar", per_batch=20, test=30)
    argv = f"train --data cifar10 --data-root {tmp_path / 'cifar'} --model convnet3"
    argv += f" --option width=2 --option depth=1 --steps 2 --store {tmp_path / 's'} --no-progress"
    assert main(argv.split()) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert main([*argv.replace(f"--data-root {tmp_path / 'cifar'} ", "").split()]) == 2
    assert "root" in capsys.readouterr().err  # without it the files cannot be found
