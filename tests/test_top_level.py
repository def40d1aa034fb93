"""The top level `import lmc_toolkit as L`: what static tools see (the `TYPE_CHECKING` imports
and `__all__`) is exactly what the lazy loader serves, every name resolves, and the top level
holds the user's API, not plumbing."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import lmc_toolkit as L

INIT = Path(L.__file__)

#: names that are plumbing: reached through their subpackage, never from `L`
PLUMBING = {
    "plane_tile_units",
    "assemble_tiles",
    "ticket_units",
    "imp_units",
    "instability_units",
    "PRECISIONS",
    "bf16_supported",
    "evaluate_points",
    "check_nonempty",
    "num_batches",
    "batches",
    "as_policy",
}


def static_imports() -> dict[str, tuple[str, str]]:
    """name -> (subpackage, attribute) of the imports under `if TYPE_CHECKING:`."""
    tree = ast.parse(INIT.read_text())
    out: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom), ast.unparse(imp)
                stage = (imp.module or "").removeprefix("lmc_toolkit.")
                for alias in imp.names:
                    out[alias.asname or alias.name] = (stage, alias.name)
    return out


def test_static_names_are_the_lazy_names():
    lazy = {name: (stage, L._RENAMED.get(name, name)) for name, stage in L._EXPORTS.items()}
    assert static_imports() == lazy
    assert sorted(L.__all__) == sorted(L._EXPORTS) and len(set(L.__all__)) == len(L.__all__)


def test_every_top_level_name_resolves_to_its_subpackage_object():
    for name, (stage, attr) in static_imports().items():
        assert getattr(L, name) is getattr(importlib.import_module(f"lmc_toolkit.{stage}"), attr)


def test_the_top_level_holds_no_plumbing():
    assert not PLUMBING & set(L.__all__)
    assert (INIT.parent / "py.typed").is_file()  # the package's hints are for its users too
