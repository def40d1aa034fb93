"""Run names from configs: a readable prefix plus a hash of the fields that differ from their defaults.

Adding a field with a default never renames an existing run; changing a default does (see
CONTRIBUTING.md).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import re
from pathlib import Path
from typing import Any


def canonical(value: Any) -> Any:
    """A JSON-stable form of a config value (tuples become lists, dataclasses dicts)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
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
        elif default is dataclasses.MISSING or canonical(value) != canonical(default):
            out[f.name] = canonical(value)
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
