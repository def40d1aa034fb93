"""The paper pipeline (every figure notebook) at `--scale smoke`, timed per figure, with a
projection of the full paper preset's training time from this machine's measured throughput.

It writes CIFAR-10-format files (the test suite's `write_cifar10`: 5000 training images, of
which the smoke scale reads 400, and 200 test images), runs `run_figures("paper", scale="smoke")` into a fresh
store (so every training is done, not loaded), then trains the narrow ResNet-18 for one epoch
on 5000 images at the paper's batch size to measure seconds per image-epoch, and multiplies it
by the real-data training the full preset needs: IMP's rounds and the ticket table (figure F1,
counted from the preset by `imp_units` / `ticket_units`), each 300 epochs over 50 000 images.
F3's children, F9's second initialization, distillation and evaluation come on top and are
not projected. Writes paper_pipeline.json to $OUT (or --out).

On a CUDA machine whose Python lacks the notebook stack, carry it as wheels (about 28 MB,
downloaded here for the device's Python; `.wheels/` listed in .git/info/exclude):

    pip download -d .wheels --python-version 3.12 --only-binary=:all: \\
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \\
        --platform manylinux_2_28_x86_64 --platform any -c constraints.txt \\
        papermill ipykernel plotly nbformat nbclient tqdm
    # on the device (run tool, carry [".wheels"]):
    pip install -q --no-index --find-links .wheels papermill ipykernel plotly tqdm \\
      && python -m ipykernel install --user \\
      && PYTHONPATH=$PWD python benchmarks/paper_gpu_pipeline.py

    PYTHONPATH=$PWD python benchmarks/paper_gpu_pipeline.py --only F1 --f9-short   # a CPU check
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import F9_SHORT, write_cifar10

from lmc_toolkit import data as D
from lmc_toolkit import models
from lmc_toolkit.study import run_figures, study_config
from lmc_toolkit.study.units import imp_units, ticket_units
from lmc_toolkit.training import train

#: CIFAR-10's training images: what the full paper preset trains on.
CIFAR10_TRAIN = 50_000


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def seconds_per_image_epoch(root: Path, device: torch.device, images: int) -> float:
    """One epoch of the paper's network and schedule over `images` images, after a warm-up
    epoch: seconds per image (its batch size and augmentation included)."""
    config = study_config("paper", data_root=str(root))
    data = D.load("cifar10", "train", root=str(root)).to(device)[:images]
    net = models.build(config.model, 10, data.in_shape, 0, **dict(config.model_options))
    one_epoch = replace(config.train, epochs=1, milestones=())
    train(net.to(device), data[:512], one_epoch, 0, progress=False)  # warm-up (cuDNN, caches)
    synchronize()
    start = time.perf_counter()
    train(net.to(device), data, one_epoch, 0, progress=False)
    synchronize()
    return (time.perf_counter() - start) / len(data)


def f1_trainings() -> dict[str, int]:
    """How many full real-data trainings figure F1 runs at the paper preset: IMP's rounds plus
    the ticket table (IMP's own rounds at data seed 0 are the same trainings, counted once)."""
    paper = study_config("paper")
    pruning = [u.config["method"] for u in imp_units(paper)]
    imp_rounds = paper.rounds + 1 if "imp" in pruning else 0
    tickets = ticket_units(paper)
    shared = sum(1 for u in tickets if u.config["method"] == "imp" and u.config["data_seed"] == 0)
    synthetic = sum(1 for m in pruning if m != "imp")
    return {
        "imp_rounds": imp_rounds,
        "tickets": len(tickets),
        "tickets_shared_with_imp": shared,
        "full_trainings": imp_rounds + len(tickets) - shared,
        "distilled_pruning_runs_not_projected": synthetic,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=None, help="figures to run, e.g. F1,F3 (default all)")
    parser.add_argument("--f9-short", action="store_true", help="F9 on dense and IMP only")
    parser.add_argument("--out", default=os.environ.get("OUT", "/tmp"))
    parser.add_argument("--throughput-images", type=int, default=5000)
    args = parser.parse_args()
    out = Path(args.out)
    work = Path(tempfile.mkdtemp(prefix="paper-pipeline-"))
    write_cifar10(work / "data", per_batch=max(80, args.throughput_images // 5), test=200)
    os.environ["LMC_TOOLKIT_STORE"] = str(work / "store")  # the kernels inherit it
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    log: dict = {
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "scale": "smoke",
    }
    start = time.perf_counter()
    report = run_figures(
        "paper", only=args.only, out=work / "reports",
        parameters={"F9": F9_SHORT} if args.f9_short else None, progress=True,
        common={"scale": "smoke", "data_root": str(work / "data"), "progress": False},
    )  # fmt: skip
    log["figures"] = {s.figure: round(s.seconds, 1) for s in report.statuses}
    log["failed"] = {s.figure: s.error for s in report.failed}
    log["pipeline_s"] = round(time.perf_counter() - start, 1)
    per_image = seconds_per_image_epoch(work / "data", device, args.throughput_images)
    paper = study_config("paper")
    log["seconds_per_image_epoch"] = per_image
    log["one_paper_training_h"] = round(per_image * CIFAR10_TRAIN * paper.train.epochs / 3600, 2)
    counts = f1_trainings()
    log["f1_trainings"] = counts
    log["projected_f1_training_h"] = round(
        counts["full_trainings"] * log["one_paper_training_h"], 1
    )
    (out / "paper_pipeline.json").write_text(json.dumps(log, indent=1))
    print(json.dumps(log, indent=1))


if __name__ == "__main__":
    main()
