"""The evaluator's "auto" choices: vmap or the loop, and whether compiling pays for itself.

Compiling costs seconds up front and saves a little per point and image, so it is chosen from
the work (points × images) a call, or the calls announced with `Evaluator.expect`, will do.
The thresholds are measured (`benchmarks/README.md`, "Design measurements").
"""

from __future__ import annotations

import torch
from torch import nn

from lmc_toolkit.landscape.evaluator.parts import compiler_available

#: Below this many (points × images) compiling costs more than it saves on the CPU.
COMPILE_MIN_WORK = 200_000
#: Seconds a first compile of the fused first block and the rest takes on the CPU with empty
#: caches (measured 15-16 s for convnet3, 2 threads; later ones in a process take < 0.2 s).
COMPILE_SECONDS_CPU = 15.0
#: Seconds the compiled fused first block saves per point, image and element of the first
#: conv's output it never writes (measured 4.0 ns at width 32, 6.6 ns at width 64: 0.13 and
#: 0.43 s per point of 1000 MNIST images, eager vs compiled; `benchmarks/README.md`).
STEM_SAVING_PER_ELEMENT = 4e-9

#: On a GPU a compiled point saves about a millisecond per 1000 images (H200, convnet3), so
#: compiling (tens of seconds) pays only for very large grids.
COMPILE_MIN_WORK_CUDA = 20_000_000


def auto_method(net: nn.Module, device: torch.device, vmappable: bool) -> str:
    """vmap on a GPU for networks without convolutions (vmapped convolutions become slow
    grouped ones) where the data and loss allow it (`vmappable`), else the loop."""
    convs = any(isinstance(m, nn.modules.conv._ConvNd) for m in net.modules())
    return "vmap" if device.type == "cuda" and not convs and vmappable else "loop"


def compile_pays(work: int, device: torch.device, stem_elements: int | None) -> bool:
    """Whether compiling pays for `work` points × images on `device`; with a fused first block
    (`stem_elements`: its conv's output elements per image), when the block saves more than
    the compile costs."""
    if device.type == "cuda":
        return work >= COMPILE_MIN_WORK_CUDA and compiler_available("cuda")
    if device.type != "cpu" or not compiler_available():
        return False
    if stem_elements is not None:
        return work * stem_elements * STEM_SAVING_PER_ELEMENT >= COMPILE_SECONDS_CPU
    return work >= COMPILE_MIN_WORK
