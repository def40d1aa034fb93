"""The user's entry points document themselves in one convention (Google style, the one the
docs generator renders and ruff's pydocstyle rules check: `[tool.ruff.lint.pydocstyle]`):
every top-level function and class says what each argument is ("Args:") and, for a
function, what it returns ("Returns:"); measured timings live in `benchmarks/README.md`,
not in docstrings, where they would go stale."""

from __future__ import annotations

import inspect
import re

import pytest

import lmc_toolkit as L

#: the top-level names that are called (functions, and classes built with arguments); the
#: result dataclasses, exceptions and constants are documented by their fields
ENTRY_POINTS = sorted(
    name
    for name in L.__all__
    if inspect.isfunction(getattr(L, name))
    or (
        inspect.isclass(getattr(L, name))
        and not hasattr(getattr(L, name), "__dataclass_fields__")
        and not issubclass(getattr(L, name), Exception)
    )
)


def sections(doc: str) -> dict[str, str]:
    """Google-style section name -> its indented body."""
    found: dict[str, str] = {}
    current = None
    for line in doc.splitlines():
        head = re.fullmatch(r"(Args|Returns|Raises|Yields|Example|Examples|Note):\s*", line)
        if head:
            current = head.group(1)
            found[current] = ""
        elif current and (line.startswith(" ") or not line.strip()):
            found[current] += line + "\n"
        else:
            current = None
    return found


def documented_args(body: str) -> set[str]:
    """The argument names an "Args:" body describes (`name:` or `*name:` / `**name:`)."""
    return {m.group(1) for m in re.finditer(r"^    \*{0,2}(\w+)(?: \([^)]*\))?:", body, re.M)}


def signature_of(obj: object) -> tuple[str, inspect.Signature]:
    """The docstring that should describe `obj`'s arguments, and their signature: a class's
    from the class that defines its `__init__`."""
    if inspect.isclass(obj):
        owner = next(c for c in obj.__mro__ if "__init__" in vars(c))
        return inspect.getdoc(owner) or "", inspect.signature(obj)
    return inspect.getdoc(obj) or "", inspect.signature(obj)


def test_the_entry_points_are_found():
    assert {"train", "interpolate", "Hessian", "plane", "imp", "Study"} <= set(ENTRY_POINTS)


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_an_entry_point_documents_its_arguments_and_returns(name: str):
    obj = getattr(L, name)
    doc, sig = signature_of(obj)
    found = sections(doc)
    params = {p for p in sig.parameters if p not in ("self", "cls")}
    if params:
        assert "Args" in found, f"{name}'s docstring has no Args: section"
        missing = params - documented_args(found["Args"])
        assert not missing, f"{name}'s Args: section leaves out {sorted(missing)}"
        extra = documented_args(found["Args"]) - params
        assert not extra, f"{name}'s Args: section names arguments it does not take: {extra}"
    if inspect.isfunction(obj):
        assert "Returns" in found and found["Returns"].strip(), f"{name} says nothing it returns"


#: a measured figure: "0.64 s", "3.6 ms", "12 min", "4.1× a gradient", "1.1-3x slower", "25%
#: slower" (not a shape: "3×3", "n × C", "3×size")
TIMING = re.compile(
    r"\d+(?:\.\d+)?\s(?:s|ms|µs|min|seconds|minutes|hours)\b"
    r"|\d+\.\d+\s?(?:s|ms)\b"
    r"|\d[\d.-]*×(?=[\s,;)])"
    r"|\d[\d.-]*x (?:slower|faster)"
    r"|\d+% (?:slower|faster)"
)


def test_no_docstring_carries_a_measured_timing():
    import ast
    from pathlib import Path

    found = []
    for path in sorted(Path(L.__file__).parent.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node) or ""
                for m in TIMING.finditer(doc):
                    where = getattr(node, "name", "module")
                    found.append(f"{path.name}:{where}: {m.group(0)!r}")
    assert not found, "timings belong in benchmarks/README.md:\n" + "\n".join(found)


def test_the_timing_pattern_finds_timings_and_not_shapes():
    timings = ["0.64 s by", "3.6 ms per", "took 12 min", "4.1× a gradient", "1.1-3x slower"]
    shapes = ["a 3×3 conv", "n × C blocks", "3×size×size", "R = (3s/S)", "8×8 digits"]
    assert all(TIMING.search(t) for t in timings)
    assert not any(TIMING.search(s) for s in shapes)
