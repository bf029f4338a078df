"""Electronic consent (outcomes.consent): the personal link, the immutable record with its PDF
snapshot and hash, the emailed copy, withdrawal that stops the chasing, re-consent when a new
version requires it, and paper consent with a scan."""

import datetime
import hashlib
import re

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from outcomes.consent.links import consent_link_issue
from outcomes.consent.models import ConsentDocument, PatientConsent
from outcomes.consent.services import consent_status
from outcomes.followups.sweep import followups_ensure
from outcomes.models import FollowUp
from tests.factories import make_contact, make_patient, make_procedure, make_user

TEXT_DA = (
    "Vi registrerer oplysninger om din behandling i et kvalitetsregister.\n\n"
    "Du kan til enhver tid trække dit samtykke tilbage (også via dette link)."
)


def document(site, *, version="1.0", language="da", days_ago=30, **fields):
    return ConsentDocument.objects.create(
        site=site,
        language=language,
        version=version,
        title="Samtykke til registeret" if language == "da" else "Consent to the registry",
        text=TEXT_DA if language == "da" else "We record your treatment.\n\nYou may withdraw.",
        effective_from=timezone.localdate() - datetime.timedelta(days=days_ago),
        **fields,
    )


def pdf_text(data: bytes) -> str:
    """The text of an uncompressed core-font PDF, lines joined by spaces."""
    strings = re.findall(rb"\(((?:\\.|[^\\)])*)\) Tj", data)
    text = " ".join(re.sub(rb"\\(.)", rb"\1", s).decode("latin-1") for s in strings)
    return " ".join(text.split())


@pytest.fixture
def patient(site_a):
    patient = make_patient(site_a)
    make_contact(
        patient, email="inger@example.org", preferred_language="da", consent_to_contact=False
    )
    return patient


def test_a_patient_consents_through_the_link_and_gets_the_snapshot_shown(
    client, patient, django_capture_on_commit_callbacks
):
    doc = document(patient.site)
    token = consent_link_issue(patient=patient, now=timezone.now())
    url = reverse("consent", args=[token])
    page = client.get(url)
    html = page.content.decode()
    assert page.status_code == 200 and 'lang="da"' in html
    assert "Vi registrerer oplysninger om din behandling" in html
    assert page["Content-Security-Policy"].startswith("default-src 'none'")

    refused = client.post(url, {"document": doc.pk, "typed_name": "Inger Hansen"})
    assert refused.status_code == 200 and not PatientConsent.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url,
            {
                "document": doc.pk,
                "agrees_registry": "on",
                "agrees_contact": "on",
                "typed_name": "Inger  Hansen",
            },
        )
    assert response.status_code == 302
    consent = PatientConsent.objects.get(patient=patient)
    assert (consent.mode, consent.typed_name, consent.agrees_contact) == (
        "link",
        "Inger Hansen",
        True,
    )
    patient.contact.refresh_from_db()
    assert patient.contact.consent_to_contact is True

    given = client.get(url).content.decode()
    assert consent.snapshot_sha256 in given
    copy = client.get(reverse("consent_copy", args=[token]))
    data = copy.content
    assert hashlib.sha256(data).hexdigest() == consent.snapshot_sha256
    shown = pdf_text(data)
    for paragraph in doc.paragraphs():
        assert paragraph in shown
    assert "Underskrevet ved at skrive navnet: Inger Hansen" in shown
    [message] = mail.outbox
    assert message.to == ["inger@example.org"]
    [(name, attached, kind)] = message.attachments
    assert kind == "application/pdf" and attached == data

    with pytest.raises(IntegrityError), transaction.atomic():
        PatientConsent.objects.filter(pk=consent.pk).update(typed_name="Someone Else")
    with pytest.raises(IntegrityError), transaction.atomic():
        ConsentDocument.objects.filter(pk=doc.pk).update(text="rewritten")


def test_replaced_expired_and_unknown_links_get_the_same_neutral_page(client, patient):
    document(patient.site)
    old = consent_link_issue(patient=patient, now=timezone.now())
    new = consent_link_issue(patient=patient, now=timezone.now())
    expired = consent_link_issue(
        patient=make_patient(patient.site), now=timezone.now() - datetime.timedelta(days=61)
    )
    for token in (old, expired, "x" * 43, "short"):
        page = client.get(reverse("consent", args=[token]))
        assert page.status_code == 404
        assert "This consent link is not open" in page.content.decode()
    assert client.get(reverse("consent", args=[new])).status_code == 200


