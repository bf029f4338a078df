"""Every staff page sends a Content-Security-Policy that allows no inline script: the attack is
a stored script that slips past the admin's escaping (a name, a note, an import file's cell)
— with the policy the browser refuses to run it. Before, only the questionnaire pages sent one."""

from __future__ import annotations

import re

import pytest
from django.conf import settings

from outcomes.questionnaire.views import CONTENT_SECURITY_POLICY as PATIENT_POLICY
from tests.factories import make_patient
from tests.registry.test_second_factor_gate import staff_urls


def directives(header: str) -> dict[str, list[str]]:
    parsed = {}
    for part in header.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def assert_no_inline_script(url: str, header: str | None) -> None:
    assert header, f"{url}: no Content-Security-Policy"
    policy = directives(header)
    script_src = policy.get("script-src", policy.get("default-src"))
    assert script_src is not None, url
    assert "'unsafe-inline'" not in script_src, url
    assert "'unsafe-eval'" not in script_src, url
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"], url  # styles only
    assert policy["object-src"] == ["'none'"], url
    assert policy["frame-ancestors"] == ["'none'"], url


@pytest.mark.django_db
def test_every_staff_page_sends_a_policy_without_inline_script(client, manager, site_a):
    make_patient(site_a)
    client.force_login(manager)
    # every answer carries the policy, and none is a 500 (django-otp's device config and
    # QR-code views answered a missing device with one: registry.admin makes them 404)
    client.raise_request_exception = False
    seen = {}
    for url in staff_urls():
        response = client.get(url)
        if response.streaming:  # read to the end: the export's COPY holds the connection
            b"".join(response.streaming_content)
        seen[url] = response.status_code
        assert_no_inline_script(url, response.get("Content-Security-Policy"))
    assert [url for url, status in seen.items() if status >= 500] == []
    # the walk reached real pages, not only refusals
    assert sum(1 for status in seen.values() if status == 200) > 50, seen
    for page in ("/admin/", "/admin/registry/patient/add/", "/admin/staff/status/", "/api/docs/"):
        assert seen[page] == 200, page


@pytest.mark.django_db
def test_the_login_page_and_the_api_docs_script_are_covered(client, manager):
    assert_no_inline_script("/admin/login/", client.get("/admin/login/")["Content-Security-Policy"])
    client.force_login(manager)
    page = client.get("/api/docs/")
    html = page.content.decode()
    # the docs' own script is a file under the policy, not an inline block
    assert re.search(r"<script>\s*\S", html) is None
    assert "<style>" not in html
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


def test_the_questionnaire_keeps_its_stricter_policy(client, db):
    response = client.get("/q/" + "x" * 43 + "/")
    assert response["Content-Security-Policy"] == PATIENT_POLICY


def test_styles_may_be_inline_and_scripts_never():
    """The report pages draw matplotlib SVG charts inline, styled by attributes, which only
    'unsafe-inline' allows (and a hash beside it would turn it off); scripts stay 'self' only."""
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    assert directives["style-src"] == ["'self'", "'unsafe-inline'"]
    assert directives["script-src"] == ["'self'"]


@pytest.mark.django_db
def test_a_missing_second_factor_device_is_not_found_not_a_500(client, manager):
    client.force_login(manager)
    for view in ("config", "qrcode"):
        response = client.get(f"/admin/otp_totp/totpdevice/999999/{view}/")
        assert response.status_code == 404, view
