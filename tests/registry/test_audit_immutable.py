"""The audit trail cannot be rewritten: a trigger refuses UPDATE and DELETE on every audit
(pghistory event) table, on the contexts that say who and where, and on the export log,
whoever sends the SQL."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import IntegrityError, InternalError, ProgrammingError, connection, transaction
from django.utils import timezone
from pghistory import context as pghistory_context
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


def triggers_on(table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
            [table],
        )
        return [row[0] for row in cursor.fetchall()]


def audit_tables() -> list[str]:
    return [*event_tables(), "api_exportlog"]


def test_no_session_setting_switches_the_refusal_off(history, manager):
    """The attack: ``SET LOCAL pgtrigger.ignore`` to the names of every trigger on the table
    (what ``pgtrigger.ignore()`` does), then UPDATE and DELETE. pgtrigger's own functions
    obeyed it on every event table and the export log."""
    log = export_log_start(user=manager, kind="export", resource="levels.csv", filters={})
    export_log_finish(log=log, rows=3, completed=True)
    for table in audit_tables():
        names = triggers_on(table)
        assert names, f"{table} has no trigger"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
            before = cursor.fetchone()[0]
        assert before > 0, table
        ignore = "SELECT set_config('pgtrigger.ignore', %s, true); "
        names = ["{" + ",".join(names) + "}"]
        column = "id = id" if table == "api_exportlog" else "pgh_id = pgh_id"
        assert refused(f"{ignore} UPDATE {table} SET {column}", names), table  # noqa: S608
        assert refused(f"{ignore} DELETE FROM {table}", names), table  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
            assert cursor.fetchone()[0] == before, table
        # and the trigger functions do not even read the setting
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT p.proname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid"
                " WHERE t.tgrelid = %s::regclass AND NOT t.tgisinternal"
                " AND (p.prosrc ILIKE '%%pgtrigger%%ignore%%'"
                " OR p.prosrc ILIKE '%%current_setting%%')"
                " AND t.tgtype & 24 <> 0",  # the UPDATE or DELETE triggers
                [table],
            )
            assert cursor.fetchall() == [], table


@pytest.mark.django_db(transaction=True)
def test_a_past_context_cannot_be_re_attributed_or_deleted(site_a):
    """The attack: set ``pghistory.context_id`` and ``pghistory.context_metadata`` to a past
    context and a manager's id, then UPDATE it, or let pghistory's own upsert do it by writing
    any tracked row; or DELETE it. The old guard compared the row with these two settings."""
    nurse = make_user("Site staff", site_a, username="nurse.aar")
    other = make_user("Registry manager", username="manager.x")
    patient = make_patient(site_a)
    with pghistory_context(user=nurse.pk, url="/admin/registry/patient/"):
        Patient.objects.filter(pk=patient.pk).update(karnofsky=80)  # committed: in the past
    with connection.cursor() as cursor:
        cursor.execute("SELECT id::text, metadata::text FROM pghistory_context")
        [(context_id, metadata)] = cursor.fetchall()
    forged = metadata.replace(str(nurse.pk), str(other.pk))
    assert forged != metadata
    settings = (
        "SELECT set_config('pghistory.context_id', %s, true),"
        " set_config('pghistory.context_metadata', %s, true),"
        " set_config('pgtrigger.ignore', '{registry_audit_context_protect}', true);"
    )
    rewrite = "UPDATE pghistory_context SET metadata = %s::jsonb WHERE id = %s"
    assert refused(f"{settings} {rewrite}", [context_id, forged, forged, context_id])
    # pghistory's own upsert, run by a tracked write, is the same UPDATE: refused too
    write = "UPDATE registry_patient SET karnofsky = 90 WHERE id = %s"
    assert refused(f"{settings} {write}", [context_id, forged, patient.pk])
    assert refused(f"{settings} DELETE FROM pghistory_context", [context_id, forged])  # noqa: S608
    assert refused(
        "UPDATE pghistory_context SET registry_txid = txid_current(), metadata = %s::jsonb",
        [forged],
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT metadata::text FROM pghistory_context WHERE id = %s", [context_id])
        assert cursor.fetchone()[0] == metadata
    patient.refresh_from_db()
    assert patient.karnofsky == 80


def test_pghistory_still_completes_the_context_of_its_own_transaction(site_a, staff_a):
    """The one UPDATE allowed: the running transaction's own context, as its user becomes
    known (an anonymous write, then a login, then a write in the same transaction)."""
    patient = make_patient(site_a)
    with pghistory_context(url="/admin/login/") as context:
        Patient.objects.filter(pk=patient.pk).update(karnofsky=60)
        pghistory_context(user=staff_a.pk)
        Patient.objects.filter(pk=patient.pk).update(karnofsky=70)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT metadata->>'user' FROM pghistory_context WHERE id = %s", [context.id]
        )
        assert cursor.fetchone()[0] == str(staff_a.pk)


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
