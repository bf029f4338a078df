"""End to end in headless Chromium on a phone-sized screen: a patient consents through their
personal link in Danish and in English, with the keyboard only and with JavaScript switched
off, the pages pass axe, and the PDF snapshot they download hashes to the fingerprint shown
and holds exactly the text shown; a new version that requires it asks for re-consent."""

import datetime
import hashlib
import re

import pytest
from django.utils import timezone

from outcomes.consent.links import consent_link_issue, consent_link_url
from outcomes.consent.models import ConsentDocument, PatientConsent
from outcomes.consent.services import consent_status
from tests.e2e.axe import assert_accessible
from tests.e2e.test_questionnaire_browser import PHONE, browser, shoot  # noqa: F401
from tests.factories import make_contact, make_patient, make_site

TEXTS = {
    "da": (
        "Samtykke til registeret for rygbehandling",
        "Vi registrerer oplysninger om din behandling og dine svar i et kvalitetsregister.\n\n"
        "Du kan til enhver tid trække dit samtykke tilbage, også via dette link.",
    ),
    "en": (
        "Consent to the back treatment registry",
        "We record your treatment and your answers in a quality registry.\n\n"
        "You may withdraw your consent at any time, also through this link.",
    ),
}


def pdf_text(data: bytes) -> str:
    strings = re.findall(rb"\(((?:\\.|[^\\)])*)\) Tj", data)
    return " ".join(
        " ".join(re.sub(rb"\\(.)", rb"\1", s).decode("latin-1") for s in strings).split()
    )


def add_documents(site, version: str, days_ago: int, **fields):
    for language, (title, text) in TEXTS.items():
        ConsentDocument.objects.create(
            site=site,
            language=language,
            version=version,
            title=title,
            text=text,
            effective_from=timezone.localdate() - datetime.timedelta(days=days_ago),
            **fields,
        )


def tab_to(page, selector: str, limit: int = 30) -> None:
    """Press Tab until ``selector`` has the focus (keyboard only, as a patient would)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement.matches({selector!r})"):
            return
    raise AssertionError(f"{selector} never got the focus")


def consent_with_keyboard(browser, url: str, language: str, name: str) -> dict:  # noqa: F811
    """Give consent on ``url`` with the keyboard only and no JavaScript; what was shown."""
    context = browser.new_context(**PHONE, java_script_enabled=False)
    page = context.new_page()
    page.goto(url)
    assert page.locator("html").get_attribute("lang") == language
    shown = {
        "title": page.locator("#consent-title").inner_text(),
        "paragraphs": page.locator("#consent-text p").all_inner_texts(),
        "questions": page.locator(".consent-question").all_inner_texts(),
    }
    tab_to(page, "#id_agrees_registry")
    page.keyboard.press("Space")
    tab_to(page, "#id_agrees_contact")
    page.keyboard.press("Space")
    tab_to(page, "#id_typed_name")
    page.keyboard.type(name)
    page.keyboard.press("Enter")
    page.wait_for_url(url)
    shoot(page, f"consent-given-{language}")
    shown["fingerprint"] = page.locator("#snapshot-sha256").inner_text()
    shown["pdf"] = page.request.get(url + "copy.pdf").body()
    context.close()
    return shown


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", ["da", "en"])
def test_a_patient_consents_on_a_phone_and_the_pdf_is_what_was_shown(
    live_server,
    browser,  # noqa: F811
    settings,
    language,
):
    settings.SITE_URL = live_server.url
    site = make_site("ECO")
    add_documents(site, "1.0", days_ago=30)
    patient = make_patient(site)
    make_contact(patient, email="inger@example.org", preferred_language=language)
    url = consent_link_url(consent_link_issue(patient=patient, now=timezone.now()))
    assert url.startswith(live_server.url)

    # axe on the form as a patient's browser with JavaScript shows it
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.goto(url)
    assert_accessible(page, f"consent form ({language}, phone)")
    shoot(page, f"consent-form-{language}")
    context.close()

    shown = consent_with_keyboard(browser, url, language, "Inger Åse Hansen")

    consent = PatientConsent.objects.get(patient=patient)
    assert consent.document.language == language
    assert consent.typed_name == "Inger Åse Hansen"
    assert shown["fingerprint"] == consent.snapshot_sha256
    assert hashlib.sha256(shown["pdf"]).hexdigest() == consent.snapshot_sha256
    in_pdf = pdf_text(shown["pdf"])
    assert shown["title"] in in_pdf
    for text in shown["paragraphs"] + shown["questions"]:
        assert " ".join(text.split()) in in_pdf
    assert "Inger Åse Hansen" in in_pdf

    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.goto(url)
    assert_accessible(page, f"consent given ({language}, phone)")
    context.close()


@pytest.mark.django_db(transaction=True)
def test_a_new_version_that_requires_it_asks_for_re_consent(live_server, browser, settings):  # noqa: F811
    settings.SITE_URL = live_server.url
    site = make_site("ECR")
    add_documents(site, "1.0", days_ago=30)
    patient = make_patient(site)
    make_contact(patient, email="inger@example.org", preferred_language="da")
    first = consent_link_url(consent_link_issue(patient=patient, now=timezone.now()))
    consent_with_keyboard(browser, first, "da", "Inger Hansen")
    today = timezone.localdate()
    assert consent_status(patient, on=today)[1] == "current"

    add_documents(site, "2.0", days_ago=0, requires_reconsent=True)
    assert consent_status(patient, on=today)[1] == "reconsent"
    second = consent_link_url(consent_link_issue(patient=patient, now=timezone.now()))
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.goto(second)
    assert "Version 2.0" in page.locator("#consent-version").inner_text()
    context.close()
    consent_with_keyboard(browser, second, "da", "Inger Hansen")
    assert consent_status(patient, on=today)[1] == "current"
    versions = list(
        PatientConsent.objects.filter(patient=patient)
        .order_by("given_at")
        .values_list("document__version", flat=True)
    )
    assert versions == ["1.0", "2.0"]
