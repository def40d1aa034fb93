"""The run store: results cached in folders named by their configuration, written atomically,
loaded weights-only, with locks so that concurrent workers compute each run once."""

from lmc_toolkit.store.files import (
    CorruptFile,
    StoreError,
    atomic_json_save,
    atomic_torch_save,
    safe_json_load,
    safe_torch_load,
    verify_checksum,
)
from lmc_toolkit.store.locks import RunLock
from lmc_toolkit.store.naming import canonical, run_name
from lmc_toolkit.store.runs import Run, Store

__all__ = [
    "CorruptFile",
    "Run",
    "RunLock",
    "Store",
    "StoreError",
    "atomic_json_save",
    "atomic_torch_save",
    "canonical",
    "run_name",
    "safe_json_load",
    "safe_torch_load",
    "verify_checksum",
]
