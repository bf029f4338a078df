"""pytest plugin: give the test run a PostgreSQL before pytest-django reads the settings.

Loaded with ``-p registry.project.testing_db`` (see pyproject.toml). With ``DATABASE_URL`` set (CI,
or a developer's own server) it only supplies a test secret key; otherwise it starts the
embedded PostgreSQL under ``var/`` — unless only ``tests/unit`` is run, which needs no database
(a unit test that asks for one then fails to connect, as it should).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

UNIT_TESTS = Path(__file__).resolve().parents[2] / "tests" / "unit"


def only_unit_tests(args: list[str], *, unit: Path = UNIT_TESTS) -> bool:
    """Whether the command line selects tests under ``unit`` alone: at least one argument
    names an existing path, and every one that does lies under ``unit`` (option values such
    as ``-k admin`` or ``-p no:cacheprovider`` name no path and are ignored)."""
    paths = [Path(arg.split("::")[0]) for arg in args if not arg.startswith("-")]
    paths = [path.resolve() for path in paths if path.exists()]
    return bool(paths) and all(path.is_relative_to(unit) for path in paths)


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.project.settings")
    # Tests never run collectstatic: plain static names (the production test collects its own).
    os.environ.setdefault("STATIC_MANIFEST", "0")
    # The test client and live servers speak plain HTTP: no redirect to HTTPS, no HSTS.
    os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
    os.environ.setdefault("SECURE_HSTS_SECONDS", "0")
    if not only_unit_tests(list(args)):
        from registry.project.embedded_db import ensure_database_url

        ensure_database_url()
    return (yield)
