"""A type checker (mypy) reads the library as a user's editor does: a user-style script and the
notebooks' code cells resolve every top-level name with no error, a script of mistakes gets
an error on each, and the package itself has none. The checker's settings are `[tool.mypy]`
in pyproject.toml (the level CONTRIBUTING.md states)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent / "typecheck"

pytest.importorskip("mypy")


def notebook_code(notebook: Path) -> str:
    """The code cells of `notebook` as one script (IPython magics left out)."""
    cells = json.loads(notebook.read_text())["cells"]
    parts = []
    for cell in cells:
        if cell["cell_type"] == "code":
            lines = "".join(cell["source"]).splitlines()
            parts.append("\n".join(ln for ln in lines if not ln.lstrip().startswith(("%", "!"))))
    return "\n\n".join(parts) + "\n"


def mypy(paths: list[Path], cache: Path) -> dict[str, list[int]]:
    """file (its name; a package file by its path) -> the lines mypy reports an error on."""
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(cache), *map(str, paths)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode in (0, 1), run.stdout + run.stderr  # 2: mypy itself failed
    errors: dict[str, list[int]] = {}
    for m in re.finditer(r"^(.+?\.py):(\d+): error:", run.stdout, re.M):
        path = Path(m.group(1))
        name = m.group(1) if path.parts[0] == "lmc_toolkit" else path.name
        errors.setdefault(name, []).append(int(m.group(2)))
    return errors


def test_package_and_user_code_type_check_and_mistakes_are_caught(tmp_path):
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    scripts = []
    for nb in notebooks:
        script = tmp_path / f"nb_{nb.stem}.py"
        script.write_text(notebook_code(nb))
        scripts.append(script)
    user = [HERE / "user_script.py", HERE / "wrong_types.py", *scripts]
    errors = mypy([ROOT / "lmc_toolkit", *user], tmp_path / "c")
    wrong = (HERE / "wrong_types.py").read_text().splitlines()
    expected = [i for i, line in enumerate(wrong, 1) if line.endswith("# error")]
    assert sorted(set(errors.pop("wrong_types.py", []))) == expected
    assert errors == {}, f"type errors in user code or in the package: {errors}"
    assert len(scripts) == len(notebooks) >= 12
