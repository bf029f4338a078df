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
            phone=f"+45 2011 000{int(consent)}",
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
    assert "+45 20 11 00 01" in html and "English" in html
    assert "+45 20 11 00 00" not in html


def test_an_auditor_sees_the_worklist_without_phone_numbers(client, site_a, worklist):
    client.force_login(make_user("Auditor", site_a))
    page = client.get(reverse("admin:outcomes_followup_changelist") + "?worklist=yes")
    assert page.status_code == 200
    assert "+45 20 11 00 01" not in page.content.decode()


def test_a_phone_note_saved_from_a_stale_page_keeps_the_state_the_chase_reached(
    client_a, worklist, monkeypatch
):
    """The admin's follow-up is loaded, the patient then submits (the follow-up completes),
    and the nurse's phone note is saved from the object loaded before: the follow-up stays
    completed (issue 25: no stale instance writes back a state)."""
    from outcomes.admin import FollowUpAdmin
    from outcomes.followups.services import followup_complete
    from outcomes.models import FollowUp

    followup = FollowUp.objects.get(
        procedure__patient=worklist["yes"], on_phone_worklist_since__isnull=False
    )
    stale = FollowUp.objects.get(pk=followup.pk)
    followup_complete(procedure_id=followup.procedure_id, timepoint=followup.timepoint)
    monkeypatch.setattr(FollowUpAdmin, "get_object", lambda self, request, object_id, *a: stale)
    url = reverse("admin:outcomes_followup_change", args=[followup.pk])
    data = {"phone_outcome": "", "phone_note": "rang twice"}
    for inline in client_a.get(url).context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data |= {management.add_prefix(k): v for k, v in management.initial.items()}
    response = client_a.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    followup.refresh_from_db()
    assert followup.phone_note == "rang twice"
    assert followup.state == FollowUp.State.COMPLETED and followup.completed_at is not None
