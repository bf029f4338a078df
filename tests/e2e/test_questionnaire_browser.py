"""End to end in a real headless Chromium (Debian's package, driven by Playwright): the
patient opens the link from the invitation email on a phone-sized screen, answers in Danish,
leaves half-way, comes back, submits once, and the stored scores are the scoring functions'.

Screenshots of every step are kept under ``var/test-artifacts/e2e/`` (or
``$TEST_ARTIFACTS_DIR``), outside git.
"""

import datetime
import os
import re
import shutil
from pathlib import Path

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import sync_playwright

from outcomes.followups.sending import contact_attempt_send
from outcomes.followups.sweep import followups_ensure, followups_sweep
from outcomes.instruments.eq5d import eq5d_index
from outcomes.instruments.odi import odi_score
from outcomes.models import FollowUp, QuestionnaireResponse
from tests.e2e.axe import assert_accessible
from tests.factories import make_contact, make_patient, make_procedure, make_site
from tests.services import scaled

ARTIFACTS = Path(os.getenv("TEST_ARTIFACTS_DIR", Path(__file__).parents[2] / "var/test-artifacts"))
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture
def browser(monkeypatch):
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is missing: run the tests with `make test`"
    # Playwright's sync API runs an event loop in this thread; the test's own database
    # calls between browser steps are synchronous and safe.
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


@pytest.fixture
def invitation(live_server, settings):
    """A real invitation email for a 3-month follow-up whose window is open today."""
    settings.SITE_URL = live_server.url
    today = timezone.localdate()
    site = make_site("E2E", eq5d_version="5L", eq5d_value_set="DK-5L")
    patient = make_patient(site, consent_date=today - datetime.timedelta(days=100))
    make_contact(patient, email="inger@example.org", preferred_language="da")
    procedure = make_procedure(patient, "osteoporotic", date=today - datetime.timedelta(days=91))
    followups_ensure(procedure_ids=[procedure.pk])
    now = timezone.now()
    for attempt_id in followups_sweep(now=now).attempt_ids:
        contact_attempt_send(attempt_id=attempt_id, now=now)
    (message,) = [m for m in mail.outbox if m.to == ["inger@example.org"]]
    (link,) = re.findall(r"http\S+/q/\S+/", message.body)
    return FollowUp.objects.get(procedure=procedure, timepoint="month_3"), link


def shoot(page, name):
    folder = ARTIFACTS / "e2e"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def choose(page, *answers):
    for answer in answers:
        page.get_by_label(answer, exact=True).check()


