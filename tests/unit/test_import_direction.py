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
SETTINGS = "registry.project.settings"
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


def _module_of(dotted: str) -> str | None:
    """The module of ours that ``dotted`` names (itself, or the module of an attribute)."""
    parts = dotted.split(".")
    while parts:
        base = ROOT.joinpath(*parts)
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return ".".join(parts)
        parts = parts[:-1]
    return None


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module → the modules of the apps it imports or names, at module level or inside a
    function (a deferred import still runs, so it still makes a loop).

    ``from registry import validation`` is an edge to ``registry.validation``, not to the
    package: a package's ``__init__`` runs for any of its modules, which is no dependency
    of one module on another.
    """
    graph: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in python_files(package):
            name = _module_name(path)
            packages, modules = _from_imports_of_modules(path)
            targets = set()
            for dotted in (references(path) - packages) | modules:
                if dotted.split(".")[0] in PACKAGES and (module := _module_of(dotted)):
                    targets.add(module)
            targets.discard(name)  # a module naming itself (a Celery task's own path)
            # Entry points (wsgi, celery) name the settings module for DJANGO_SETTINGS_MODULE;
            # code reads it through django.conf.settings, which depends on nothing of ours.
            targets.discard(SETTINGS)
            graph[name] = targets
    return graph


def _from_imports_of_modules(path: Path) -> tuple[set[str], set[str]]:
    """``from registry import validation``: the packages such imports name, and the
    modules they import from them."""
    tree = ast.parse(path.read_text(), filename=str(path))
    packages, modules = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            if all(_module_of(name) == name for name in names):
                packages.add(node.module)
                modules.update(names)
    return packages, modules


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


def test_no_import_cycle_inside_the_apps():
    assert import_cycles(import_graph()) == []


def test_cycle_finder_sees_loops_through_deferred_imports():
    # Guard against a finder that silently finds nothing: a loop closed by a deferred import,
    # a loop of three, and a module that only names itself.
    graph = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert import_cycles(graph) == [["a", "b"], ["c", "d", "e"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []
    tasks = import_graph()["registry.models"]
    assert "registry.validation" in tasks  # module level
    assert "registry.access" in tasks  # inside a method
