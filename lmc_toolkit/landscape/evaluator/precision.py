"""The arithmetic precision of an evaluator's forward passes: float32 (the default) or bfloat16.

With `"bfloat16"` the convolutions and matrix products run in bfloat16 under `torch.autocast`
(oneDNN on CPUs with AVX512-BF16 or AMX, tensor cores on CUDA), while the loss and accuracy are
still accumulated from float32 logits, normalization statistics and the fused first block's
coefficients stay in float32/float64, and the weights of every point are written in float32.
bfloat16 keeps 8 bits of mantissa (a relative rounding of 2^-9 ≈ 0.2% per operation): on planes
of a trained ConvNet-3 the loss of a point differed from float32 by at most 1.7e-3 of itself
(median 1e-4 to 2e-4), and a point's accuracy by at most 3 images of 1000, several times
faster than the best float32 loop (the speeds are in `benchmarks/README.md`); predictions near a decision boundary can flip.

It is used only where the hardware computes bfloat16 natively: elsewhere asking for it is an
error, never a silent fall back to float32 (emulated bfloat16 is slower than float32).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Precision = Literal["float32", "bfloat16"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)

#: The documented bound of the bfloat16 evaluator's error: max |Δloss| / max(|loss|, 1)
#: against float32 on the same points (measured at most 1.7e-3; `benchmarks/README.md`).
BF16_LOSS_RTOL = 1e-2


class PrecisionUnsupported(ValueError):
    """The device cannot run the asked precision natively (a value not allowed here)."""


def bf16_supported(device: torch.device) -> bool:
    """Whether `device` runs bfloat16 convolutions and products natively."""
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        mkldnn = getattr(torch.ops, "mkldnn", None)
        check = getattr(mkldnn, "_is_mkldnn_bf16_supported", None)
        return bool(torch.backends.mkldnn.is_available() and check is not None and check())
    return False


def check_precision(precision: str, device: torch.device) -> str:
    """`precision` if it is known and `device` runs it natively; else a clear error."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bfloat16" and not bf16_supported(device):
        need = (
            "a CUDA GPU with bfloat16 support (compute capability 8.0 or newer)"
            if device.type == "cuda"
            else "a CPU with AVX512-BF16 or AMX and a oneDNN build of torch"
        )
        raise PrecisionUnsupported(
            f"precision='bfloat16' needs {need}; this {device.type} device does not compute "
            "bfloat16 natively, so use precision='float32' (the default)"
        )
    return precision


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The reduced dtype autocast runs products in on `device` now, or None when it is off."""
    if not torch.is_autocast_enabled(device.type):
        return None
    return torch.get_autocast_dtype(device.type)


@contextlib.contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """Float32 inside, also where the caller runs under autocast (linear mixes of outputs)."""
    with torch.autocast(device_type=device.type, enabled=False):
        yield


@contextlib.contextmanager
def forward_precision(precision: str, device: torch.device) -> Iterator[None]:
    """Run the forward passes inside at `precision` (float32: unchanged)."""
    if precision == "float32":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
        yield


def head_in_float32(net: nn.Module) -> None:
    """Make the last `Linear` of `net` (its classifier) compute in float32 under autocast.

    The logits' own rounding to bfloat16 (2^-9 of each logit) is the largest error of a
    bfloat16 forward pass for a trained network, whose loss is small: its relative loss error is
    about that rounding times the logits' size. The classifier's input is already rounded, but
    its rounding errors average out over the features, so keeping this one cheap layer in
    float32 removes most of the error at almost no cost. Changes `net` in place (the
    evaluator's private copy)."""
    heads = [m for m in net.modules() if type(m) is nn.Linear]
    if not heads:
        return
    head = heads[-1]

    def forward(x: Tensor) -> Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            bias = head.bias.float() if head.bias is not None else None
            return F.linear(x.float(), head.weight.float(), bias)

    head.forward = forward  # type: ignore[method-assign]
