"""Names a module re-exports from sibling modules, imported on first use.

A module's `__getattr__ = lazy_exports(__name__, {name: module})` lets `from lmc_toolkit.x
import name` work without importing `lmc_toolkit.<module>` when `x` is imported: that keeps
import time low and breaks import cycles (e.g. connectivity ↔ instability).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any


def lazy_exports(
    owner: str,
    where: Mapping[str, str],
    renamed: Mapping[str, str] | None = None,
    cache: MutableMapping[str, Any] | None = None,
) -> Callable[[str], Any]:
    """A module-level `__getattr__` for `owner` resolving each name in `where` to the attribute
    of `lmc_toolkit.<where[name]>` (named `renamed[name]` there, if given); with `cache` (the
    module's `globals()`), each name is looked up once."""
    renamed = dict(renamed or {})

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {owner!r} has no attribute {name!r}")
        value = getattr(
            importlib.import_module(f"lmc_toolkit.{where[name]}"), renamed.get(name, name)
        )
        if cache is not None:
            cache[name] = value
        return value

    return __getattr__
