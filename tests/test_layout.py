"""The package's import rules, read from the source with `ast` (nothing is imported):

- no import circle between modules (module-level and in-function imports alike);
- no module imports another module's private (`_name`) attribute;
- each stage imports only the stages below it (the table in CONTRIBUTING.md), with one
  sanctioned exception: a result's `plot()` shortcut may import its drawing from `plots`;
- nothing below `plots` imports plotly or ipywidgets.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lmc_toolkit"

#: stage -> the stages it imports directly; what those import is allowed too (transitively).
DEPENDS: dict[str, set[str]] = {
    "checks": set(),
    "version": set(),
    "store": {"checks"},
    "data": {"store"},
    "models": {"checks"},
    "training": {"data", "models", "store"},
    "pruning": {"training"},
    "synth": {"training"},
    "alignment": {"pruning"},
    "landscape": {"pruning"},
    "connectivity": {"landscape", "alignment"},
    "hessian": {"pruning"},
    "sweep": {"connectivity", "hessian", "synth"},
    "plots": {"sweep"},
    "widgets": {"plots"},
    "study": {"plots"},
    "cli": {"widgets", "study", "version"},
    "lazy": set(),
    "__main__": {"cli"},
    "__init__": {"cli", "lazy", "version"},
}
#: third-party packages that only `plots` and the stages above it may import
FRONT_END = {"plotly", "ipywidgets", "anywidget"}
BELOW_PLOTS = {
    "checks",
    "version",
    "store",
    "data",
    "models",
    "training",
    "pruning",
    "synth",
    "alignment",
    "landscape",
}
BELOW_PLOTS |= {"connectivity", "hessian", "sweep", "lazy"}


def allowed(stage: str) -> set[str]:
    """`stage` and every stage it may import, directly or through another."""
    seen, todo = {stage}, [stage]
    while todo:
        for dep in DEPENDS[todo.pop()]:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted (lmc_toolkit.x.y)
    target: str  # the imported module (a module or a package's __init__)
    name: str | None  # the attribute taken from `target`, if any
    line: int
    function: str | None  # the enclosing function, for in-function imports


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package(name: str, modules: dict[str, Path]) -> bool:
    return modules.get(name, Path()).name == "__init__.py"


def collect(root: Path) -> tuple[dict[str, Path], list[Import], list[tuple[str, str, int]]]:
    """The package's modules, its internal imports, and its third-party imports."""
    modules = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    imports, external = [], []
    for mod, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        _walk(tree, mod, modules, imports, external, function=None, typing_only=False)
    return modules, imports, external


def _walk(node, mod, modules, imports, external, function, typing_only):
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            continue  # annotations only: never executed
        inner = function
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            inner = child.name
        if isinstance(child, ast.Import):
            for alias in child.names:
                if alias.name.split(".")[0] == root_name(modules):
                    imports.append(Import(mod, alias.name, None, child.lineno, function))
                else:
                    external.append((mod, alias.name, child.lineno))
        elif isinstance(child, ast.ImportFrom):
            base = resolve_relative(mod, child, modules)
            if base.split(".")[0] != root_name(modules):
                external.append((mod, base, child.lineno))
                continue
            for alias in child.names:
                sub = f"{base}.{alias.name}"
                if sub in modules:
                    imports.append(Import(mod, sub, None, child.lineno, function))
                else:
                    imports.append(Import(mod, base, alias.name, child.lineno, function))
        _walk(child, mod, modules, imports, external, inner, typing_only)


def root_name(modules: dict[str, Path]) -> str:
    return min(modules, key=len)


def resolve_relative(mod: str, node: ast.ImportFrom, modules: dict[str, Path]) -> str:
    if not node.level:
        return node.module or ""
    parts = mod.split(".")
    keep = len(parts) - node.level + (1 if is_package(mod, modules) else 0)
    return ".".join(parts[:keep] + ([node.module] if node.module else []))


def stage_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (or a module importing itself)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in edges.get(v, ()):
                out.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def cycle_through(group: list[str], edges: dict[str, set[str]]) -> list[str]:
    """One closed path of imports through the first module of a circle (shortest, by BFS)."""
    start, members = group[0], set(group)
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges.get(v, ())):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [*reversed(path), start]
                if w in members and w not in parent:
                    parent[w] = v
                    nxt.append(w)
        frontier = nxt
    return [start, start]


