"""The argument checks every stage shares: an int in a range, one of a set of choices. Each
raises an error that names the argument, the bad value and what is allowed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def check_int(
    name: str,
    value: Any,
    minimum: int | None = None,
    maximum: int | None = None,
    *,
    error: type[Exception] = ValueError,
) -> int:
    """`value` if it is an int (not a bool) in [`minimum`, `maximum`] (either bound may be
    None); else `error` (ValueError by default) naming `name`, the value and the range."""
    in_range = isinstance(value, int) and not isinstance(value, bool)
    if in_range and minimum is not None and value < minimum:
        in_range = False
    if in_range and maximum is not None and value > maximum:
        in_range = False
    if not in_range:
        if minimum is not None and maximum is not None:
            allowed = f"an int in [{minimum}, {maximum}]"
        elif minimum is not None:
            allowed = f"an int ≥ {minimum}"
        elif maximum is not None:
            allowed = f"an int ≤ {maximum}"
        else:
            allowed = "an int"
        raise error(f"{name} must be {allowed}, got {value!r}")
    return value


def check_choice(name: str, value: T, allowed: Sequence[T]) -> T:
    """`value` if it is one of `allowed`; else a ValueError naming `name`, the value and the
    choices."""
    try:
        ok = value in allowed
    except TypeError:  # an unhashable or incomparable value is no choice either
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return value
