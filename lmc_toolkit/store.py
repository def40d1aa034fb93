"""The run store: results on disk, named by their configuration, written atomically, loaded safely.

Many processes may share one store (a sweep's workers, also over a shared filesystem): writes
are atomic, `Store.cached` computes each result once under a lock file (`RunLock`), and every
computation is counted in `<root>/.computed/` (`Store.computations()`).

A run is identified by a config dataclass. Its folder is `<prefix>-<hash>` where the hash covers
only the fields that differ from their defaults (recursively, in nested dataclasses), so adding
a field with a default never renames an existing run. Files are tensors-and-primitives written
with `torch.save` and read back with `weights_only=True` (no arbitrary unpickling), or JSON.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import torch

from lmc_toolkit.locks import LOCK_STALE_SECONDS, RunLock, host_name

__all__ = ["LOCK_STALE_SECONDS", "Run", "RunLock", "Store", "StoreError", "run_name"]

T = TypeVar("T")

#: Where runs go unless `Store(root)` or the LMC_TOOLKIT_STORE environment variable says.
DEFAULT_ROOT = Path.home() / ".cache" / "lmc_toolkit" / "store"
_TMP_MARK = ".tmp-"
_LOCK_SUFFIX = ".lock"
_COMPUTED_DIR = ".computed"


class StoreError(RuntimeError):
    """A stored file could not be read (corrupted, truncated, or not ours)."""


def _atomic_write(path: str | Path, write: Callable[[Any], None]) -> Path:
    """Write through a temporary file in the same folder, fsync, then rename onto `path`.

    A crash mid-write leaves at most a temporary file (never read back), never a partial file
    under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + _TMP_MARK, dir=path.parent)
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
    return _atomic_write(path, lambda f: torch.save(obj, f))


def atomic_json_save(obj: Any, path: str | Path) -> Path:
    """Write `obj` as indented JSON to `path` atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"
    return _atomic_write(path, lambda f: f.write(text.encode()))


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


def _canonical(value: Any) -> Any:
    """A JSON-stable form of a config value (tuples become lists, dataclasses dicts)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(
        f"config values must be dataclasses, numbers, strings, tuples, lists or dicts; "
        f"got {type(value).__name__} ({value!r})"
    )


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def non_default(config: Any) -> dict[str, Any]:
    """The fields of a config dataclass that differ from their defaults, recursively."""
    if not (dataclasses.is_dataclass(config) and not isinstance(config, type)):
        raise TypeError(f"a run config must be a dataclass instance, got {type(config).__name__}")
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value, default = getattr(config, f.name), _field_default(f)
        if dataclasses.is_dataclass(value) and type(value) is type(default):
            nested = non_default(value)
            if nested:
                out[f.name] = nested
        elif default is dataclasses.MISSING or _canonical(value) != _canonical(default):
            out[f.name] = _canonical(value)
    return out


