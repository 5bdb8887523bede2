"""The import contracts in pyproject.toml hold, and a wrong-way import breaks them."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """import-linter over the copy of the package in ``tree`` (first on the import path)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "cure", tmp_path / "cure", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_package_keeps_its_contracts(tree: Path) -> None:
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout and " 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "wrong_way"),
    [
        ("kit/db.py", "cure.orders.service"),  # plumbing reaching into a domain
        ("auth/service.py", "cure.crm.service"),  # auth ↔ crm: crm depends on auth, not back
        ("orders/service.py", "cure.notifications.notifier"),  # orders ↔ notifications
        ("workers/pipeline.py", "fastapi"),  # a worker pulling in the web framework
    ],
)
def test_a_wrong_way_import_breaks_them(tree: Path, module: str, wrong_way: str) -> None:
    with (tree / "cure" / module).open("a") as source:
        source.write(f"\nimport {wrong_way}  # noqa: F401, E402\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout, result.stdout
