"""GDPR erasure of a patient's contact details (``manage.py erase_contact``).

The attack is an auditor's: after the erasure, search a full ``pg_dump`` and the written
logs for any name, email address or phone number the patient ever had. Every past value sat
in the contact's append-only history (``registry_patientcontactevent``), which refuses
DELETE, so erasure was impossible; the history now never holds them."""

from __future__ import annotations

import json

import pghistory
import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from registry.models import Patient, PatientContact, Procedure
from tests.factories import make_level, make_patient, make_procedure
from tests.outcomes.test_token_redaction import full_dump, written_logs  # noqa: F401

OLD = {
    "name": "Karen Blixen-Rungsted",
    "email": "karen.rungsted@example.org",
    "phone": "+4520123456",
}
NEW = {
    "name": "Karen Dinesen-Rungsted",
    "email": "k.dinesen.rungsted@example.net",
    "phone": "+4520987654",
}


@pytest.mark.django_db(transaction=True)  # committed, so pg_dump sees every row
def test_after_erasure_no_dump_or_log_holds_any_contact_value(
    client,
    site_a,
    manager,
    written_logs,  # noqa: F811
):
    patient = make_patient(site_a, karnofsky=70)
    with transaction.atomic():
        make_level(make_procedure(patient))
    with pghistory.context(user=manager.pk, url="/admin/registry/patient/"):
        contact = PatientContact.objects.create(patient=patient, **OLD)
        PatientContact.objects.filter(pk=contact.pk).update(**NEW)  # a change: old and new
        Patient.objects.filter(pk=patient.pk).update(karnofsky=80)  # clinical, with history
    holder = SessionStore()
    holder["import_rows"] = f"{patient.registry_id};{NEW['email']}"  # an import in a session
    holder.create()
    bystander = SessionStore()
    bystander["x"] = "nothing personal"
    bystander.create()
    client.force_login(manager)
    client.get(f"/admin/registry/patient/{patient.pk}/change/")  # pages were logged
    before = full_dump()
    assert NEW["email"] in before and OLD["phone"] not in before  # the history never held it

    call_command(
        "erase_contact", patient.registry_id, "--reason", "Request of 2026-12-01, case 17",
        "--operator", "dpo",
    )  # fmt: skip

    dump = full_dump()
    logs = written_logs.getvalue()
    for value in [*OLD.values(), *NEW.values()]:
        assert value not in dump, value
        assert value not in logs, value
    # the clinical record and its audit stay
    assert patient.registry_id in dump
    assert Procedure.objects.filter(patient=patient).count() == 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM registry_patientevent WHERE karnofsky = 80 AND id = %s",
            [patient.pk],
        )
        assert cursor.fetchone()[0] == 1
        # the erasure is audited: the deletion, when, why and by whom
        cursor.execute(
            "SELECT e.pgh_label, c.metadata FROM registry_patientcontactevent e"
            " JOIN pghistory_context c ON c.id = e.pgh_context_id"
            " WHERE e.patient_id = %s ORDER BY e.pgh_id",
            [patient.pk],
        )
        events = cursor.fetchall()
    labels = [label for label, _ in events]
    assert (labels[0], labels[-1]) == ("insert", "delete")
    assert sorted(labels[1:-1]) == ["email.changed", "name.changed", "phone.changed"]
    metadata = events[-1][1] if isinstance(events[-1][1], dict) else json.loads(events[-1][1])
    assert metadata["erasure"] == "Request of 2026-12-01, case 17"
    assert metadata["operator"] == "dpo"
    # the session holding a value ended; the others did not
    assert not SessionStore().exists(holder.session_key)
    assert SessionStore().exists(bystander.session_key)
    assert not PatientContact.objects.filter(patient=patient).exists()


def test_erasure_needs_a_reason_and_a_patient_with_contact_details(site_a):
    patient = make_patient(site_a)
    with pytest.raises(CommandError, match="reason"):
        call_command("erase_contact", patient.registry_id, "--reason", "  ")
    with pytest.raises(CommandError, match="no contact details"):
        call_command("erase_contact", patient.registry_id, "--reason", "Request 17")
    with pytest.raises(CommandError, match="No patient"):
        call_command("erase_contact", "AAA-999999", "--reason", "Request 17")
