"""Rules the cohort report takes from their homes in registry/models.py, each tested once
against a truth table: the region of a level (Python and SQL), a complication related to the
procedure, age in completed years."""

import datetime
import importlib

import pytest
from django.db.models import F

from registry.models import (
    REGION_LEVELS,
    CompletedYears,
    Complication,
    Patient,
    TreatedLevel,
    levels_in_region,
    region_of_level,
)
from tests.factories import make_complication, make_level, make_patient, make_procedure

L = TreatedLevel.Level
REGION_TRUTH = {
    **{level: "cervical" for level in (L.C2, L.C3, L.C4, L.C5, L.C6, L.C7)},
    **{level: "thoracic" for level in range(L.T1, L.T12 + 1)},
    **{level: "lumbar" for level in range(L.L1, L.L5 + 1)},
    L.S1: "sacral",
}


def test_every_level_has_its_region_in_python():
    assert {level: region_of_level(level) for level in L.values} == REGION_TRUTH
    assert set(REGION_LEVELS) == set(TreatedLevel.Region)
    with pytest.raises(ValueError):
        region_of_level(1)


def test_the_sql_region_filter_agrees_with_python_on_every_level(site_a):
    procedure = make_procedure(make_patient(site_a))
    for level in L.values:
        make_level(procedure, level=level)
    levels = TreatedLevel.objects.filter(procedure=procedure)
    in_sql = {
        level: region
        for region in TreatedLevel.Region
        for level in levels.filter(levels_in_region(region)).values_list("level", flat=True)
    }
    assert in_sql == REGION_TRUTH


RELATION_TRUTH = {"definite": True, "probable": True, "possible": True, "unrelated": False}


def test_related_to_the_procedure_for_every_relation(site_a):
    procedure = make_procedure(make_patient(site_a), "osteoporotic")
    for relation in Complication.Relation.values:
        make_complication(procedure, relation=relation)
    related = set(Complication.objects.related_to_procedure().values_list("relation", flat=True))
    assert {r: r in related for r in Complication.Relation.values} == RELATION_TRUTH
    assert {
        r: r in Complication.RELATED_TO_PROCEDURE for r in Complication.Relation.values
    } == RELATION_TRUTH


@pytest.mark.parametrize(
    ("born", "on", "years"),
    [
        ("1950-03-01", "2025-02-28", 74),  # the day before the birthday
        ("1950-03-01", "2025-03-01", 75),  # on the birthday
        ("1952-02-29", "2025-02-28", 72),  # born on 29 February, non-leap year
        ("1952-02-29", "2025-03-01", 73),
        ("1952-02-29", "2024-02-29", 72),
    ],
)
def test_age_in_completed_years(site_a, born, on, years):
    patient = make_patient(
        site_a,
        date_of_birth=datetime.date.fromisoformat(born),
        consent_date=datetime.date(2024, 1, 1),
    )
    make_procedure(patient, "osteoporotic", date=datetime.date.fromisoformat(on))
    age = (
        Patient.objects.filter(pk=patient.pk)
        .annotate(age=CompletedYears(F("procedures__date"), F("date_of_birth")))
        .values_list("age", flat=True)
        .get()
    )
    assert age == years


def test_the_migration_marks_only_what_the_records_say_symptomatic(site_a):
    from django.apps import apps

    backfill = importlib.import_module("registry.migrations.0003_complication_symptomatic")
    procedure = make_procedure(make_patient(site_a))
    leaking = make_level(
        procedure,
        level=L.T12,
        cement_leakage=True,
        leakage_sites=["pulmonary_embolism"],
        leakage_detected_by="ct",
        leakage_symptomatic=True,
    )
    silent = make_level(
        procedure,
        level=L.L1,
        cement_leakage=True,
        leakage_sites=["pulmonary_embolism"],
        leakage_detected_by="ct",
    )
    made = {
        "symptomatic leakage": make_complication(procedure, type="symptomatic_leakage"),
        "embolism, symptomatic level": make_complication(
            procedure, type="pulmonary_embolism", treated_level=leaking
        ),
        "embolism, silent level": make_complication(
            procedure, type="pulmonary_embolism", treated_level=silent
        ),
        "embolism, no level": make_complication(procedure, type="pulmonary_embolism"),
        "haematoma": make_complication(procedure, type="haematoma"),
    }
    Complication.objects.update(symptomatic=None)
    backfill.mark_known_symptomatic(apps, None)
    after = {name: Complication.objects.get(pk=c.pk).symptomatic for name, c in made.items()}
    assert after == {
        "symptomatic leakage": True,
        "embolism, symptomatic level": True,
        "embolism, silent level": None,
        "embolism, no level": None,
        "haematoma": None,
    }