def violations(root: Path) -> list[str]:
    """Every breach of the import rules in the package at `root`, one line each."""
    modules, imports, external = collect(root)
    found = []
    edges: dict[str, set[str]] = {}
    for imp in imports:
        where = f"{imp.source}:{imp.line}"
        if imp.target not in modules:
            found.append(f"{where} imports {imp.target}, which does not exist")
            continue
        if imp.name and imp.name.startswith("_") and not imp.name.startswith("__"):
            found.append(f"{where} imports the private {imp.name} of {imp.target}")
        src, dst = stage_of(imp.source), stage_of(imp.target)
        shortcut = dst == "plots" and src != "plots" and (imp.function or "").startswith("plot")
        if dst not in allowed(src) and not shortcut:
            found.append(f"{where} ({src}) imports {imp.target} ({dst}): an upward import")
        if not shortcut:  # a plot() shortcut imports lazily, from the top: it closes no circle
            edges.setdefault(imp.source, set()).add(imp.target)
    for group in circles(edges):
        found.append("import circle: " + " -> ".join(cycle_through(group, edges)))
    for mod, name, line in external:
        if stage_of(mod) in BELOW_PLOTS and name.split(".")[0] in FRONT_END:
            found.append(f"{mod}:{line} imports {name}, which only plots and above may use")
    for mod, path in modules.items():
        tree = ast.parse(path.read_text())
        aliases = _module_aliases(tree, mod, modules)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                found.append(
                    f"{mod}:{node.lineno} uses the private {node.attr} of {aliases[node.value.id]}"
                )
    return found


