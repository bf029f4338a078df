"""deploy/production.env.example is deployable: sourced with a real secret key, Django's
deployment checks pass with no warning; without its HTTPS settings they do not."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from django.core.management.utils import get_random_secret_key

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "production.env.example"


def check_deploy(**overrides: str) -> subprocess.CompletedProcess:
    """``manage.py check --deploy --fail-level WARNING`` in a shell that sourced the example
    (as a deployment would), then ``overrides``."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SECURE_", "SESSION_", "CSRF_", "SECRET_KEY", "DEBUG"))
    }
    exports = " ".join(f"{key}={value!r}" for key, value in overrides.items())
    script = (
        f"set -a; . {EXAMPLE}; set +a; export {exports}; "
        f"exec {sys.executable} manage.py check --deploy --fail-level WARNING"
    )
    return subprocess.run(  # noqa: S603
        ["bash", "-c", script],  # noqa: S607
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_check_deploy_passes_with_the_example_production_env():
    result = check_deploy(SECRET_KEY=get_random_secret_key())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_fails_without_hsts_and_the_https_redirect():
    result = check_deploy(
        SECRET_KEY=get_random_secret_key(), SECURE_HSTS_SECONDS="0", SECURE_SSL_REDIRECT="0"
    )
    assert result.returncode != 0
    assert "security.W004" in result.stderr and "security.W008" in result.stderr


def test_the_example_refuses_to_start_with_its_placeholder_key():
    result = check_deploy()
    assert result.returncode != 0
    assert "at least 32 characters" in result.stderr


def test_the_example_lists_every_production_security_setting():
    names = set(re.findall(r"^([A-Z_]+)=", EXAMPLE.read_text(), flags=re.M))
    assert {
        "DEBUG", "SECRET_KEY", "SECRET_KEY_FALLBACKS", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS",
        "SITE_URL", "SECURE_PROXY_SSL_HEADER", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE", "DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL",
        "SESSION_IDLE_MINUTES", "LOGIN_FAILURE_LIMIT", "LOGIN_LOCKOUT_HOURS",
        "OTP_REQUIRED_FOR_MANAGERS", "API_TOKEN_TTL_DAYS", "API_THROTTLE_RATE",
        "API_THROTTLE_ANON_RATE", "ADMINS",
    } <= names  # fmt: skip
