"""Invariants are enforced by PostgreSQL itself, not only by forms.

Each case writes through ``QuerySet.update()`` or ``create()`` (no ``full_clean``) and expects
the database to refuse with the named constraint.
"""

import datetime
from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from registry.models import Complication, Patient, Procedure, Site, TreatedLevel
from tests.factories import make_complication, make_level, make_patient, make_procedure


@contextmanager
def refused(constraint: str):
    """Expect PostgreSQL to refuse the write, naming ``constraint``."""
    with pytest.raises(IntegrityError) as error, transaction.atomic():
        yield
    assert error.value.__cause__.diag.constraint_name == constraint


@pytest.fixture
def procedure(site_a):
    return make_procedure(make_patient(site_a), "osteoporotic")


@pytest.mark.parametrize(
    ("changes", "constraint"),
    [
        ({"karnofsky": 55}, "patient_karnofsky_0_100_step_10"),
        ({"karnofsky": 110}, "patient_karnofsky_0_100_step_10"),
        ({"asa_class": 0}, "patient_asa_class_1_6"),
        ({"asa_class": 7}, "patient_asa_class_1_6"),
        ({"date_of_death": datetime.date(1949, 1, 1)}, "patient_death_after_birth"),
        ({"cause_of_death": "other"}, "patient_cause_of_death_needs_date"),
        ({"consent_date": datetime.date(1940, 1, 1)}, "patient_consent_after_birth"),
        ({"consent_withdrawn_date": datetime.date(2000, 1, 1)}, "patient_withdrawal_after_consent"),
        ({"sex": "other"}, "patient_sex_valid"),
        ({"primary_tumour": "spleen"}, "patient_primary_tumour_valid"),
        ({"registry_id": "1234567890-national"}, "patient_registry_id_format"),
    ],
)
def test_patient_invariants_refused_by_database(site_a, changes, constraint):
    patient = make_patient(site_a)
    with refused(constraint):
        Patient.objects.filter(pk=patient.pk).update(**changes)


def test_karnofsky_accepts_steps_of_ten(site_a):
    patient = make_patient(site_a)
    Patient.objects.filter(pk=patient.pk).update(karnofsky=70, asa_class=6)
    patient.refresh_from_db()
    assert (patient.karnofsky, patient.asa_class) == (70, 6)


def test_death_before_procedure_refused_by_trigger(procedure):
    with refused("patient_death_not_before_procedure"):
        Patient.objects.filter(pk=procedure.patient_id).update(
            date_of_death=procedure.date - datetime.timedelta(days=1)
        )


def test_procedure_after_death_refused_by_trigger(site_a):
    patient = make_patient(site_a, date_of_death=datetime.date(2026, 1, 1))
    with refused("procedure_date_within_patient_life"):
        make_procedure(patient, "osteoporotic", date=datetime.date(2026, 1, 2))


def test_procedure_on_day_of_death_allowed(site_a):
    patient = make_patient(site_a, date_of_death=datetime.date(2026, 1, 1))
    procedure = make_procedure(patient, "osteoporotic", date=datetime.date(2026, 1, 1))
    assert Procedure.objects.filter(pk=procedure.pk).exists()


@pytest.mark.parametrize(
    ("changes", "constraint"),
    [
        ({"cement_volume_ml": Decimal("0")}, "treatedlevel_cement_volume_0_20"),
        ({"cement_volume_ml": Decimal("20.1")}, "treatedlevel_cement_volume_0_20"),
        ({"genant_grade": 4}, "treatedlevel_genant_0_3"),
        ({"level": 1}, "treatedlevel_level_c2_s1"),
        ({"level": 26}, "treatedlevel_level_c2_s1"),
        ({"etiology": "tumour"}, "treatedlevel_etiology_valid"),
        ({"leakage_sites": ["segmental_vein"]}, "treatedlevel_leakage_details_consistent"),
        ({"leakage_symptomatic": True}, "treatedlevel_leakage_details_consistent"),
        ({"cement_leakage": True}, "treatedlevel_leakage_details_consistent"),
        (
            {"cement_leakage": True, "leakage_sites": ["kidney"], "leakage_detected_by": "ct"},
            "treatedlevel_leakage_sites_valid",
        ),
    ],
)
def test_treated_level_invariants_refused_by_database(procedure, changes, constraint):
    level = procedure.levels.get()
    with refused(constraint):
        TreatedLevel.objects.filter(pk=level.pk).update(**changes)


def test_twenty_ml_and_a_recorded_leak_are_accepted(procedure):
    level = procedure.levels.get()
    TreatedLevel.objects.filter(pk=level.pk).update(
        level=TreatedLevel.Level.L1,  # 20 mL is a lumbar maximum (registry.validation)
        cement_volume_ml=Decimal("20.0"),
        cement_leakage=True,
        leakage_sites=["segmental_vein", "intradiscal"],
        leakage_detected_by="radiograph_3m",
    )
    level.refresh_from_db()
    assert level.leakage_sites == ["segmental_vein", "intradiscal"]


def test_one_row_per_procedure_and_level(procedure):
    existing = procedure.levels.get()
    with refused("treatedlevel_one_row_per_level"):
        make_level(procedure, level=existing.level)


@pytest.mark.parametrize(
    ("changes", "constraint"),
    [
        ({"cirse_grade": 0}, "complication_cirse_grade_1_6"),
        ({"cirse_grade": 7}, "complication_cirse_grade_1_6"),
        ({"cirse_grade": 6}, "complication_grade_6_iff_fatal"),
        ({"outcome": "fatal"}, "complication_grade_6_iff_fatal"),
        ({"type": "death"}, "complication_death_is_grade_6"),
        ({"relation": "maybe"}, "complication_relation_valid"),
    ],
)
def test_complication_invariants_refused_by_database(procedure, changes, constraint):
    complication = make_complication(procedure)
    with refused(constraint):
        Complication.objects.filter(pk=complication.pk).update(**changes)


def test_complication_must_belong_to_the_procedures_patient(procedure, site_a):
    other_patient = make_patient(site_a)
    with refused("complication_procedure_of_patient"):
        make_complication(procedure, patient=other_patient)


def test_complication_level_must_belong_to_its_procedure(procedure, site_a):
    other = make_procedure(make_patient(site_a), "osteoporotic")
    with refused("complication_level_of_procedure"):
        make_complication(procedure, treated_level=other.levels.get())


@pytest.mark.parametrize(
    ("changes", "constraint"),
    [
        ({"eq5d_value_set": "UK-3L"}, "site_value_set_matches_version"),
        ({"code": "lower"}, "site_code_format"),
        ({"eq5d_version": "4L"}, "site_eq5d_version_valid"),
    ],
)
def test_site_invariants_refused_by_database(site_a, changes, constraint):
    with refused(constraint):
        Site.objects.filter(pk=site_a.pk).update(**changes)


def test_contraindications_must_be_known_values(procedure):
    with refused("procedure_absolute_contraindications_valid"):
        Procedure.objects.filter(pk=procedure.pk).update(absolute_contraindications=["bogus"])
    Procedure.objects.filter(pk=procedure.pk).update(absolute_contraindications=["infection"])
    procedure.refresh_from_db()
    assert procedure.absolute_contraindications == ["infection"]