def _module_aliases(tree: ast.AST, mod: str, modules: dict[str, Path]) -> dict[str, str]:
    """Local names bound to other modules of the package (`from pkg import module as m`)."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = resolve_relative(mod, node, modules)
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    out[alias.asname or alias.name] = f"{base}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and alias.name in modules:
                    out[alias.asname] = alias.name
    return out


def test_every_stage_is_known():
    stages = {stage_of(m) for m in collect(PACKAGE)[0]}
    assert stages <= set(DEPENDS), f"stages missing from DEPENDS: {stages - set(DEPENDS)}"


#: `study`'s three concerns, and which of the others each may import: running the study never
#: reads its figures or verdicts; the verdicts read the figures' files, not the figure code
STUDY_PARTS: dict[str, set[str]] = {
    "running": set(),
    "verdicts": set(),
    "figures": {"running", "verdicts"},
}


def study_part(module: str) -> str | None:
    """The concern of a `study` module (None outside `study`, and for its `__init__`)."""
    parts = module.split(".")
    if parts[1:2] != ["study"] or len(parts) == 2:
        return None
    return parts[2] if parts[2] in ("figures", "verdicts") else "running"


def test_the_study_keeps_its_three_concerns_apart():
    _, imports, _ = collect(PACKAGE)
    crossings = []
    for imp in imports:
        a, b = study_part(imp.source), study_part(imp.target)
        if a and b and a != b and b not in STUDY_PARTS[a]:
            crossings.append(f"{imp.source}:{imp.line} ({a}) imports {imp.target} ({b})")
    assert {study_part(m) for m in collect(PACKAGE)[0]} >= set(STUDY_PARTS)
    assert not crossings, "\n".join(crossings)


def test_package_keeps_the_import_rules():
    found = violations(PACKAGE)
    assert not found, "\n".join(found)


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "lmc_toolkit"
    for rel, text in {"__init__.py": "", **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_a_planted_circle_is_found(tmp_path):
    root = _plant(
        tmp_path,
        {
            "training/__init__.py": "",
            "training/a.py": "from lmc_toolkit.training.b import g\ndef f(): return g()\n",
            "training/b.py": "def g():\n    from lmc_toolkit.training.a import f\n    return f\n",
        },
    )
    found = violations(root)
    circle = "lmc_toolkit.training.a -> lmc_toolkit.training.b -> lmc_toolkit.training.a"
    assert found == [f"import circle: {circle}"]


def test_a_package_importing_its_own_init_is_a_circle(tmp_path):
    root = _plant(
        tmp_path,
        {
            "hessian/__init__.py": "from lmc_toolkit.hessian.trace import trace\n",
            "hessian/trace.py": "from lmc_toolkit.hessian import Hessian\n",
        },
    )
    assert any(line.startswith("import circle") for line in violations(root))


def test_private_imports_are_found(tmp_path):
    root = _plant(
        tmp_path,
        {
            "store/__init__.py": "",
            "store/files.py": "def _write(): pass\n",
            "data/__init__.py": "",
            "data/a.py": "from lmc_toolkit.store.files import _write\n",
            "data/b.py": "from lmc_toolkit.store import files\nfiles._write()\n",
        },
    )
    found = violations(root)
    assert any("data.a:1 imports the private _write" in line for line in found)
    assert any("data.b:2 uses the private _write" in line for line in found)


def test_upward_imports_and_front_ends_are_found(tmp_path):
    root = _plant(
        tmp_path,
        {
            "training/__init__.py": "",
            "training/loop.py": "from lmc_toolkit.study.runs import Study\nimport plotly\n",
            "study/__init__.py": "",
            "study/runs.py": "class Study: pass\n",
            "plots/__init__.py": "",
            "plots/draw.py": "def plot_curve(c): pass\n",
            "pruning/__init__.py": "",
            "pruning/result.py": (
                "class R:\n"
                "    def plot(self):\n"
                "        from lmc_toolkit.plots.draw import plot_curve\n"
                "    def table(self):\n"
                "        from lmc_toolkit.plots.draw import plot_curve\n"
            ),
        },
    )
    found = violations(root)
    assert any("training.loop:1 (training) imports lmc_toolkit.study.runs" in f for f in found)
    assert any("training.loop:2 imports plotly" in line for line in found)
    assert any("pruning.result:5 (pruning) imports lmc_toolkit.plots.draw" in f for f in found)
    assert not any("pruning.result:3" in line for line in found)  # the plot() shortcut


@pytest.mark.parametrize("stage", sorted(DEPENDS))
def test_no_stage_depends_on_itself_through_others(stage):
    others = set().union(*(allowed(dep) for dep in DEPENDS[stage])) if DEPENDS[stage] else set()
    assert stage not in others, f"{stage} reaches itself through {DEPENDS[stage]}"


#: functions allowed past the size rules below, each with its reason (none today: a new entry
#: needs one, and the test fails on an entry that no longer needs to be here)
LONG_FUNCTIONS: dict[str, str] = {}
#: parameters that may be passed by position (keyword-only options do not tangle a call)
POSITIONAL_HEAVY: dict[str, str] = {}
MAX_LINES, MAX_POSITIONAL = 60, 8


def function_sizes(root: Path) -> tuple[dict[str, int], dict[str, int]]:
    """ "file:function" -> lines (its docstring not counted), and -> parameters that may be
    passed by position (self and cls not counted; `@overload` stubs skipped)."""
    lines, positional = {}, {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if any(ast.unparse(d) == "overload" for d in node.decorator_list):
                continue
            key = f"{path.relative_to(root)}:{node.name}"
            args = [*node.args.posonlyargs, *node.args.args]
            count = len(args) - (1 if args and args[0].arg in ("self", "cls") else 0)
            doc = node.body[0] if ast.get_docstring(node) is not None else None
            length = node.end_lineno - node.lineno + 1
            if doc is not None:  # the docstring documents; it does not tangle the code
                length -= doc.end_lineno - doc.lineno + 1
            lines[key] = max(lines.get(key, 0), length)
            positional[key] = max(positional.get(key, 0), count)
    return lines, positional


def test_functions_stay_small_or_are_listed_with_a_reason():
    lines, positional = function_sizes(PACKAGE)
    too_long = {k for k, n in lines.items() if n > MAX_LINES}
    too_many = {k for k, n in positional.items() if n > MAX_POSITIONAL}
    assert too_long <= set(LONG_FUNCTIONS), (
        f"over {MAX_LINES} lines: {too_long - set(LONG_FUNCTIONS)}"
    )
    assert too_many <= set(POSITIONAL_HEAVY), (
        f"over {MAX_POSITIONAL} positional parameters: {too_many - set(POSITIONAL_HEAVY)}"
    )
    assert set(LONG_FUNCTIONS) <= too_long, (
        f"now short, drop from the list: {set(LONG_FUNCTIONS) - too_long}"
    )
    assert set(POSITIONAL_HEAVY) <= too_many, (
        f"now within the rule, drop from the list: {set(POSITIONAL_HEAVY) - too_many}"
    )
