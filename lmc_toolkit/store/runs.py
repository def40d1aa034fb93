"""The run store: results on disk, named by their configuration, computed once under a lock.

Many processes may share one store (a sweep's workers, also over a shared filesystem): writes
are atomic, `Store.cached` computes each result once under a lock file (`RunLock`), and every
computation is counted in `<root>/.computed/` (`Store.computations()`).

A run is identified by a config dataclass; its folder is `run_name(config)`. Files are
tensors-and-primitives written with `torch.save` and read back with `weights_only=True`, or JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from lmc_toolkit.store.files import (
    CHECKSUM_SUFFIX,
    TMP_MARK,
    StoreError,
    atomic_json_save,
    atomic_torch_save,
    safe_json_load,
    safe_torch_load,
)
from lmc_toolkit.store.locks import LOCK_STALE_SECONDS, RunLock, host_name
from lmc_toolkit.store.naming import canonical, run_name

T = TypeVar("T")


#: Where runs go unless `Store(root)` or the LMC_TOOLKIT_STORE environment variable says.
DEFAULT_ROOT = Path.home() / ".cache" / "lmc_toolkit" / "store"


_LOCK_SUFFIX = ".lock"


_COMPUTED_DIR = ".computed"


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
            record = {"type": type(self.config).__name__, "config": canonical(self.config)}
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

    def load_or(self, key: str, default: Any, redo: str = "computing it again") -> Any:
        """`load(key)`, or `default` when `key` is not stored or its file is corrupted (then
        with a warning naming the file and saying what happens instead, `redo`)."""
        if not self.has(key, ".pt"):
            return default
        try:
            return self.load(key)
        except StoreError as exc:
            warnings.warn(f"{exc}; {redo}", RuntimeWarning, stacklevel=3)
            return default

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
            if p.suffix in (".pt", ".json") and TMP_MARK not in p.name and p.stem != "config"
        )


_MISSING = object()


class Store:
    """Runs on disk: one folder per configuration, its results saved atomically with checksums.

    Args:
        root: The folder (default: $LMC_TOOLKIT_STORE or ~/.cache/lmc_toolkit/store).
        lock_stale: Seconds after which a run lock whose holder stopped refreshing it is taken
            over (a crashed process never blocks the others).
    """

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
        as is). A stored file that is corrupted (it fails its checksum or cannot be read) is
        reported in a warning naming it and computed again; `recompute=True` ignores what is
        stored and writes a fresh result. A compute that fails leaves no run folder behind.

        Safe for many processes sharing the store (also on several machines over a shared
        filesystem): compute and save run under the run's lock for `key`, and the store is read
        again once the lock is held, so a result is computed once and the others load it. Each
        computation is counted in the store (`computations()`).
        """
        run = self.run(config)
        stored = _MISSING if recompute else run.load_or(key, _MISSING)
        if stored is not _MISSING:
            return decode(stored) if decode else cast(T, stored)
        existed = run.path.is_dir()
        try:
            with self.lock(config, key):
                # another process may have computed it while we waited for the lock
                stored = _MISSING if recompute else run.load_or(key, _MISSING)
                if stored is not _MISSING:
                    return decode(stored) if decode else cast(T, stored)
                value = compute()
                self.computed += 1
                self.record_computation(config, key)
                run.save(key, encode(value) if encode else value)
        except BaseException:
            if not existed:  # a failed compute leaves no folder behind
                with contextlib.suppress(OSError):
                    run.path.rmdir()
            raise
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
        return sum(1 for p in folder.iterdir() if TMP_MARK not in p.name)

    def clean_orphans(self, older_than: float = 3600.0) -> list[Path]:
        """Remove temporary files (`*.tmp-*`, left by a process killed mid-write), stale lock
        files and checksum records whose file was never written, older than `older_than`
        seconds; returns what was removed."""
        removed: list[Path] = []
        if not self.root.is_dir():
            return removed
        now = time.time()
        for path in self.root.glob("*/*"):
            try:
                old = now - path.stat().st_mtime > older_than
            except FileNotFoundError:
                continue
            orphan = TMP_MARK in path.name or (
                path.name.endswith(CHECKSUM_SUFFIX)
                and not path.with_name(path.name.removesuffix(CHECKSUM_SUFFIX)).exists()
            )
            stale_lock = path.name.endswith(_LOCK_SUFFIX) and RunLock(path, older_than).stale()
            if old and (orphan or stale_lock) and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed
