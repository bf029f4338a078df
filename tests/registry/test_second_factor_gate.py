"""Every staff page refuses a session that lacks its required second factor: the attack is a
manager's session (password only) once ``OTP_REQUIRED_FOR_MANAGERS`` is on — it was refused
by the admin's own views and the API, but not by the reports, data quality, import pages or
the API's docs and schema. The test walks every URL the project serves."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django_otp.plugins.otp_totp.models import TOTPDevice

SAMPLES = {"int": "1", "str": "x", "slug": "x", "path": "1", "uuid": "0" * 32}
OPEN = ("/admin/login/", "/admin/logout/")


def _route(pattern) -> str:
    """A concrete path for a URL pattern (route or regex), with a sample for each parameter."""
    if hasattr(pattern, "_route"):
        return re.sub(
            r"<(?:(\w+):)?\w+>", lambda m: SAMPLES.get(m.group(1) or "str", "x"), pattern._route
        )
    regex = pattern.regex.pattern.lstrip("^").rstrip("$").replace("\\Z", "")
    # a named group of alternatives (the admin's app_label): its first alternative
    regex = re.sub(r"\(\?P<\w+>([\w-]+)(?:\|[^)]*)?\)", r"\1", regex)
    regex = re.sub(r"\(\?P<\w+>[^)]*\)", "1", regex)
    return regex.replace("\\", "")


def staff_urls() -> list[str]:
    found: list[str] = []

    def walk(patterns, prefix: str) -> None:
        for entry in patterns:
            path = prefix + _route(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, path)
            elif isinstance(entry, URLPattern):
                found.append("/" + path)

    walk(get_resolver().url_patterns, "")
    return sorted(
        {url for url in found if url.startswith(("/admin/", "/api/")) and not url.startswith(OPEN)}
    )


def test_the_walk_finds_the_pages_beside_the_admin():
    urls = staff_urls()
    for page in (
        "/admin/reports/cohorts/",
        "/admin/data-quality/",
        "/admin/import/",
        "/api/docs/",
        "/api/schema/",
        "/admin/registry/patient/",
        "/api/v1/queries",
    ):
        assert page in urls or any(url.startswith(page) for url in urls), page
    assert len(urls) > 100


@pytest.fixture
def unverified_manager(client, manager, settings):
    settings.OTP_REQUIRED_FOR_MANAGERS = True
    client.force_login(manager)  # a password login; no device verified this session
    return client


def test_every_staff_url_refuses_a_session_without_its_second_factor(unverified_manager):
    leaks = {}
    for url in staff_urls():
        response = unverified_manager.get(url)
        if url.startswith("/api/"):
            ok = response.status_code == 403
        else:
            ok = response.status_code == 302 and response["Location"].startswith("/admin/login/")
        if not ok:
            leaks[url] = response.status_code
    assert leaks == {}


def test_the_same_session_verified_by_its_device_gets_the_pages(unverified_manager, manager):
    device = TOTPDevice.objects.create(user=manager, name="authenticator", confirmed=True)
    session = unverified_manager.session
    session["otp_device_id"] = device.persistent_id
    session.save()
    for url in ("/admin/reports/cohorts/", "/admin/data-quality/", "/api/schema/"):
        assert unverified_manager.get(url).status_code == 200, url
