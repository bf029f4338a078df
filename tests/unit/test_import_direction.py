"""Imports point one way: registry <- outcomes <- api (style.md, docs/architecture.md).

Import statements and dotted strings (settings, URL confs' ``include("…")``, Celery task paths)
both count. ``registry/project/`` is the project's plumbing, which wires every app together,
so it is the one place allowed to name them all.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("registry", "outcomes", "api")
DOTTED = re.compile(r"^[a-z_][a-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
PLUMBING = "registry/project/"
# Pure modules: plain values in, plain values out; no database layer, no Django at all.
PURE = [
    "outcomes/scoring.py",
    "outcomes/instruments/*.py",
    "outcomes/reports/statistics.py",
    "outcomes/reports/casemix.py",
    "outcomes/reports/benchmarking.py",
    "outcomes/followups/schedule.py",
]


def _is_module(dotted: str) -> bool:
    """Whether ``dotted`` names one of our modules, or an attribute of one."""
    parts = dotted.split(".")
    base = ROOT.joinpath(*parts)
    if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
        return True
    # An attribute of a module ("outcomes.tasks.chase_followups"), not an "app.model" label.
    return len(parts) > 2 and ROOT.joinpath(*parts[:-1]).with_suffix(".py").is_file()


def references(path: Path) -> set[str]:
    """Every module ``path`` imports, and every dotted string in it naming one of ours."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if DOTTED.match(text) and text.split(".")[0] in PACKAGES and _is_module(text):
                found.add(text)
    return found


def python_files(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts)


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("registry", ("outcomes", "api")), ("outcomes", ("api",))],
)
def test_package_does_not_reference_downstream_packages(package, forbidden):
    offending = sorted(
        (_relative(path), module)
        for path in python_files(package)
        if not _relative(path).startswith(PLUMBING)
        for module in references(path)
        if module.split(".")[0] in forbidden
    )
    assert offending == []


def test_pure_modules_import_no_django_and_no_models():
    paths = sorted({p for pattern in PURE for p in ROOT.glob(pattern)})
    assert len(paths) >= 6
    offending = sorted(
        (_relative(path), module)
        for path in paths
        for module in references(path)
        if module.split(".")[0] == "django"
        or module.endswith(".models")
        or (module.split(".")[0] in PACKAGES and not _is_pure(module))
    )
    assert offending == []


def _is_pure(module: str) -> bool:
    path = ROOT.joinpath(*module.split("."))
    candidates = [path.with_suffix(".py"), path.parent.with_suffix(".py")]
    pure = {p for pattern in PURE for p in ROOT.glob(pattern)}
    return any(c in pure for c in candidates)


def test_scanner_sees_imports_and_dotted_strings():
    # Guard against a scanner that silently finds nothing.
    assert "registry.models" in references(ROOT / "registry/admin.py")
    urls = references(ROOT / "registry/project/urls.py")
    assert {"outcomes.reports.urls", "outcomes.questionnaire.urls"} <= urls
    settings = references(ROOT / "registry/project/settings.py")
    assert "registry.project.urls" in settings
    assert "django.db" in references(ROOT / "outcomes/models.py")
