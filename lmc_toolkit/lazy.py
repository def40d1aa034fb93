"""The top-level API, imported on first use: `import lmc_toolkit as L` loads no stage until a
name is asked for (`L.interpolate` imports `lmc_toolkit.connectivity`), so `import lmc_toolkit`
stays fast and a script that only trains never imports plotting or Dask.

`lmc_toolkit/__init__.py` sets `__getattr__ = lazy_exports(__name__, {name: subpackage})`.
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
