"""A research nurse's morning in Chromium, in English and in Danish, with axe-core on every
page: find a patient by name, register a likely duplicate (refused without a reason, saved
with one), land on the new record, enter its procedure with two levels, a complication and a
paper baseline typed as digits (a wrong box refused first), work the phone worklist (three
calls with notes, one of them undone) and answer a query on a patient's phone from the record
page."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from outcomes.followups.sweep import followups_ensure, followups_sweep
from outcomes.models import FollowUp, PhoneCall, QuestionnaireResponse
from outcomes.quality.models import DataQuery, WarningAcknowledgement
from outcomes.quality.queries import dataquery_raise
from outcomes.questionnaire import items
from registry.models import Complication, Patient, Procedure
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
        "add complication": "Add a complication",
        "enter answers": "Enter answers",
        "answer query": "Answer the query",
        "answered": "Query answered",
        "too short": "Type 5 characters, one per question in the printed order (4 typed).",
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
        "add complication": "Tilføj en komplikation",
        "enter answers": "Indtast svar",
        "answer query": "Besvar forespørgslen",
        "answered": "Forespørgsel besvaret",
        "too short": "Skriv 5 tegn, ét pr. spørgsmål i den trykte rækkefølge (4 skrevet).",
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
    # A monitor doubts the phone number on file (a query on a contact detail).
    dataquery_raise(
        user=make_user("Registry manager", username="monitor.morning"),
        record=inger,
        field_name="contact.phone",
        comment="The number is unobtainable: please check it.",
    )
    return nurse, inger, followup


def dated(day: datetime.date) -> str:
    return day.strftime("%d-%m-%Y")  # the registry's date entry, in both languages


def readback(language: str, instrument: str, typed: str) -> list[str]:
    """The lines the nurse should see under a box: every item's heading and answer text, in
    the page's language, built from the items' own wording (not from the page)."""
    with translation.override(language):
        if instrument == "eq5d":
            return [
                f"{heading}: {digit} – {dict(items.eq5d_choices(name, 5))[int(digit)]}"
                for (name, heading, _3, _5), digit in zip(items.EQ5D_DIMENSIONS, typed, strict=True)
            ]
        return [
            f"{heading}: "
            + (
                str(translation.gettext("not answered"))
                if digit == "-"
                else f"{digit} – {dict(items.odi_choices(name))[int(digit)]}"
            )
            for (name, heading, _answers), digit in zip(items.ODI_SECTIONS, typed, strict=True)
        ]


def enter_procedure_complication_and_baseline(page, base, words, language, twin):
    """From the new record: a procedure with two levels, a complication, and the paper
    baseline typed as digits (a short EQ-5D box refused first, nothing saved)."""
    record = base + reverse("staff_record", args=[twin.registry_id])
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    page.get_by_role("link", name=words["add procedure"]).click()
    page.locator("#id_levels-0-level").wait_for()
    page.locator("#id_date").fill(dated(yesterday))
    page.locator("#id_technique").select_option("vertebroplasty")
    page.locator("#id_anaesthesia").select_option("local")
    page.locator("#id_image_guidance").select_option("fluoroscopy")
    page.locator("#id_indication").select_option("painful_fracture")
    page.locator("#levels-group .add-row a").click()
    for row, level in enumerate(["L1", "L2"]):
        page.locator(f"#id_levels-{row}-level").select_option(label=level)
        page.locator(f"#id_levels-{row}-etiology").select_option("osteoporotic")
        page.locator(f"#id_levels-{row}-approach").select_option("bipedicular")
        page.locator(f"#id_levels-{row}-cement_volume_ml").fill("3")
    assert_accessible(page, f"procedure with two levels ({language})")
    page.locator("input[name=_save]").click()
    page.wait_for_url(record)
    procedure = Procedure.objects.get(patient=twin)
    assert sorted(level.get_level_display() for level in procedure.levels.all()) == ["L1", "L2"]
    procedure_block = page.locator(".procedure").first
    assert "L1" in page.content() and "L2" in page.content()

    page.get_by_role("link", name=words["add complication"]).click()
    page.locator(".field-patient .select2-container").wait_for()
    page.locator("#id_procedure").select_option(str(procedure.pk))
    page.locator("#id_date").fill(dated(yesterday))
    page.locator("#id_type").select_option("haematoma")
    page.locator("#id_cirse_grade").select_option("1")
    page.locator("#id_relation").select_option("probable")
    page.locator("#id_outcome").select_option("resolved")
    page.locator("#id_description").fill("Small haematoma at the puncture site")
    assert_accessible(page, f"complication entry ({language})")
    page.locator("input[name=_save]").click()
    page.wait_for_url(record)
    complication = Complication.objects.get(patient=twin)
    assert (complication.procedure_id, complication.relation) == (procedure.pk, "probable")
    with translation.override(language):
        assert str(complication.get_type_display()) in page.locator("#content").inner_text()

    # The paper baseline, typed: 5 digits for the EQ-5D, 10 for the ODI (- = unanswered).
    page.get_by_role("link", name=words["enter answers"]).first.click()
    eq5d = page.locator("#id_eq5d_digits")
    eq5d.wait_for()
    page.locator("#id_mode").select_option("paper")
    page.locator("#id_answered_on").fill(dated(yesterday))
    page.locator("#id_vas_pain").fill("80")
    eq5d.fill("1122")  # one digit short
    page.locator("input[name=_save]").click()
    page.locator(".errornote").wait_for()
    assert words["too short"] in page.locator(".field-eq5d_digits").inner_text()
    assert QuestionnaireResponse.objects.filter(procedure=procedure).count() == 0
    assert_accessible(page, f"typed digits refused ({language})")
    eq5d = page.locator("#id_eq5d_digits")
    eq5d.fill("12232")
    page.locator("#id_odi_digits").fill("3122121-22")
    # Read back as typed, beside each box, and the choices follow.
    shown = page.locator(".field-eq5d_digits .typed-readback li").all_inner_texts()
    assert shown == readback(language, "eq5d", "12232")
    shown = page.locator(".field-odi_digits .typed-readback li").all_inner_texts()
    assert shown == readback(language, "odi", "3122121-22")
    assert page.locator("input[name=eq5d_self_care][value='2']").is_checked()
    assert page.locator("input[name=odi_sex_life][value='']").is_checked()
    assert_accessible(page, f"typed digits read back ({language})")
    page.locator("input[name=_save]").click()
    page.wait_for_url(record)
    saved = QuestionnaireResponse.objects.get(procedure=procedure, timepoint="baseline")
    assert (saved.eq5d_state, saved.mode, saved.odi_sex_life) == ("12232", "paper", None)
    assert saved.odi_score is not None  # one section missing is scored on nine
    return procedure_block


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
    enter_procedure_complication_and_baseline(page, base, words, language, twin)

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

    # The monitor's query on her phone number, answered from her record page.
    page.goto(base + reverse("staff_record", args=[inger.registry_id]))
    panel = page.locator("section.open-queries")
    assert "The number is unobtainable: please check it." in panel.inner_text()
    assert_accessible(page, f"record with an open query ({language})")
    query = DataQuery.objects.get()
    panel.locator(f"#answer-{query.pk}").fill("Checked with her daughter: number corrected.")
    panel.get_by_role("button", name=words["answer query"]).click()
    page.locator(".messagelist").wait_for()
    assert words["answered"] in page.locator(".messagelist").inner_text()
    query.refresh_from_db()
    assert (query.state, query.answered_by) == ("answered", nurse)
    assert f"#answer-{query.pk}" not in page.content()
    assert_accessible(page, f"record after answering the query ({language})")
    context.close()
