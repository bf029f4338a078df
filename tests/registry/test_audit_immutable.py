"""The audit trail cannot be rewritten: a trigger refuses UPDATE and DELETE on every audit
(pghistory event) table, on the contexts that say who and where, and on the export log,
whoever sends the SQL."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import IntegrityError, InternalError, ProgrammingError, connection, transaction
from django.utils import timezone
from pghistory.models import Event

from api.models import ExportLog
from api.services import export_log_finish, export_log_start
from outcomes.consent.models import ConsentDocument
from outcomes.consent.services import consent_record_paper
from outcomes.followups.sweep import followups_ensure
from outcomes.models import ContactAttempt, FollowUp, PhoneCall
from outcomes.quality.queries import dataquery_answer, dataquery_raise
from outcomes.quality.saved_anyway import warning_acknowledge
from registry.models import Patient, RecordLock, Signature
from registry.warnings import EntryWarning
from tests.factories import (
    make_complication,
    make_contact,
    make_level,
    make_patient,
    make_procedure,
    make_response,
    make_user,
)

REFUSED = (InternalError, IntegrityError, ProgrammingError)


def event_tables() -> list[str]:
    tables = [
        model._meta.db_table
        for model in apps.get_models()
        if issubclass(model, Event) and not model._meta.abstract and not model._meta.proxy
    ]
    assert len(tables) >= 9  # every clinical model, follow-ups, responses, site membership
    return tables


def refused(sql: str, params=()) -> bool:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
    except REFUSED as error:
        assert "cannot" in str(error).lower(), error
        return True
    return False


@pytest.fixture
def history(site_a):
    """Events in every clinical table, written through the ORM."""
    patient = make_patient(site_a)
    make_contact(patient, email="karen@example.org")
    Patient.objects.filter(pk=patient.pk).update(karnofsky=70)
    procedure = make_procedure(patient)
    make_level(procedure)
    make_complication(procedure)
    make_response(procedure, "baseline", vas_pain=60)
    followups_ensure(procedure_ids=[procedure.pk])
    attempt = ContactAttempt.objects.create(
        site=site_a, kind="digest", digest_date=timezone.localdate()
    )
    ContactAttempt.objects.filter(pk=attempt.pk).update(status="sent")  # an UPDATE event too
    staff = make_user("Site staff")
    site_a.members.add(staff)
    monitor = make_user("Registry manager")
    query = dataquery_raise(user=monitor, record=patient, field_name="karnofsky", comment="70?")
    dataquery_answer(query=query, user=staff, answer="Checked in the notes: 70.")
    followup = FollowUp.objects.filter(procedure=procedure).first()
    call = PhoneCall.objects.create(
        followup=followup, called_at=timezone.now(), caller=staff, outcome="no_answer"
    )
    PhoneCall.objects.filter(pk=call.pk).update(undone_at=timezone.now(), undone_by=staff)
    warning_acknowledge(
        record=procedure,
        site=site_a,
        warnings=[EntryWarning("more_than_three_levels", "Four levels in one session.")],
        reason="Staged procedure was not possible.",
        user=staff,
    )
    # Record control and consent (issue 29): a lock lifted, a signature, a consent.
    lock = RecordLock.objects.create(patient=patient, reason="verified")
    RecordLock.objects.filter(pk=lock.pk).update(
        unlocked_at=timezone.now(), unlock_reason="correction"
    )
    Signature.objects.create(
        patient=patient, signer=staff, signer_name="S", meaning="reviewed", data_hash="0" * 64
    )
    document = ConsentDocument.objects.create(
        site=site_a,
        language="da",
        version="1",
        title="T",
        text="Tekst.",
        effective_from=timezone.localdate(),
    )
    consent_record_paper(
        patient=patient,
        document=document,
        user=staff,
        given_on=timezone.localdate(),
        answers={"agrees_registry": True},
        scan=b"%PDF-1.4",
        scan_name="s.pdf",
        content_type="application/pdf",
    )
    return patient


def test_raw_update_and_delete_on_every_event_table_are_refused(history):
    for table in event_tables():
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
            before = cursor.fetchone()[0]
        assert before > 0, f"{table} has no rows to protect"
        assert refused(f"UPDATE {table} SET pgh_label = 'rewritten'"), table  # noqa: S608
        assert refused(f"DELETE FROM {table}"), table  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
            assert cursor.fetchone()[0] == before
    # The tables did hold rows to protect.
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM registry_patientevent WHERE pgh_label = 'update'")
        assert cursor.fetchone()[0] == 1
        cursor.execute("SELECT count(*) FROM registry_sitememberevent")
        assert cursor.fetchone()[0] == 1


def test_audit_contexts_cannot_be_rewritten_or_deleted(client, site_a, manager):
    client.force_login(manager)
    client.post(
        f"/admin/registry/site/{site_a.pk}/change/",
        {
            "code": site_a.code, "name": "Renamed", "time_zone": site_a.time_zone,
            "contact_email": site_a.contact_email, "country": "DK", "eq5d_version": "5L",
            "eq5d_value_set": "DK-5L",
        },
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pghistory_context WHERE metadata ? 'url'")
        assert cursor.fetchone()[0] >= 1
    # pghistory may update only the context of the transaction that wrote it; the test's
    # requests ran in this transaction, so end that context as the request's end would.
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('pghistory.context_id', '', true)")
    assert refused("UPDATE pghistory_context SET metadata = '{}'::jsonb")
    assert refused("DELETE FROM pghistory_context")


def test_the_orm_cannot_delete_audit_rows_either(history):
    event_model = apps.get_model("registry", "PatientEvent")
    with pytest.raises(REFUSED), transaction.atomic():
        event_model.objects.all().delete()
    assert event_model.objects.count() == 2


def test_export_log_rows_close_once_and_are_never_deleted(manager):
    log = export_log_start(user=manager, kind="export", resource="levels.csv", filters={})
    export_log_finish(log=log, rows=12, completed=True)  # the one allowed change
    log.refresh_from_db()
    assert (log.rows, log.completed) == (12, True)

    assert refused("UPDATE api_exportlog SET rows = 0 WHERE id = %s", [log.pk])
    assert refused("DELETE FROM api_exportlog WHERE id = %s", [log.pk])
    open_log = export_log_start(user=manager, kind="export", resource="levels.csv", filters={})
    # while open, only its closing columns may change, never who or what
    assert refused("UPDATE api_exportlog SET resource = 'other' WHERE id = %s", [open_log.pk])
    assert refused(
        'UPDATE api_exportlog SET filters = \'{"site": ["X"]}\'::jsonb WHERE id = %s',
        [open_log.pk],
    )
    log.refresh_from_db()
    assert (log.rows, log.resource) == (12, "levels.csv")
    assert ExportLog.objects.filter(pk=open_log.pk, resource="levels.csv").exists()
    assert ExportLog.objects.filter(started_at__lte=timezone.now()).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_flush_between_tests_still_empties_the_audit_tables(site_a):
    """TRUNCATE (test teardown) is not an UPDATE or DELETE: the triggers leave it alone."""
    make_patient(site_a)
    from django.core.management import call_command

    call_command("flush", "--no-input", verbosity=0)
    assert apps.get_model("registry", "PatientEvent").objects.count() == 0
