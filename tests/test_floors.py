"""The floors rule is enforced: ``lint-imports`` passes on the tree and fails on a planted
upward import or a planted cycle (imports inside functions count)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the package and its contracts, to plant imports in."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(
        ROOT / "src" / "opsloop", tmp_path / "src" / "opsloop",
        ignore=shutil.ignore_patterns("__pycache__", "static", "templates"),
    )  # fmt: skip
    return tmp_path


def _plant(tree: Path, module: str, line: str) -> None:
    path = tree / "src" / Path(*module.split(".")).with_suffix(".py")
    path.write_text(path.read_text() + f"\n\ndef _planted() -> None:\n    {line}\n")


def test_the_tree_keeps_every_contract(tree: Path) -> None:
    result = _lint(tree)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def test_an_upward_import_inside_a_function_breaks_the_floors(tree: Path) -> None:
    _plant(tree, "opsloop.tracking.runs", "from opsloop.client import Client  # noqa")
    result = _lint(tree)
    assert result.returncode != 0
    assert "opsloop.tracking is not allowed to import opsloop.client" in result.stdout


def test_a_cycle_between_two_modules_of_a_package_is_refused(tree: Path) -> None:
    _plant(tree, "opsloop.kernel.refs", "import opsloop.kernel.paging  # noqa")
    _plant(tree, "opsloop.kernel.paging", "import opsloop.kernel.refs  # noqa")
    result = _lint(tree)
    assert result.returncode != 0
    assert "No cycles are allowed in opsloop.kernel" in result.stdout
