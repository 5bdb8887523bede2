"""The import contracts in pyproject.toml hold, a wrong-way import breaks them, and routes live
in the domain their path names."""

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
        ("workers/pipeline.py", "docker.errors"),  # the pipeline past the container runner
        ("ops/health.py", "docker"),  # only cure.containers speaks to the engine
    ],
)
def test_a_wrong_way_import_breaks_them(tree: Path, module: str, wrong_way: str) -> None:
    with (tree / "cure" / module).open("a") as source:
        source.write(f"\nimport {wrong_way}  # noqa: F401, E402\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout, result.stdout


HOMES = {"/v1/orders": ("cure.orders.", "cure.logs."), "/v1/ccsi": ("cure.ccsi.",)}


def test_order_and_catalogue_routes_live_in_their_domains(settings) -> None:  # type: ignore[no-untyped-def]
    """A route under /v1/orders is defined in orders/ (or logs/: an order's log stays with the
    logs), one under /v1/ccsi in ccsi/: a reader finds a route by its path."""
    from fastapi.routing import APIRoute

    from cure.main import create_app

    def walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
        for route in routes:
            if isinstance(route, APIRoute):
                yield prefix + route.path, route
            elif hasattr(route, "original_router"):  # an included router (FastAPI >= 0.165)
                context = route.include_context
                yield from walk(route.original_router.routes, prefix + context.prefix)

    found: dict[str, list[str]] = {prefix: [] for prefix in HOMES}
    strays = []
    for path, route in walk(create_app(settings).routes):
        for prefix, homes in HOMES.items():
            if path == prefix or path.startswith(prefix + "/"):
                found[prefix].append(path)
                if not route.endpoint.__module__.startswith(homes):
                    strays.append(f"{path} in {route.endpoint.__module__}")
    assert strays == []
    assert "/v1/orders/{order_id}/assets/{role}/quicklook" in found["/v1/orders"]
    assert (
        "/v1/ccsi/{collection}/products/{identifier}/assets/{asset}/quicklook" in found["/v1/ccsi"]
    )


@pytest.mark.parametrize("module", ["cure/cli.py", "cure/main.py"])
def test_the_entry_points_functions_stay_short(module: str) -> None:
    """The command line and the app factory read as a list of what they wire: no function of
    theirs over 40 lines (before issue 23: 175 and 133)."""
    import ast

    root = Path(__file__).resolve().parents[1]
    tree = ast.parse((root / module).read_text())
    long = [
        f"{node.name}: {node.end_lineno - node.lineno + 1} lines"  # type: ignore[operator]
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > 40  # type: ignore[operator]
    ]
    assert long == []
