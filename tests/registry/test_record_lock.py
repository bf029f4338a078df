"""A locked record refuses every change in the database itself (registry.locking): ORM saves,
bulk writes, raw SQL as the application's role; derived columns are still recomputed, and a
change after an unlock with a reason goes through. Signatures are voided by a later change."""

import datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from pghistory.models import Events

from registry.locking import is_lock_refusal
from registry.models import Cohort, Patient, Procedure, RecordLock, Signature, TreatedLevel
from tests.factories import make_complication, make_patient, make_procedure, make_response

E = TreatedLevel.Etiology
HASH = "0" * 64


def lock(patient, **fields):
    return RecordLock.objects.create(patient=patient, reason="verified for paper 1", **fields)


def refused(write) -> str:
    """The message of the database's refusal of ``write``."""
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        write()
    assert is_lock_refusal(caught.value)
    return str(caught.value)


@pytest.fixture
def locked(site_a):
    patient = make_patient(site_a)
    procedure = make_procedure(patient, E.OSTEOPOROTIC)
    make_complication(procedure)
    make_response(procedure, "baseline", vas_pain=60)
    lock(patient)
    return patient


@pytest.mark.django_db
def test_every_clinical_table_refuses_orm_writes_to_a_locked_record(locked):
    procedure = locked.procedures.get()
    level = procedure.levels.get()
    response = procedure.responses.get()
    message = refused(lambda: Patient.objects.filter(pk=locked.pk).update(karnofsky=60))
    assert locked.registry_id in message and "locked" in message
    refused(lambda: Procedure.objects.filter(pk=procedure.pk).update(notes="changed"))
    refused(lambda: TreatedLevel.objects.filter(pk=level.pk).update(cement_volume_ml=9))
    refused(lambda: locked.complications.update(description="changed"))
    refused(lambda: type(response).objects.filter(pk=response.pk).update(vas_pain=10))
    refused(lambda: make_complication(procedure))
    refused(lambda: make_procedure(locked, E.METASTASIS, date=procedure.date))
    refused(lambda: level.delete())
    refused(lambda: response.delete())
    locked.refresh_from_db()
    assert locked.karnofsky is None
    assert procedure.levels.get().cement_volume_ml == level.cement_volume_ml


@pytest.mark.django_db
def test_raw_sql_as_the_application_role_is_refused(locked):
    def raw():
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE registry_treatedlevel SET etiology = 'metastasis' "
                "WHERE procedure_id IN (SELECT id FROM registry_procedure WHERE patient_id = %s)",
                [locked.pk],
            )

    refused(raw)
    assert locked.procedures.get().cohort == Cohort.OSTEOPOROTIC


@pytest.mark.django_db
def test_a_save_that_changes_nothing_and_derived_recomputation_pass(locked):
    locked.save()  # the admin's save of an unchanged form: updated_at only
    procedure = locked.procedures.get()
    with connection.cursor() as cursor:
        # A stale stored cohort is put right even on a locked record: it is not data.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE registry_procedure SET cohort = 'other' WHERE id = %s", [procedure.pk]
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
        from registry.models import recompute_all

        recompute_all(cursor)
    procedure.refresh_from_db()
    assert procedure.cohort == Cohort.OSTEOPOROTIC


@pytest.mark.django_db
def test_a_withdrawal_can_be_recorded_on_a_locked_record_but_not_changed(locked):
    day = locked.consent_date + datetime.timedelta(days=2)
    Patient.objects.filter(pk=locked.pk).update(consent_withdrawn_date=day)
    locked.refresh_from_db()
    assert locked.consent_withdrawn_date == day
    refused(lambda: Patient.objects.filter(pk=locked.pk).update(consent_withdrawn_date=None))


@pytest.mark.django_db
def test_other_patients_and_a_follow_up_lock_only_lock_their_own_data(locked, site_a):
    other = make_patient(site_a)
    procedure = make_procedure(other, E.OSTEOPOROTIC)
    Patient.objects.filter(pk=other.pk).update(karnofsky=70)
    lock(other, procedure=procedure, timepoint="month_3")
    # The patient's own data and another timepoint stay open ...
    Patient.objects.filter(pk=other.pk).update(karnofsky=80)
    make_response(procedure, "baseline", vas_pain=50)
    # ... the locked timepoint's response does not.
    refused(lambda: make_response(procedure, "month_3", vas_pain=20))


@pytest.mark.django_db
def test_an_active_lock_cannot_be_deleted_or_edited_only_unlocked_with_a_reason(locked):
    record_lock = RecordLock.objects.get(patient=locked)
    refused(lambda: record_lock.delete())
    with pytest.raises(IntegrityError), transaction.atomic():
        RecordLock.objects.filter(pk=record_lock.pk).update(reason="something else")
    with pytest.raises(IntegrityError), transaction.atomic():
        RecordLock.objects.filter(pk=record_lock.pk).update(unlocked_at=timezone.now())
    RecordLock.objects.filter(pk=record_lock.pk).update(
        unlocked_at=timezone.now(), unlock_reason="correction requested by monitor"
    )
    Patient.objects.filter(pk=locked.pk).update(karnofsky=60)
    locked.refresh_from_db()
    assert locked.karnofsky == 60
    labels = list(
        Events.objects.tracks(record_lock).order_by("pgh_id").values_list("pgh_label", flat=True)
    )
    assert labels == ["insert", "update"]


@pytest.mark.django_db
def test_a_change_voids_the_signatures_over_it_and_only_those(site_a, staff_a):
    patient = make_patient(site_a)
    procedure = make_procedure(patient, E.OSTEOPOROTIC)
    whole = Signature.objects.create(
        patient=patient, signer=staff_a, signer_name="A", meaning="reviewed", data_hash=HASH
    )
    month3 = Signature.objects.create(
        patient=patient,
        procedure=procedure,
        timepoint="month_3",
        signer=staff_a,
        signer_name="A",
        meaning="reviewed",
        data_hash=HASH,
    )
    patient.save()  # no change: both stay valid
    procedure.levels.update(cement_volume_ml=5)
    whole.refresh_from_db()
    month3.refresh_from_db()
    assert whole.voided_at is not None
    assert whole.void_reason == "the signed data changed after signing"
    assert month3.voided_at is None
    make_response(procedure, "month_3", vas_pain=30)
    month3.refresh_from_db()
    assert month3.voided_at is not None
    with pytest.raises(IntegrityError), transaction.atomic():
        Signature.objects.filter(pk=month3.pk).update(voided_at=None, void_reason="")
