"""A research nurse's morning in Chromium, in English and in Danish, with axe-core on every
page: find a patient by name, register a likely duplicate (refused without a reason, saved
with one), land on the new record, and work the phone worklist: three calls with notes, one
of them undone."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from outcomes.followups.sweep import followups_ensure, followups_sweep
from outcomes.models import FollowUp, PhoneCall
from outcomes.quality.models import WarningAcknowledgement
from registry.models import Patient
from tests.e2e.axe import assert_accessible
from tests.e2e.test_questionnaire_browser import browser  # noqa: F401
from tests.factories import make_contact, make_patient, make_procedure, make_site, make_user

DESKTOP = {"viewport": {"width": 1366, "height": 900}}

WORDS = {
    "en": {
        "locale": "en-GB",
        "search": "Search",
        "open record": "open record",
        "save": "Save",
        "duplicate": "This may be a patient already registered at the site",
        "save anyway": "Save anyway",
        "reason": "Reason for saving anyway",
        "add procedure": "Add a procedure",
        "log": "Log the call",
        "outcome": "Outcome of the call",
        "note": "Note",
        "call back": "Call back at",
        "calls": "2 calls so far",
        "undo": "Undo",
        "undone": "undone by",
        "why": "No email or no consent to email",
    },
    "da": {
        "locale": "da-DK",
        "search": "Søg",
        "open record": "åbn journal",
        "save": "Gem",
        "duplicate": "Dette kan være en patient, der allerede er registreret på afdelingen",
        "save anyway": "Gem alligevel",
        "reason": "Begrundelse for at gemme alligevel",
        "add procedure": "Tilføj et indgreb",
        "log": "Registrér opkaldet",
        "outcome": "Udfald af opkaldet",
        "note": "Note",
        "call back": "Ring tilbage",
        "calls": "2 opkald indtil nu",
        "undo": "Fortryd",
        "undone": "fortrudt af",
        "why": None,  # the worklist reason's Danish label is checked through the page itself
    },
}


@pytest.fixture
def morning(browser, live_server, settings):  # noqa: F811
    settings.SITE_URL = live_server.url
    today = timezone.localdate()
    site = make_site("MRN", name="Morning Spine Centre")
    nurse = make_user("Site staff", site, username="nurse.morning")
    inger = make_patient(
        site, date_of_birth=datetime.date(1944, 2, 29), consent_date=today - datetime.timedelta(100)
    )
    make_contact(inger, name="Inger Østergaard", email="", phone="+45 20 30 40 50")
    procedure = make_procedure(inger, "osteoporotic", date=today - datetime.timedelta(days=91))
    followups_ensure(procedure_ids=[procedure.pk])
    followups_sweep(now=timezone.now())  # no email: the 3-month follow-up joins the worklist
    followup = FollowUp.objects.on_worklist().get(procedure=procedure)
    return nurse, inger, followup


def log_in(browser, base, nurse, language):  # noqa: F811
    context = browser.new_context(**DESKTOP, locale=WORDS[language]["locale"])
    page = context.new_page()
    page.goto(base + reverse("admin:login"))
    page.locator("#id_username").fill(nurse.username)
    page.locator("#id_password").fill("pw-for-tests-only")
    page.locator("#login-form input[type=submit]").click()
    page.wait_for_url(base + reverse("admin:index"))
    return context, page


@pytest.mark.parametrize("language", ["en", "da"])
def test_a_nurses_morning(browser, live_server, morning, language):  # noqa: F811
    words = WORDS[language]
    nurse, inger, followup = morning
    base = live_server.url
    context, page = log_in(browser, base, nurse, language)

    # Find the patient who rang, by name.
    page.goto(base + reverse("admin:registry_patient_changelist"))
    page.locator("#searchbar").fill("østergaard")
    page.locator("#changelist-search input[type=submit]").click()
    assert page.locator("#result_list tbody tr").count() == 1
    assert "Inger Østergaard" in page.locator("#result_list").inner_text()
    assert_accessible(page, f"patient list searched by name ({language})")
    page.get_by_role("link", name=words["open record"]).click()
    assert page.locator(".patient-name").inner_text() == "Inger Østergaard"
    assert_accessible(page, f"patient record ({language})")

    # Register her again by mistake: a likely duplicate needs a reason.
    page.goto(base + reverse("admin:registry_patient_add"))
    page.locator("#id_sex").select_option("female")
    page.locator("#id_date_of_birth").fill("29-02-1944")
    page.locator("#id_consent_date").fill(timezone.localdate().strftime("%d-%m-%Y"))
    page.locator("#id_contact-0-name").fill("Inger Østergård")
    page.locator("#id_contact-0-phone").fill("20304050")
    page.locator("input[name=_save]").click()
    # The answer is a new page: wait for its warning before reading it (content() taken while
    # it loads holds only its <head>).
    page.locator(".errornote").wait_for()
    assert words["duplicate"] in page.content()
    assert inger.registry_id in page.content()
    assert Patient.objects.count() == 1
    assert_accessible(page, f"likely duplicate refused ({language})")
    page.get_by_label(words["save anyway"]).check()
    page.get_by_label(words["reason"]).fill("Twin sister, checked with the ward")
    page.locator("input[name=_save]").click()
    # Saved with the reason, and the new record is where the next step starts.
    page.get_by_role("link", name=words["add procedure"]).wait_for()
    twin = Patient.objects.exclude(pk=inger.pk).get()
    assert page.url.endswith(reverse("staff_record", args=[twin.registry_id]))
    assert WarningAcknowledgement.objects.get(object_id=twin.pk).reason.startswith("Twin")
    assert_accessible(page, f"new patient's record ({language})")

    # The phone worklist: three calls with notes, one undone.
    due = base + reverse("staff_due_list")
    page.goto(due)
    row = page.locator(f"#worklist-{followup.pk}")
    assert "Inger Østergaard" in row.inner_text() and "+45 20 30 40 50" in row.inner_text()
    if words["why"]:
        assert words["why"] in row.locator(".worklist-reason").inner_text()
    assert_accessible(page, f"phone worklist ({language})")
    prefix = f"#id_call-{followup.pk}"
    for outcome, note in [("no_answer", "rang 10 times"), ("voicemail", "left a message")]:
        row = page.locator(f"#worklist-{followup.pk}")
        row.locator(f"{prefix}-outcome").select_option(outcome)
        row.locator(f"{prefix}-note").fill(note)
        row.get_by_role("button", name=words["log"]).click()
        page.wait_for_load_state("load")
    row = page.locator(f"#worklist-{followup.pk}")
    row.locator(f"{prefix}-outcome").select_option("refused")
    row.locator(f"{prefix}-note").fill("pressed the wrong button")
    row.get_by_role("button", name=words["log"]).click()
    page.wait_for_load_state("load")
    # The refusal took her off the list; the mistake is undone from today's calls.
    assert page.locator(f"#worklist-{followup.pk}").count() == 0
    taken_off = page.locator("#taken-off")
    assert "pressed the wrong button" in taken_off.inner_text()
    assert_accessible(page, f"phone worklist with a patient taken off ({language})")
    taken_off.get_by_role("button", name=words["undo"]).click()
    page.wait_for_load_state("load")
    row = page.locator(f"#worklist-{followup.pk}")
    text = row.inner_text()
    assert words["calls"] in text and "rang 10 times" in text and "left a message" in text
    assert words["undone"] in text
    assert_accessible(page, f"phone worklist after an undo ({language})")
    # Undo the voicemail too, with its own button this time.
    row.get_by_role("button", name=words["undo"]).last.click()
    page.wait_for_load_state("load")
    standing = PhoneCall.objects.standing().filter(followup=followup)
    assert [c.outcome for c in standing] == ["no_answer"]
    followup.refresh_from_db()
    assert followup.phone_outcome == "" and followup.state not in FollowUp.FINAL_STATES
    context.close()
