"""The paper preset's stages on CUDA at the smoke schedule, timed, without notebooks.

5000 CIFAR-10-format training and 1000 test images (a per-class pattern plus noise, written by the
test suite's `write_cifar10`), the narrow ResNet-18 trained on the smoke schedule, a pair of copies
spawned at k = 0 and interpolated at 11 α (BatchNorm recalibrated), and the top Hessian eigenvalue
on 256 images. Writes gpu_check.json to $OUT (or /tmp).

    PYTHONPATH=. python3 benchmarks/paper_gpu_stages.py    # on a CUDA machine
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from lmc_toolkit import data as D
from lmc_toolkit import models
from lmc_toolkit.connectivity import instability
from lmc_toolkit.hessian import Hessian, top_eigenvalues
from lmc_toolkit.study.presets import study_config
from lmc_toolkit.training import evaluate, train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import write_cifar10


def timed(log: dict, name: str, work):
    """Run `work()` on the GPU, record its seconds under `name`, return its result."""
    start = time.perf_counter()
    result = work()
    torch.cuda.synchronize()
    log[name] = round(time.perf_counter() - start, 2)
    print(name, log[name], flush=True)
    return result


def main() -> None:
    start = time.perf_counter()
    log = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    root = Path(tempfile.mkdtemp())
    write_cifar10(root, per_batch=1000, test=1000)
    config = study_config("paper", scale="smoke", data_root=str(root))
    train_data = D.load("cifar10", "train", root=str(root)).to("cuda")
    test_data = D.load("cifar10", "test", root=str(root)).to("cuda")
    net = models.build(config.model, 10, train_data.in_shape, 0, **dict(config.model_options))
    net = net.cuda()
    log["params"] = sum(p.numel() for p in net.parameters())
    run = timed(log, "train_s", lambda: train(net, train_data, config.train, 0, progress=False))
    log["train_epochs"] = config.train.epochs
    log["accuracy"] = evaluate(run.model(), test_data).accuracy
    pair = timed(
        log,
        "instability_k0_pair_s",
        lambda: instability(
            net, train_data, test_data, config.train, k=0, alphas=11, progress=False
        ),
    )
    log["barrier"] = pair.error_barrier
    top = timed(
        log,
        "hessian_top1_256_images_s",
        lambda: top_eigenvalues(Hessian(run.model(), train_data[:256]), k=1, progress=False),
    )
    log["lambda_max"] = float(top.top)
    log["total_s"] = round(time.perf_counter() - start, 1)
    out = Path(os.environ.get("OUT", "/tmp"))
    (out / "gpu_check.json").write_text(json.dumps(log, indent=1))
    print(json.dumps(log))


if __name__ == "__main__":
    main()