def test_patient_answers_in_danish_on_a_phone_leaves_returns_and_submits_once(browser, invitation):
    followup, link = invitation
    context = browser.new_context(**PHONE, locale="da-DK")
    page = context.new_page()

    page.goto(link)
    assert page.locator("h1").inner_text() == "Dit spørgeskema: 3 måneder"
    assert page.locator("html").get_attribute("lang") == "da"
    assert "Trin 0" not in page.content()
    assert_accessible(page, "start (Danish, phone)")
    shoot(page, "01-start")
    page.get_by_role("link", name="Start").click()

    # Pain VAS: the slider shows no handle until touched (50 is not an answer), then sets
    # the number field.
    slider = page.locator("input[type=range]")
    assert slider.get_attribute("class") == "untouched"
    # Untouched, the slider's native look (with its handle at 50) is switched off.
    looks = "e => getComputedStyle(e).appearance"
    assert slider.evaluate(looks) == "none"
    assert page.get_by_text("Ikke besvaret endnu").is_visible()
    assert_accessible(page, "pain step (Danish, phone)")
    slider.fill("72")
    assert slider.get_attribute("class") == ""
    assert slider.evaluate(looks) != "none"
    assert page.get_by_label(re.compile("rygsmerter")).input_value() == "72"
    shoot(page, "02-pain")
    page.get_by_role("button", name="Gem og fortsæt").click()

    # EQ-5D-5L with one answer missing: the message appears beside that question.
    choose(
        page,
        "Jeg har lidt problemer med at gå omkring",
        "Jeg har ingen problemer med at vaske mig eller klæde mig på",
        "Jeg har moderate problemer med at udføre mine sædvanlige aktiviteter",
        "Jeg har stærke smerter eller stærkt ubehag",
    )
    page.get_by_role("button", name="Gem og fortsæt").click()
    error = page.locator("#id_eq5d_anxiety_depression_error")
    assert error.inner_text() == "Vælg venligst ét svar."
    assert page.locator("#errors").evaluate("e => e === document.activeElement")
    assert_accessible(page, "missing answer (Danish, phone, error state)")
    shoot(page, "03-health-missing-answer")
    choose(page, "Jeg er ikke ængstelig eller deprimeret")
    page.get_by_role("button", name="Gem og fortsæt").click()

    page.get_by_label(re.compile("helbred i dag")).fill("55")
    page.get_by_role("button", name="Gem og fortsæt").click()
    assert "Trin 4 af 6" in page.locator("#progress").inner_text()
    shoot(page, "04-left-half-way")
    context.close()

    # Back later through the same link: the answers are there, the next step is offered.
    context = browser.new_context(**PHONE, locale="da-DK")
    page = context.new_page()
    page.goto(link)
    assert "Velkommen tilbage" in page.content()
    page.get_by_role("link", name="Fortsæt").click()
    assert page.locator("h1").inner_text() == "Hvordan din ryg påvirker dagligdagen (1 af 2)"
    choose(
        page,
        "Smerterne er ret stærke i øjeblikket",
        "Jeg har brug for lidt hjælp, men klarer det meste af min personlige pleje",
        "Jeg kan løfte meget lette ting",
        "Smerterne forhindrer mig i at gå mere end 750 meter",
        "Jeg kan kun sidde i min yndlingsstol, så længe jeg vil",
    )
    shoot(page, "05-daily-life-1")
    page.get_by_role("button", name="Gem og fortsæt").click()
    # Keyboard only for the first question: Tab to its first answer, arrow down twice.
    page.locator("h1").click()
    page.keyboard.press("Tab")
    page.keyboard.press("Space")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert page.get_by_label(
        "Smerterne forhindrer mig i at stå mere end 1 time", exact=True
    ).is_checked()
    choose(
        page,
        "Smerterne forhindrer mig i at stå mere end 30 minutter",
        "Min søvn bliver af og til forstyrret af smerter",
        "Smerterne har begrænset mit sociale liv, og jeg går ikke så ofte ud",
        "Jeg kan rejse overalt, men det giver mig ekstra smerter",
    )
    page.get_by_role("button", name="Gem og fortsæt").click()

    assert page.locator("h1").inner_text() == "Kontrollér dine svar"
    assert_accessible(page, "check page (Danish, phone)")
    shoot(page, "06-check")
    page.get_by_role("button", name="Send mine svar").click()
    assert page.locator("h1").inner_text() == "Tak"
    shoot(page, "07-thanks")

    stored = QuestionnaireResponse.objects.get(procedure=followup.procedure, timepoint="month_3")
    assert (stored.mode, stored.vas_pain, stored.eq_vas) == ("web_link", 72, 55)
    assert stored.eq5d_state == "21341"
    assert float(stored.eq5d_index) == pytest.approx(eq5d_index("21341", "DK-5L"), abs=5e-4)
    assert stored.odi_answers == [3, 3, 4, 2, 1, 3, 1, None, 3, 1]
    assert float(stored.odi_score) == pytest.approx(
        odi_score([3, 3, 4, 2, 1, 3, 1, None, 3, 1]), abs=0.05
    )
    followup.refresh_from_db()
    assert followup.state == FollowUp.State.COMPLETED

    # The same link afterwards says the answers were received (only its holder sees that).
    response = page.goto(link)
    assert response.status == 200
    assert page.locator("h1").inner_text() == "Vi har allerede modtaget dine svar"
    assert_accessible(page, "received (Danish, phone)")
    shoot(page, "08-link-after-submit")
    page.goto(link + "?lang=en")
    assert page.locator("h1").inner_text() == "Your answers have already been received"
    assert_accessible(page, "received (English, phone)")
    page.goto(link.rsplit("/q/", 1)[0] + "/q/" + "A" * 43 + "/")
    assert page.locator("h1").inner_text() == "This link cannot be used"
    assert_accessible(page, "neutral page (English, phone)")
    context.close()


def test_questionnaire_works_with_javascript_off(browser, invitation):
    _followup, link = invitation
    context = browser.new_context(**PHONE, java_script_enabled=False, locale="en-GB")
    page = context.new_page()
    page.goto(link + "?lang=en")
    page.get_by_role("link", name="Start").click()

    assert page.locator("input[type=range]").count() == 0
    page.get_by_label(re.compile("back pain")).fill("35")
    page.get_by_role("button", name="Save and continue").click()

    assert page.locator("h1").inner_text() == "Your health today"
    shoot(page, "09-no-javascript")
    context.close()
