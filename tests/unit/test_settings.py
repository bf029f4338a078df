"""The settings refuse to start in production mode without a real secret key."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def import_settings(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", "import registry.project.settings as s; print(s.DEBUG)"],
        cwd=ROOT,
        env=clean | env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "0"}, "SECRET_KEY is not set"),
        ({}, "SECRET_KEY is not set"),  # DEBUG is off unless asked for
        ({"DEBUG": "0", "SECRET_KEY": "short"}, "at least 32 characters"),
        (
            {"DEBUG": "0", "SECRET_KEY": "dev-insecure-secret-key-only-for-local-development"},
            "real secret",
        ),
    ],
)
def test_production_mode_without_real_secret_refuses_to_start(env, message):
    result = import_settings(**env)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_mode_with_real_secret_starts():
    result = import_settings(DEBUG="0", SECRET_KEY="x" * 50)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_development_mode_has_a_default_key():
    result = import_settings(DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_non_postgres_database_is_refused():
    result = import_settings(DEBUG="1", DATABASE_URL="sqlite:///x.db")
    assert result.returncode != 0
    assert "PostgreSQL is the only supported database" in result.stderr
