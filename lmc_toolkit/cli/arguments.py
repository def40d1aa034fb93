"""Argument types that refuse a bad value while the command line is parsed, before any work.

Each is an `argparse` type: a bad value ends the command at once (exit status 2) with a message
naming the option (argparse adds it), the value and what is allowed, e.g.
`argument --grid: must be an integer ≥ 2, got '0'`. The library functions the commands call
check the same values again, so a notebook user gets the same refusals.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from typing import Any


def _number(raw: str, kind: type, allowed: str) -> float | int:
    try:
        value = kind(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {raw!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {raw!r}")
    return value


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An integer ≥ `minimum`."""
    allowed = f"an integer ≥ {minimum}"

    def parse(raw: str) -> int:
        value = _number(raw, int, allowed)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {raw!r}")
        return int(value)

    parse.__name__ = f"int≥{minimum}"
    return parse


def float_above(minimum: float, *, inclusive: bool = False) -> Callable[[str], float]:
    """A finite number > `minimum` (≥ with `inclusive`)."""
    allowed = f"a finite number {'≥' if inclusive else '>'} {minimum:g}"

    def parse(raw: str) -> float:
        value = _number(raw, float, allowed)
        if value < minimum or (value == minimum and not inclusive):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {raw!r}")
        return float(value)

    parse.__name__ = f"float>{minimum:g}"
    return parse


def open_fraction(raw: str) -> float:
    """A number strictly between 0 and 1."""
    allowed = "a number strictly between 0 and 1"
    value = _number(raw, float, allowed)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {raw!r}")
    return float(value)


def finite_float(raw: str) -> float:
    """Any finite number."""
    return float(_number(raw, float, "a finite number"))


def output_file(raw: str) -> str:
    """A file to write results to: its folder must exist and be writable, and the path must
    not be a folder, so a long run never fails at its last step."""
    import os
    from pathlib import Path

    path = Path(raw).expanduser()
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"must be a file path, got the folder {raw!r}")
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"its folder {str(folder)!r} does not exist (got {raw!r})")
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(
            f"its folder {str(folder)!r} is not writable (got {raw!r})"
        )
    return str(path)


def existing_folder(raw: str) -> str:
    """A folder that exists (a dataset root)."""
    from pathlib import Path

    path = Path(raw).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"must be an existing folder, got {raw!r}")
    return str(path)


def existing_file(raw: str) -> str:
    """A file that exists (a checkpoint)."""
    from pathlib import Path

    path = Path(raw).expanduser()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"must be an existing file, got {raw!r}")
    return str(path)


def key_value(raw: str) -> tuple[str, Any]:
    """A model option `key=value`; integers become ints, `a,b` a tuple (`hidden=300,100`)."""
    key, sep, text = raw.partition("=")
    if not sep or not key or not text:
        raise argparse.ArgumentTypeError(f"must be KEY=VALUE (e.g. width=64), got {raw!r}")
    values = tuple(int(v) if v.lstrip("-").isdigit() else v for v in text.split(","))
    return key, values if "," in text else values[0]


def device_name(raw: str) -> str:
    """A torch device this machine has: `cpu`, `cuda` or `cuda:N` (N below the GPU count)."""
    import torch

    try:
        device = torch.device(raw)
    except RuntimeError:
        raise argparse.ArgumentTypeError(
            f"must be a device such as cpu, cuda or cuda:1, got {raw!r}"
        ) from None
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if count == 0 or (device.index is not None and device.index >= count):
            raise argparse.ArgumentTypeError(
                f"{raw!r} is not on this machine ({count} CUDA devices); use cpu"
                + (f" or cuda:0 to cuda:{count - 1}" if count else "")
            )
    elif device.type != "cpu":
        raise argparse.ArgumentTypeError(f"must be cpu, cuda or cuda:N, got {raw!r}")
    return raw


def regex(raw: str) -> str:
    """A valid regular expression (parameter selection)."""
    try:
        re.compile(raw)
    except re.error as exc:
        raise argparse.ArgumentTypeError(
            f"must be a parameter name or regular expression, got {raw!r} ({exc})"
        ) from None
    return raw


positive_int = int_at_least(1)
nonnegative_int = int_at_least(0)
positive_float = float_above(0)
nonnegative_float = float_above(0, inclusive=True)
