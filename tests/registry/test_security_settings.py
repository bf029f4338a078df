"""Smaller guarantees of the second security round (issue 26, item 9)."""

from __future__ import annotations

import datetime
import logging

from django.conf import global_settings
from django.contrib.auth.hashers import check_password, get_hasher, make_password
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core import mail
from django.utils import timezone

import registry.project.settings as project_settings
from outcomes.tasks import clear_sessions
from tests.conftest import FAST_PASSWORD_HASHERS
from tests.factories import make_user


def test_production_hashes_passwords_with_pbkdf2(settings):
    """The test run hashes with MD5 (tests/conftest.py); the project's own settings keep
    Django's default, PBKDF2-SHA256 with its full rounds, first."""
    assert settings.PASSWORD_HASHERS == FAST_PASSWORD_HASHERS  # the run's override is on
    configured = getattr(project_settings, "PASSWORD_HASHERS", global_settings.PASSWORD_HASHERS)
    assert configured[0] == "django.contrib.auth.hashers.PBKDF2PasswordHasher"
    assert not any("MD5" in name or "Unsalted" in name for name in configured)
    settings.PASSWORD_HASHERS = configured
    encoded = make_password("pw-for-tests-only")
    assert encoded.startswith("pbkdf2_sha256$")
    assert int(encoded.split("$")[1]) == get_hasher().iterations >= 1_000_000
    assert check_password("pw-for-tests-only", encoded)


def test_a_login_with_a_refused_next_lands_on_the_admin(client, site_a):
    make_user("Site staff", site_a, username="nurse.x")
    response = client.post(
        "/admin/login/?next=https://evil.example/",
        {"username": "nurse.x", "password": "pw-for-tests-only",
         "next": "https://evil.example/"},
    )  # fmt: skip
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_the_language_cookie_is_httponly_samesite_and_secure_in_production(client, settings):
    settings.LANGUAGE_COOKIE_SECURE = True  # as production sets it (SESSION_COOKIE_SECURE)
    response = client.post("/i18n/setlang/", {"language": "da", "next": "/admin/"})
    cookie = response.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert cookie.value == "da"
    assert (cookie["httponly"], cookie["samesite"], cookie["secure"]) == (True, "Lax", True)


def test_a_bad_host_header_is_logged_but_never_mailed(client, settings, caplog, db):
    settings.ADMINS = [("Admins", "admins@example.org")]
    settings.DEBUG = False
    mail.outbox.clear()
    with caplog.at_level(logging.ERROR, logger="django.security.DisallowedHost"):
        for _ in range(5):
            assert client.get("/admin/", HTTP_HOST="attacker.example").status_code == 400
    assert mail.outbox == []
    assert any("attacker.example" in record.getMessage() for record in caplog.records)


def test_expired_sessions_are_cleared_every_night(db, settings):
    assert "outcomes.clear_sessions" in {
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    old, live = SessionStore(), SessionStore()
    old["import"] = "rows"
    old.create()
    live["x"] = 1
    live.create()
    Session.objects.filter(session_key=old.session_key).update(
        expire_date=timezone.now() - datetime.timedelta(days=1)
    )
    clear_sessions()
    assert list(Session.objects.values_list("session_key", flat=True)) == [live.session_key]
