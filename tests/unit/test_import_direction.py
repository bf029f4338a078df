"""Imports point one way: registry <- outcomes <- api (style.md)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(package: str) -> set[tuple[str, str]]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update((str(path.relative_to(ROOT)), alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((str(path.relative_to(ROOT)), node.module))
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("registry", ("outcomes", "api")), ("outcomes", ("api",))],
)
def test_package_does_not_import_downstream_packages(package, forbidden):
    offending = sorted(
        (path, module)
        for path, module in imported_modules(package)
        if module.split(".")[0] in forbidden
    )
    assert offending == []


def test_scanner_sees_imports():
    # Guard against a scanner that silently finds nothing.
    assert ("registry/admin.py", "registry.models") in imported_modules("registry")
