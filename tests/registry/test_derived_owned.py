"""The columns the database derives (``Procedure.cohort``, ``Patient.index_procedure``,
``Patient.index_cohort``) are written by the database only: a stale instance's ``save()``,
``bulk_update()`` or a ``QuerySet.update()`` that names them leaves the value of the rule.

The adversary is any code that keeps an instance across a change made elsewhere (a task, an
import, a script, a shell session, a concurrent admin save) and saves it afterwards."""

import datetime

import pytest
from django.db import connection, transaction

from registry.models import Cohort, Patient, Procedure, TreatedLevel
from tests.factories import make_patient, make_procedure

E = TreatedLevel.Etiology
JAN = datetime.date(2026, 1, 5)
MAR = datetime.date(2026, 3, 1)


def stored_index(patient) -> tuple:
    return Patient.objects.values_list("index_procedure_id", "index_cohort").get(pk=patient.pk)


def stored_cohort(procedure) -> str:
    return Procedure.objects.values_list("cohort", flat=True).get(pk=procedure.pk)


@pytest.fixture
def issue_25(site_a):
    """The reproduction of issue 25: a patient and their pathologic procedure, both instances
    held from before the procedure and its level were written."""
    patient = make_patient(site_a, date_of_birth=datetime.date(1950, 1, 1))
    with transaction.atomic():
        procedure = Procedure.objects.create(
            patient=patient,
            date=JAN,
            technique="vertebroplasty",
            anaesthesia="local",
            image_guidance="fluoroscopy",
            indication="painful_fracture",
        )
        TreatedLevel.objects.create(
            procedure=procedure,
            level=TreatedLevel.Level["L1"].value,
            etiology=E.METASTASIS,
            approach="bipedicular",
            cement_volume_ml=3,
        )
    assert stored_index(patient) == (procedure.pk, Cohort.PATHOLOGIC)
    assert stored_cohort(procedure) == Cohort.PATHOLOGIC
    return patient, procedure


# --- Patient.index_procedure and Patient.index_cohort -----------------------------------


def test_a_stale_patient_saved_keeps_its_index(issue_25):
    patient, procedure = issue_25
    patient.date_of_death = MAR
    patient.cause_of_death = "other"
    patient.save()
    assert stored_index(patient) == (procedure.pk, Cohort.PATHOLOGIC)
    # The saved instance shows the stored truth, not what it held.
    assert (patient.index_procedure_id, patient.index_cohort) == (procedure.pk, Cohort.PATHOLOGIC)


def test_a_stale_patient_saved_with_update_fields_naming_the_index_keeps_it(issue_25):
    patient, procedure = issue_25
    patient.index_cohort = Cohort.OSTEOPOROTIC
    patient.save(update_fields=["index_cohort", "index_procedure"])
    assert stored_index(patient) == (procedure.pk, Cohort.PATHOLOGIC)


def test_bulk_update_of_stale_patients_keeps_their_index(issue_25):
    patient, procedure = issue_25
    patient.karnofsky = 70
    Patient.objects.bulk_update([patient], ["karnofsky", "index_procedure", "index_cohort"])
    assert stored_index(patient) == (procedure.pk, Cohort.PATHOLOGIC)
    assert Patient.objects.get(pk=patient.pk).karnofsky == 70


def test_queryset_update_naming_the_index_procedure_keeps_it(issue_25):
    patient, procedure = issue_25
    Patient.objects.filter(pk=patient.pk).update(index_procedure=None)
    assert stored_index(patient) == (procedure.pk, Cohort.PATHOLOGIC)


def test_queryset_update_naming_the_index_cohort_keeps_it(issue_25):
    patient, procedure = issue_25
    Patient.objects.filter(pk=patient.pk).update(index_cohort=Cohort.OTHER)
    assert stored_index(patient) == (procedure.pk, Cohort.PATHOLOGIC)


def test_raw_sql_naming_the_index_keeps_it(issue_25):
    patient, procedure = issue_25
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE registry_patient SET index_procedure_id = NULL, index_cohort = 'other'"
            " WHERE id = %s",
            [patient.pk],
        )
    assert stored_index(patient) == (procedure.pk, Cohort.PATHOLOGIC)


# --- Procedure.cohort ----------------------------------------------------------------------


def test_a_stale_procedure_saved_keeps_its_cohort(issue_25):
    patient, procedure = issue_25
    procedure.notes = "corrected"
    procedure.save()
    assert stored_cohort(procedure) == Cohort.PATHOLOGIC
    assert stored_index(patient) == (procedure.pk, Cohort.PATHOLOGIC)
    assert procedure.cohort == Cohort.PATHOLOGIC


def test_a_procedure_saved_with_update_fields_naming_the_cohort_keeps_it(issue_25):
    _, procedure = issue_25
    procedure.cohort = Cohort.OSTEOPOROTIC
    procedure.save(update_fields=["cohort"])
    assert stored_cohort(procedure) == Cohort.PATHOLOGIC


def test_bulk_update_of_stale_procedures_keeps_their_cohort(issue_25):
    patient, procedure = issue_25
    procedure.operator = "Dr. Bulk"
    Procedure.objects.bulk_update([procedure], ["operator", "cohort"])
    assert stored_cohort(procedure) == Cohort.PATHOLOGIC
    assert stored_index(patient) == (procedure.pk, Cohort.PATHOLOGIC)
    assert Procedure.objects.get(pk=procedure.pk).operator == "Dr. Bulk"


def test_queryset_update_naming_the_cohort_keeps_it(issue_25):
    patient, procedure = issue_25
    Procedure.objects.filter(pk=procedure.pk).update(cohort=Cohort.OTHER)
    assert stored_cohort(procedure) == Cohort.PATHOLOGIC
    assert stored_index(patient) == (procedure.pk, Cohort.PATHOLOGIC)


def test_a_stale_instance_does_not_undo_a_later_change_of_the_rule_inputs(site_a):
    """The cohort changes after the instance was loaded; saving it keeps the new cohort."""
    patient = make_patient(site_a)
    procedure = make_procedure(patient, E.OSTEOPOROTIC, date=JAN)
    stale_patient = Patient.objects.get(pk=patient.pk)
    stale_procedure = Procedure.objects.get(pk=procedure.pk)
    TreatedLevel.objects.filter(procedure=procedure).update(etiology=E.MULTIPLE_MYELOMA)
    earlier = make_procedure(patient, E.OSTEOPOROTIC, date=JAN - datetime.timedelta(days=3))
    stale_procedure.notes = "late edit"
    stale_procedure.save()
    stale_patient.karnofsky = 80
    stale_patient.save()
    assert stored_cohort(procedure) == Cohort.PATHOLOGIC
    assert stored_index(patient) == (earlier.pk, Cohort.OSTEOPOROTIC)


def test_saving_with_only_derived_update_fields_writes_nothing(issue_25):
    patient, _ = issue_25
    before = Patient.objects.values_list("updated_at", flat=True).get(pk=patient.pk)
    patient.save(update_fields=["index_cohort"])
    assert Patient.objects.values_list("updated_at", flat=True).get(pk=patient.pk) == before
