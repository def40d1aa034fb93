"""Files that survive crashes and never run code: atomic writes, weights-only loads, JSON.

Every file the toolkit writes (run results, datasets, masks, surfaces, reports) goes through a
temporary file in the same folder and a rename, so a killed process leaves no partial file under
the final name; tensors are read back with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import enum
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

TMP_MARK = ".tmp-"


class StoreError(RuntimeError):
    """A stored file could not be read (corrupted, truncated, or not ours)."""


def atomic_write(path: str | Path, write: Callable[[Any], None]) -> Path:
    """Write through a temporary file in the same folder, fsync, then rename onto `path`.

    A crash mid-write leaves at most a temporary file (never read back), never a partial file
    under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + TMP_MARK, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """`torch.save(obj)` to `path` atomically."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def atomic_json_save(obj: Any, path: str | Path) -> Path:
    """Write `obj` as indented JSON to `path` atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode()))


def safe_torch_load(path: str | Path, map_location: Any = "cpu") -> Any:
    """Load a file written by `atomic_torch_save` with `weights_only=True`.

    Raises `FileNotFoundError` when it is missing and `StoreError` (naming the file) when it is
    corrupted, truncated, or holds pickled objects other than tensors and primitives.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise StoreError(
            f"{path} is corrupted, truncated, or not a tensors-only file "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "recompute it (recompute=True) or delete it"
        ) from exc


def safe_json_load(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path} is corrupted or truncated JSON ({exc}); recompute it") from exc


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")