def test_withdrawal_through_the_link_stops_the_chasing_at_once(client, patient):
    doc = document(patient.site)
    procedure = make_procedure(patient, "osteoporotic")
    followups_ensure(procedure_ids=[procedure.pk])
    token = consent_link_issue(patient=patient, now=timezone.now())
    url = reverse("consent", args=[token])
    client.post(url, {"document": doc.pk, "agrees_registry": "on", "typed_name": "Inger Hansen"})
    assert client.post(reverse("consent_withdraw", args=[token])).status_code == 302
    patient.refresh_from_db()
    assert patient.consent_withdrawn_date == timezone.localdate()
    consent = PatientConsent.objects.get(patient=patient)
    assert consent.withdrawal == "link" and consent.withdrawn_at is not None
    pending = FollowUp.objects.filter(procedure=procedure).exclude(state="completed")
    assert set(pending.values_list("state", flat=True)) == {"cancelled"}
    assert "Du trak dit samtykke tilbage" in client.get(url).content.decode()


def test_a_new_version_that_requires_it_asks_for_re_consent(client, patient):
    first = document(patient.site, version="1.0", days_ago=30)
    token = consent_link_issue(patient=patient, now=timezone.now())
    client.post(
        reverse("consent", args=[token]),
        {"document": first.pk, "agrees_registry": "on", "typed_name": "Inger Hansen"},
    )
    today = timezone.localdate()
    assert consent_status(patient, on=today)[1] == "current"
    document(patient.site, version="2.0", days_ago=0, requires_reconsent=False)
    assert consent_status(patient, on=today)[1] == "older"
    second = document(patient.site, version="3.0", days_ago=-1, requires_reconsent=True)
    assert consent_status(patient, on=today)[1] == "older"  # not yet in force
    ConsentDocument.objects.filter(pk=second.pk)  # in force tomorrow:
    assert consent_status(patient, on=today + datetime.timedelta(days=1))[1] == "reconsent"


def test_staff_record_paper_consent_with_a_scan_and_see_the_versions(client_a, patient, staff_a):
    doc = document(patient.site)
    url = reverse("consent_paper", args=[patient.registry_id])
    wrong = client_a.post(
        url,
        {
            "document": doc.pk,
            "given_on": "2026-01-05",
            "agrees_registry": "on",
            "scan": SimpleUploadedFile(
                "form.exe", b"MZ...", content_type="application/x-msdownload"
            ),
        },
    )
    assert wrong.status_code == 200 and not PatientConsent.objects.exists()
    scan = b"%PDF-1.4 signed paper form"
    response = client_a.post(
        url,
        {
            "document": doc.pk,
            "given_on": "2026-01-05",
            "agrees_registry": "on",
            "scan": SimpleUploadedFile("form.pdf", scan, content_type="application/pdf"),
        },
    )
    assert response.status_code == 302
    consent = PatientConsent.objects.get(patient=patient)
    assert (consent.mode, consent.recorded_by, consent.agrees_contact) == ("paper", staff_a, False)
    assert consent.scan_sha256 == hashlib.sha256(scan).hexdigest()
    assert bytes(consent.scan) == scan
    overview = client_a.get(reverse("consent_overview")).context["rows"]
    assert [(r["patient"], r["document"], str(r["state"])) for r in overview] == [
        (patient, doc, "consented to the version in force")
    ]
    record = client_a.get(reverse("staff_record", args=[patient.registry_id])).content.decode()
    assert "consented to the version in force" in record


def test_staff_withdrawal_marks_the_consents(client_a, patient, site_a):
    doc = document(site_a)
    token = consent_link_issue(patient=patient, now=timezone.now())
    client_a.post(
        reverse("consent", args=[token]),
        {"document": doc.pk, "agrees_registry": "on", "typed_name": "Inger Hansen"},
    )
    response = client_a.post(reverse("consent_staff_withdraw", args=[patient.registry_id]))
    assert response.status_code == 302
    consent = PatientConsent.objects.get(patient=patient)
    assert consent.withdrawal == "staff"
    patient.refresh_from_db()
    assert patient.consent_withdrawn_date is not None
    lead = make_user("Auditor", site_a)
    client_a.force_login(lead)
    assert (
        client_a.post(reverse("consent_staff_withdraw", args=[patient.registry_id])).status_code
        == 403
    )


def test_a_site_lead_adds_a_version_in_the_admin_and_it_cannot_be_edited(client, site_a):
    lead = make_user("Site lead", site_a)
    client.force_login(lead)
    data = {
        "site": site_a.pk,
        "language": "da",
        "version": "1.0",
        "title": "Samtykke",
        "text": "Tekst.",
        "asks_contact": "on",
        "effective_from": "2026-01-01",
    }
    url = reverse("admin:outcomes_consentdocument_add")
    assert client.post(url, data).status_code == 302
    doc = ConsentDocument.objects.get(site=site_a)
    again = client.post(url, data)
    assert again.status_code == 200 and ConsentDocument.objects.count() == 1
    page = client.get(reverse("admin:outcomes_consentdocument_change", args=[doc.pk]))
    assert page.context["has_change_permission"] is False
