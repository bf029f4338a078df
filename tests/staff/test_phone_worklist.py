"""The admin's phone worklist: phone number and language, consenting patients only."""

import datetime

import pytest
from django.urls import reverse

from outcomes.followups.sweep import followups_ensure, followups_sweep
from tests.factories import make_contact, make_patient, make_procedure, make_user

PROCEDURE_DAY = datetime.date(2026, 1, 12)
IN_3_MONTH_WINDOW = datetime.datetime(2026, 4, 13, 8, tzinfo=datetime.UTC)


@pytest.fixture
def worklist(site_a):
    """Two 3-month follow-ups on the worklist (no email): one consenting, one not."""
    patients = {}
    for name, consent in (("yes", True), ("no", False)):
        patient = make_patient(site_a, consent_date=PROCEDURE_DAY)
        make_contact(
            patient,
            email="",
            phone=f"+45 1111 000{int(consent)}",
            consent_to_contact=consent,
            preferred_language="en" if consent else "da",
        )
        procedure = make_procedure(patient, "osteoporotic", date=PROCEDURE_DAY)
        followups_ensure(procedure_ids=[procedure.pk])
        patients[name] = patient
    followups_sweep(now=IN_3_MONTH_WINDOW)
    return patients


def test_worklist_shows_phone_and_language_of_consenting_patients_only(client_a, worklist):
    page = client_a.get(reverse("admin:outcomes_followup_changelist") + "?worklist=yes")
    html = page.content.decode()
    rows = [str(f) for f in page.context["cl"].result_list]
    assert any(worklist["yes"].registry_id in row for row in rows)
    assert not any(worklist["no"].registry_id in row for row in rows)
    assert "+45 1111 0001" in html and "English" in html
    assert "+45 1111 0000" not in html


def test_an_auditor_sees_the_worklist_without_phone_numbers(client, site_a, worklist):
    client.force_login(make_user("Auditor", site_a))
    page = client.get(reverse("admin:outcomes_followup_changelist") + "?worklist=yes")
    assert page.status_code == 200
    assert "+45 1111 0001" not in page.content.decode()
