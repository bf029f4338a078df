"""The staff side in Debian's Chromium: the blank-response blocker, a double-clicked send, a
decimal comma and a Danish date, with axe-core on every staff page on the way (the login,
the record, the dashboard, the due list, the entry pages with their autocomplete boxes, an
error state and the cohort report)."""

import datetime

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from outcomes.followups.sweep import followups_ensure
from outcomes.models import ContactAttempt, FollowUp, QuestionnaireResponse
from registry.models import Procedure
from tests.e2e.axe import assert_accessible
from tests.e2e.test_questionnaire_browser import browser, shoot  # noqa: F401
from tests.factories import (
    make_complication,
    make_contact,
    make_patient,
    make_procedure,
    make_response,
    make_site,
    make_user,
)

DESKTOP = {"viewport": {"width": 1280, "height": 900}}


@pytest.fixture
def nurse_page(browser, live_server, settings):  # noqa: F811
    """A logged-in site nurse, a patient 91 days after a procedure (3-month window open)."""
    settings.SITE_URL = live_server.url
    today = timezone.localdate()
    site = make_site("E2S", name="Test Spine Centre")
    nurse = make_user("Site staff", site, username="nurse.e2e")
    patient = make_patient(site, consent_date=today - datetime.timedelta(days=100))
    make_contact(patient, email="ole@example.org", preferred_language="da")
    procedure = make_procedure(
        patient, "osteoporotic", "metastasis", date=today - datetime.timedelta(days=91)
    )
    followups_ensure(procedure_ids=[procedure.pk])
    make_response(procedure, "baseline", vas_pain=80, answered_on=procedure.date)
    make_complication(procedure, date=procedure.date)
    context = browser.new_context(**DESKTOP, locale="en-GB")
    page = context.new_page()
    page.goto(live_server.url + reverse("admin:login"))
    assert_accessible(page, "admin login")
    page.get_by_label("Username").fill(nurse.username)
    page.get_by_label("Password").fill("pw-for-tests-only")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(live_server.url + reverse("admin:index"))
    yield page, patient, procedure, live_server.url
    context.close()


def test_blank_paper_response_outside_the_window_never_completes_the_follow_up(nurse_page):
    page, patient, procedure, base = nurse_page
    page.goto(base + reverse("staff_record", args=[patient.registry_id]))
    assert_accessible(page, "patient record")
    shoot(page, "staff-01-record")
    # The 12-month window is months away: the record offers no entry, but the form is
    # reachable by its address, as it was when the blocker was found.
    url = reverse("admin:outcomes_questionnaireresponse_add")
    page.goto(f"{base}{url}?procedure={procedure.pk}&timepoint=month_12&mode=paper")
    assert_accessible(page, "response entry")
    page.get_by_role("button", name="Save", exact=True).click()
    assert "No answer is filled in" in page.locator(".errorlist.nonfield").inner_text()
    assert_accessible(page, "response entry with errors")
    shoot(page, "staff-02-blank-refused")
    month_12 = FollowUp.objects.get(procedure=procedure, timepoint="month_12")
    assert (month_12.state, month_12.completed_at) == ("scheduled", None)
    assert not QuestionnaireResponse.objects.filter(timepoint="month_12").exists()


def test_double_click_on_send_link_sends_one_email(nurse_page):
    page, patient, procedure, base = nurse_page
    mail.outbox.clear()
    page.goto(base + reverse("staff_record", args=[patient.registry_id]))
    page.get_by_role("link", name="Send link").click()
    assert_accessible(page, "send-link confirmation")
    page.get_by_role("button", name="Yes, send the new link").dblclick()
    page.wait_for_url(base + reverse("staff_record", args=[patient.registry_id]))
    shoot(page, "staff-03-after-double-click")
    assert len([m for m in mail.outbox if m.to == ["ole@example.org"]]) == 1
    assert ContactAttempt.objects.filter(kind="manual", status="sent").count() == 1
    assert "Link sent by staff: Sent" in page.content()
    assert_accessible(page, "patient record after send")
    for name in ("staff_dashboard", "staff_due_list"):
        page.goto(base + reverse(name))
        assert_accessible(page, name)
    page.goto(base + reverse("cohort_report"))
    assert_accessible(page, "cohort report")


def test_decimal_comma_and_danish_date_in_danish(nurse_page):
    page, patient, _procedure, base = nurse_page
    page.goto(base + reverse("staff_record", args=[patient.registry_id]))
    page.get_by_role("button", name="Dansk").click()
    page.get_by_role("link", name="Tilføj et indgreb").click()
    assert_accessible(page, "procedure entry (Danish)")
    day = timezone.localdate() - datetime.timedelta(days=2)
    page.locator("#id_date").fill(day.strftime("%d.%m.%Y"))
    page.locator("#id_technique").select_option("vertebroplasty")
    page.locator("#id_anaesthesia").select_option("local")
    page.locator("#id_image_guidance").select_option("fluoroscopy")
    page.locator("#id_indication").select_option("painful_fracture")
    page.locator("#id_levels-0-level").select_option(label="L2")
    page.locator("#id_levels-0-etiology").select_option("osteoporotic")
    page.locator("#id_levels-0-approach").select_option("bipedicular")
    page.locator("#id_levels-0-cement_volume_ml").fill("4,5")
    shoot(page, "staff-04-danish-entry")
    page.locator("input[name=_save]").click()
    page.wait_for_url(base + reverse("staff_record", args=[patient.registry_id]))
    added = Procedure.objects.get(patient=patient, date=day)
    assert str(added.levels.get().cement_volume_ml) == "4.5"
    assert "Tider vises i" in page.content()
    assert_accessible(page, "patient record (Danish)")
