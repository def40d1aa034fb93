"""The paper preset's stages on CUDA at the smoke schedule, timed, without notebooks: 5000 CIFAR-10-format
images written here (a per-class pattern plus noise), the narrow ResNet-18 trained one epoch, a pair of
copies spawned at k = 0 and interpolated at 11 α (BatchNorm recalibrated), the top Hessian eigenvalue on
256 images. Writes gpu_check.json to $OUT (or /tmp). Run: PYTHONPATH=. python3 benchmarks/paper_gpu_stages.py"""

# ruff: noqa: E402 (each import sits where its stage's clock starts)

import json
import os
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

t0 = time.perf_counter()
out = Path(os.environ.get("OUT", "/tmp"))
log = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}


def mark(name, start):
    log[name] = round(time.perf_counter() - start, 2)
    print(name, log[name], flush=True)


root = Path(tempfile.mkdtemp())
from lmc_toolkit.data.cifar_files import CIFAR_FILES

rng = np.random.default_rng(0)
tmpl = rng.integers(0, 256, (10, 3072))
folder = root / CIFAR_FILES["cifar10"][0]
folder.mkdir(parents=True)


def batch(n):
    y = rng.integers(0, 10, n)
    x = np.clip(tmpl[y] + rng.normal(0, 40, (n, 3072)), 0, 255).astype(np.uint8)
    return {"data": x, "labels": [int(v) for v in y]}


for i in range(1, 6):
    (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch(1000)))
(folder / "test_batch").write_bytes(pickle.dumps(batch(1000)))
(folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [str(i) for i in range(10)]}))
s = time.perf_counter()
from lmc_toolkit.study.presets import study_config

cfg = study_config("paper", scale="smoke", data_root=str(root))
from lmc_toolkit import data as D
from lmc_toolkit import models
from lmc_toolkit.training import evaluate, train

tr = D.load("cifar10", "train", root=str(root)).to("cuda")
te = D.load("cifar10", "test", root=str(root)).to("cuda")
mark("import_and_data_s", s)
opts = dict(cfg.model_options or {}) if hasattr(cfg, "model_options") else {}
net = models.build(cfg.model, 10, tr.in_shape, 0, **opts).cuda()
log["params"] = sum(p.numel() for p in net.parameters())
s = time.perf_counter()
r = train(net, tr, cfg.train, 0, progress=False)
torch.cuda.synchronize()
mark("train_5000_imgs_smoke_schedule_s", s)
log["train_epochs"] = cfg.train.epochs
log["accuracy"] = evaluate(r.model(), te).accuracy
from lmc_toolkit.connectivity import instability

s = time.perf_counter()
ins = instability(net, tr, te, cfg.train, k=0, alphas=11, progress=False)
torch.cuda.synchronize()
mark("instability_k0_pair_s", s)
log["barrier"] = ins.error_barrier
from lmc_toolkit.hessian import Hessian, top_eigenvalues

s = time.perf_counter()
H = Hessian(r.model(), tr[:256])
top = top_eigenvalues(H, k=1, progress=False)
torch.cuda.synchronize()
mark("hessian_top1_256imgs_s", s)
log["lambda_max"] = float(top.top)
log["total_s"] = round(time.perf_counter() - t0, 1)
(out / "gpu_check.json").write_text(json.dumps(log, indent=1))
print(json.dumps(log))
