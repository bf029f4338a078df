import datetime

import pytest
from django.core.exceptions import ValidationError

from registry.models import Cohort, Patient, Site, TreatedLevel
from tests.factories import make_level, make_patient, make_procedure

E = TreatedLevel.Etiology


# The cohort rule is tested against its truth table on every combination of etiologies in
# tests/api/test_exports.py, where the ORM annotation and the exports are compared together.


def test_index_procedure_is_the_first_by_date(site_a):
    patient = make_patient(site_a)
    later = make_procedure(patient, E.METASTASIS, date=datetime.date(2026, 3, 1))
    first = make_procedure(patient, E.OSTEOPOROTIC, date=datetime.date(2026, 1, 5))
    annotated = Patient.objects.with_index_procedure().get(pk=patient.pk)
    assert annotated.index_procedure_id == first.pk != later.pk
    assert annotated.index_date == datetime.date(2026, 1, 5)
    assert annotated.index_cohort == Cohort.OSTEOPOROTIC


def test_levels_order_anatomically(site_a):
    procedure = make_procedure(make_patient(site_a))
    for level in (TreatedLevel.Level.L2, TreatedLevel.Level.T9, TreatedLevel.Level.C5):
        make_level(procedure, level=level)
    assert [str(lv.get_level_display()) for lv in procedure.levels.order_by("level")] == [
        "C5",
        "T9",
        "L2",
    ]


def test_region_of_levels(site_a):
    procedure = make_procedure(make_patient(site_a))
    regions = {
        label: make_level(procedure, level=value).region
        for value, label in [(7, "C7"), (8, "T1"), (19, "T12"), (20, "L1"), (25, "S1")]
    }
    assert regions == {
        "C7": "cervical",
        "T1": "thoracic",
        "T12": "thoracic",
        "L1": "lumbar",
        "S1": "sacral",
    }


def test_clean_explains_leakage_inconsistency_in_plain_words(site_a):
    procedure = make_procedure(make_patient(site_a), E.OSTEOPOROTIC)
    level = TreatedLevel(
        procedure=procedure,
        level=20,
        etiology=E.OSTEOPOROTIC,
        approach="bipedicular",
        cement_volume_ml=3,
        leakage_sites=["segmental_vein"],
    )
    with pytest.raises(ValidationError) as error:
        level.full_clean()
    assert "tick it or clear them" in str(error.value.message_dict["leakage_sites"])


def test_clean_refuses_death_before_procedure(site_a):
    patient = make_patient(site_a)
    make_procedure(patient, E.OSTEOPOROTIC, date=datetime.date(2026, 2, 1))
    patient.date_of_death = datetime.date(2026, 1, 20)
    with pytest.raises(ValidationError) as error:
        patient.full_clean()
    assert error.value.message_dict["date_of_death"] == [
        "The date of death is before this patient's procedure on 2026-02-01."
    ]


def test_clean_refuses_cement_volume_over_twenty_ml(site_a):
    procedure = make_procedure(make_patient(site_a), E.OSTEOPOROTIC)
    level = TreatedLevel(
        procedure=procedure,
        level=20,
        etiology=E.OSTEOPOROTIC,
        approach="bipedicular",
        cement_volume_ml="20.5",
    )
    with pytest.raises(ValidationError) as error:
        level.full_clean()
    assert "cement_volume_ml" in error.value.message_dict


@pytest.mark.parametrize(("version", "levels"), [("3L", 3), ("5L", 5)])
def test_eq5d_version_gives_the_answer_levels(version, levels):
    assert Site.EQ5DVersion(version).levels == levels
    assert Site(eq5d_version=version).eq5d_levels == levels
    assert len(Site.EQ5DVersion) == 2
