"""Helpers the tests share (importable as `helpers`)."""

from __future__ import annotations

import gzip
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import torch

#: Debian's chromium (the browser tests skip without it) and the flags it runs with in a sandbox.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> None:
    """Write a uint8 array in the IDX format MNIST files use."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def tensors_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """Same keys and bit-identical tensors."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def per_point_reference(model, base, dirs, coords, data) -> tuple[np.ndarray, np.ndarray]:
    """Loss and accuracy of base + Σ c_k·dirs[k] for every row of `coords`, each point written
    into a fresh copy of `model` and evaluated: no shared code with the evaluator."""
    from lmc_toolkit.training import evaluate
    from lmc_toolkit.training import params as P

    out = []
    for c in coords:
        point = {
            k: base[k] + sum(float(ci) * d[k] for ci, d in zip(c, dirs, strict=True)) for k in base
        }
        out.append(evaluate(P.with_state(model, point), data))
    return np.array([m.loss for m in out]), np.array([m.accuracy for m in out])


#: The paper preset's F9 at the smoke scale shortened to the dense network and IMP's tickets at
#: 5 α on 200 images: each of the preset's 22 aligned pairs weight-matches a ResNet-18 and
#: interpolates three times with BatchNorm recalibration, after a second initialization's IMP,
#: distillations and tickets, which took the whole figure past 25 minutes on 2 cores.
F9_SHORT = {"methods": ["dense", "imp"], "alphas": 5, "images": 200}


def write_cifar10(root: Path, per_batch: int = 80, test: int = 100, seed: int = 0) -> None:
    """Five training batches and a test batch of 32×32 colour images: a per-class pattern plus
    noise (learnable, so accuracies mean something), pickled as torchvision reads them."""
    from lmc_toolkit.data.cifar_files import CIFAR_FILES

    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, (10, 3072))
    folder = root / CIFAR_FILES["cifar10"][0]
    folder.mkdir(parents=True)

    def batch(n: int) -> dict:
        labels = rng.integers(0, 10, n)
        noise = rng.normal(0, 40, (n, 3072))
        data = np.clip(templates[labels] + noise, 0, 255).astype(np.uint8)
        return {"data": data, "labels": [int(v) for v in labels]}

    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch(per_batch)))
    (folder / "test_batch").write_bytes(pickle.dumps(batch(test)))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [*names, "truck"]}))