def run_name(config: Any) -> str:
    """`<prefix>-<12 hex>`: a readable prefix plus a hash of the non-default fields.

    The prefix is `config.run_prefix()` when the config defines it, else the class name in
    snake case. The hash covers the class name and the non-default fields only.
    """
    prefix = config.run_prefix() if hasattr(config, "run_prefix") else _snake(type(config).__name__)
    prefix = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(prefix)).strip("_") or "run"
    key = json.dumps([type(config).__name__, non_default(config)], sort_keys=True)
    return f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Run:
    """One run's folder: tensor files (`<key>.pt`) and JSON files (`<key>.json`)."""

    def __init__(self, path: Path, config: Any):
        self.path = path
        self.config = config

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def _file(self, key: str, suffix: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", key) or key.startswith("."):
            raise ValueError(f"a store key must be letters, digits, '_', '.' or '-', got {key!r}")
        return self.path / f"{key}{suffix}"

    def _write_config(self) -> None:
        target = self.path / "config.json"
        if not target.exists():
            record = {"type": type(self.config).__name__, "config": _canonical(self.config)}
            atomic_json_save(record, target)

    def has(self, key: str, suffix: str | None = None) -> bool:
        """Whether `key` is stored (as `suffix` ".pt" or ".json", or either)."""
        suffixes = (suffix,) if suffix else (".pt", ".json")
        return any(self._file(key, s).exists() for s in suffixes)

    def save(self, key: str, value: Any) -> Path:
        """Save tensors and primitives (dicts, lists, numbers, strings) under `key`."""
        self._write_config()
        return atomic_torch_save(value, self._file(key, ".pt"))

    def load(self, key: str) -> Any:
        return safe_torch_load(self._file(key, ".pt"))

    def save_json(self, key: str, value: Any) -> Path:
        """Save JSON-serializable metrics under `key`."""
        self._write_config()
        return atomic_json_save(value, self._file(key, ".json"))

    def load_json(self, key: str) -> Any:
        return safe_json_load(self._file(key, ".json"))

    def keys(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return sorted(
            p.stem
            for p in self.path.iterdir()
            if p.suffix in (".pt", ".json") and _TMP_MARK not in p.name and p.stem != "config"
        )


class Store:
    """Runs on disk under `root` (default: $LMC_TOOLKIT_STORE or ~/.cache/lmc_toolkit/store)."""

    def __init__(self, root: str | Path | None = None, *, lock_stale: float = LOCK_STALE_SECONDS):
        root = root or os.environ.get("LMC_TOOLKIT_STORE") or DEFAULT_ROOT
        self.root = Path(root).expanduser()
        self.computed = 0  # how many `cached` calls computed instead of loading (this object)
        self.lock_stale = float(lock_stale)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def run(self, config: Any) -> Run:
        """The run folder for `config` (created on first write)."""
        return Run(self.root / run_name(config), config)

    def runs(self, prefix: str = "") -> list[str]:
        """Names of the runs on disk whose name starts with `prefix`."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and p.name.startswith(prefix) and not p.name.startswith(".")
        )

    def cached(
        self,
        config: Any,
        compute: Callable[[], T],
        key: str = "result",
        *,
        encode: Callable[[T], Any] | None = None,
        decode: Callable[[Any], T] | None = None,
        recompute: bool = False,
    ) -> T:
        """Load `key` of the run for `config`, or compute, save and return it.

        `encode`/`decode` turn a result into tensors-and-primitives and back (default: stored
        as is). A corrupted file raises `StoreError` naming it; `recompute=True` ignores what is
        stored and writes a fresh result.

        Safe for many processes sharing the store (also on several machines over a shared
        filesystem): compute and save run under the run's lock for `key`, and the store is read
        again once the lock is held, so a result is computed once and the others load it. Each
        computation is counted in the store (`computations()`).
        """
        run = self.run(config)
        if not recompute and run.has(key, ".pt"):
            stored = run.load(key)
            return decode(stored) if decode else stored
        with self.lock(config, key):
            # another process may have computed it while we waited for the lock
            if not recompute and run.has(key, ".pt"):
                stored = run.load(key)
                return decode(stored) if decode else stored
            value = compute()
            self.computed += 1
            self.record_computation(config, key)
            run.save(key, encode(value) if encode else value)
        return value

    # -- sharing one store between processes and machines ----------------------------------

    @contextmanager
    def lock(self, config: Any, key: str = "result") -> Iterator[RunLock]:
        """Hold the lock of `key` in the run of `config` (waiting for it if another process
        holds it; see `RunLock`). `Store.cached` takes it around compute and save."""
        run = self.run(config)
        run._file(key, _LOCK_SUFFIX)  # validates the key
        lock = RunLock(run.path / f"{key}{_LOCK_SUFFIX}", stale_after=self.lock_stale)
        lock.acquire()
        try:
            yield lock
        finally:
            lock.release()

    def record_computation(self, config: Any, key: str = "result") -> None:
        """Count one computation in the store itself, visible to every process that uses it."""
        folder = self.root / _COMPUTED_DIR
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}-{host_name()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        text = json.dumps({"run": run_name(config), "key": key, "time": time.time()})
        fd = os.open(folder / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(text)

    def computations(self) -> int:
        """How many results were computed (not loaded) in this store, by any process, ever
        (since the counter was added). `self.computed` counts this object's own only."""
        folder = self.root / _COMPUTED_DIR
        if not folder.is_dir():
            return 0
        return sum(1 for p in folder.iterdir() if _TMP_MARK not in p.name)

    def clean_orphans(self, older_than: float = 3600.0) -> list[Path]:
        """Remove temporary files (`*.tmp-*`, left by a process killed mid-write) and stale
        lock files that are older than `older_than` seconds; returns what was removed."""
        removed: list[Path] = []
        if not self.root.is_dir():
            return removed
        now = time.time()
        for path in self.root.glob("*/*"):
            try:
                old = now - path.stat().st_mtime > older_than
            except FileNotFoundError:
                continue
            orphan = _TMP_MARK in path.name
            stale_lock = path.name.endswith(_LOCK_SUFFIX) and RunLock(path, older_than).stale()
            if old and (orphan or stale_lock) and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed
