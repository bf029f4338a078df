"""End to end in headless Chromium: a research nurse enters an unusual cement volume, the
form refuses to save until "save anyway" is ticked with a reason, and the reason is stored.

Screenshots of each step go to ``var/test-artifacts/e2e/`` (or ``$TEST_ARTIFACTS_DIR``).
"""

import shutil
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from playwright.sync_api import sync_playwright

from outcomes.quality.models import WarningAcknowledgement
from tests.e2e.test_questionnaire_browser import CHROMIUM_FLAGS, shoot
from tests.factories import make_patient, make_procedure, make_site
from tests.services import scaled

PASSWORD = "pw-for-tests-only"
DESKTOP = {"viewport": {"width": 1280, "height": 900}}


def site_staff(site):
    """A research nurse at ``site`` with site staff's permissions on procedures. Given
    directly: a transactional test run before this one empties the role groups (created by a
    data migration), while Django recreates the permissions themselves."""
    nurse = get_user_model().objects.create_user(
        username="nurse.brw", password=PASSWORD, is_staff=True
    )
    codenames = [
        "view_patient",
        "view_procedure",
        "change_procedure",
        "view_treatedlevel",
        "add_treatedlevel",
        "change_treatedlevel",
        "view_site",
    ]
    quality = ["view_dataquery", "view_warningacknowledgement"]
    nurse.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="registry", codename__in=codenames),
        *Permission.objects.filter(content_type__app_label="outcomes", codename__in=quality),
    )
    site.members.add(nurse)
    return nurse


@pytest.fixture
def chromium(monkeypatch):
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is missing: run the tests with `make test`"
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=CHROMIUM_FLAGS,
            timeout=scaled(30_000),
        )
        yield browser
        browser.close()


def test_unusual_cement_volume_saves_only_with_save_anyway_and_a_reason(chromium, live_server):
    site = make_site("BRW")
    nurse = site_staff(site)
    procedure = make_procedure(make_patient(site), "osteoporotic")  # T12, 4.5 mL
    level = procedure.levels.get()
    page = chromium.new_page(**DESKTOP)
    page.goto(live_server.url + reverse("admin:login"))
    page.fill("#id_username", nurse.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    change = live_server.url + reverse("admin:registry_procedure_change", args=[procedure.pk])
    page.goto(change)

    page.fill("#id_levels-0-cement_volume_ml", "12.0")
    page.click("input[name=_save]")
    page.wait_for_selector("ul.errorlist")
    warning = "12.0 mL of cement at T12 is outside the usual 1.0–6.0 mL for a thoracic vertebra."
    assert warning in page.content()
    shoot(page, "save-anyway-1-warning")
    level.refresh_from_db()
    assert level.cement_volume_ml == Decimal("4.5")

    page.check("#id_save_anyway")
    page.click("input[name=_save]")
    page.wait_for_selector("ul.errorlist")
    assert "Give a reason for saving anyway" in page.content()
    shoot(page, "save-anyway-2-reason-missing")
    level.refresh_from_db()
    assert level.cement_volume_ml == Decimal("4.5")

    reason = "Large lytic defect; volume confirmed on the operative note."
    page.check("#id_save_anyway")
    page.fill("#id_warning_reason", reason)
    page.click("input[name=_save]")
    page.wait_for_url("**/admin/registry/procedure/")
    assert "Saved anyway with your reason" in page.content()
    shoot(page, "save-anyway-3-saved")
    level.refresh_from_db()
    assert level.cement_volume_ml == Decimal("12.0")
    (ack,) = WarningAcknowledgement.objects.all()
    assert (ack.codes, ack.reason, ack.user, ack.object_id) == (
        ["cement_volume_unusual"],
        reason,
        nurse,
        procedure.pk,
    )

    page.goto(change)
    page.wait_for_selector("#record-quality")
    assert reason in page.content()  # shown on the record's page
    page.close()
