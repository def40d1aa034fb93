"""Files that survive crashes and never run code: atomic writes, weights-only loads, JSON.

Every file the toolkit writes (run results, datasets, masks, surfaces, reports) goes through a
temporary file in the same folder and a rename, so a killed process leaves no partial file under
the final name; tensors are read back with `torch.load(weights_only=True)`.

Every tensor file carries its checksum: `<file>.sha256` (the SHA-256 and the size of its bytes)
is written before the file itself and checked before it is read, so a file truncated or altered
afterwards is reported (`CorruptFile`, naming it) instead of loaded as if valid. A file without
that record (written by an older version, or copied without it) is read unverified.
"""

from __future__ import annotations

import enum
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

TMP_MARK = ".tmp-"


def _read_umask() -> int:
    """The process's umask, read once at import (setting it is the only way to read it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()

#: The suffix of a tensor file's checksum record: `<file>.sha256`.
CHECKSUM_SUFFIX = ".sha256"


class StoreError(RuntimeError):
    """A stored file could not be read (corrupted, truncated, or not ours)."""


class CorruptFile(StoreError):
    """A tensor file whose bytes no longer match the checksum written with it."""


def atomic_write(path: str | Path, write: Callable[[Any], None]) -> Path:
    """Write through a temporary file in the same folder, fsync, then rename onto `path`.

    A crash mid-write leaves at most a temporary file (never read back), never a partial file
    under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + TMP_MARK, dir=path.parent)
    try:
        # mkstemp makes the file private (0600); give it the mode any new file gets here
        os.chmod(fd, 0o666 & ~_UMASK)
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
    """`torch.save(obj)` to `path` atomically, its checksum record written first."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getvalue()
    record = f"sha256 {hashlib.sha256(data).hexdigest()} {len(data)}\n".encode()
    path = Path(path)
    atomic_write(checksum_path(path), lambda f: f.write(record))
    return atomic_write(path, lambda f: f.write(data))


def checksum_path(path: str | Path) -> Path:
    """Where the checksum record of tensor file `path` lives."""
    path = Path(path)
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def verify_checksum(path: str | Path) -> bool:
    """Check `path` against its checksum record: True when it matches, False when it has no
    record; raises `CorruptFile` naming the file when its size or digest differs."""
    path = Path(path)
    try:
        fields = checksum_path(path).read_text().split()
    except FileNotFoundError:
        return False
    if len(fields) != 3 or fields[0] != "sha256" or not fields[2].isdigit():
        raise CorruptFile(f"{checksum_path(path)} is not a checksum record; delete it and {path}")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != int(fields[2]) or digest != fields[1]:
        raise CorruptFile(
            f"{path} is corrupted: {len(data)} bytes with SHA-256 {digest[:12]}…, but it was "
            f"written as {fields[2]} bytes with {fields[1][:12]}…; recompute it "
            "(recompute=True) or delete it"
        )
    return True


def read_json(path: Path, default: Any) -> Any:
    """The JSON at `path`, or `default` when it is missing or not JSON (yet)."""
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return default


def atomic_json_save(obj: Any, path: str | Path) -> Path:
    """Write `obj` as indented JSON to `path` atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode()))


def safe_torch_load(path: str | Path, map_location: Any = "cpu") -> Any:
    """Load a file written by `atomic_torch_save` with `weights_only=True`.

    Raises `FileNotFoundError` when it is missing, `CorruptFile` when it does not match its
    checksum record, and `StoreError` (naming the file) when it is otherwise corrupted,
    truncated, or holds pickled objects other than tensors and primitives.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    verify_checksum(path)
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
