"""pytest plugin: give the test run a PostgreSQL before pytest-django reads the settings.

Loaded with ``-p registry.project.testing_db`` (see pyproject.toml). With ``DATABASE_URL`` set (CI,
or a developer's own server) it only supplies a test secret key; otherwise it starts the
embedded PostgreSQL under ``var/``.
"""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.project.settings")
    # Tests never run collectstatic: plain static names (the production test collects its own).
    os.environ.setdefault("STATIC_MANIFEST", "0")
    # The test client and live servers speak plain HTTP: no redirect to HTTPS, no HSTS.
    os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
    os.environ.setdefault("SECURE_HSTS_SECONDS", "0")
    from registry.project.embedded_db import ensure_database_url

    ensure_database_url()
    return (yield)
