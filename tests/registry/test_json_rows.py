"""registry.json_rows: children read in their parent's query come back as the instances the
ORM would have given, in the order asked for."""

import datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import OuterRef

from registry.json_rows import json_instances, json_rows
from registry.models import Procedure, RecordLock, TreatedLevel
from tests.factories import make_patient, make_procedure


def field_values(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def test_levels_come_back_equal_to_the_orms_and_in_order(site_a):
    procedure = make_procedure(make_patient(site_a), "osteoporotic", "metastasis", "haemangioma")
    TreatedLevel.objects.filter(procedure=procedure).update(
        cement_volume_ml=Decimal("3.0"),
        cement_leakage=True,
        leakage_sites=["segmental_vein"],
        leakage_detected_by="ct",
    )
    first = TreatedLevel.objects.filter(procedure=procedure).order_by("pk").first()
    first.cement_volume_ml = Decimal("12.5")
    first.save()
    ordered = TreatedLevel.objects.filter(procedure=procedure).order_by("-level", "pk")

    (row,) = Procedure.objects.filter(pk=procedure.pk).annotate(
        level_rows=json_rows(
            TreatedLevel.objects.filter(procedure=OuterRef("pk")).order_by("-level", "pk")
        )
    )
    levels = json_instances(TreatedLevel, row.level_rows)

    assert [field_values(level) for level in levels] == [field_values(o) for o in ordered]
    assert len(levels) == 3
    assert Decimal("12.5") in {level.cement_volume_ml for level in levels}
    assert all(type(level.cement_volume_ml) is Decimal for level in levels)
    assert all(not level._state.adding for level in levels)


def test_a_foreign_key_read_along_is_set_or_none(site_a, staff_a):
    patient = make_patient(site_a)
    procedure = make_procedure(patient, "osteoporotic")  # before the record is locked
    at = datetime.datetime(2026, 3, 2, 9, 30, tzinfo=datetime.UTC)
    locked = RecordLock.objects.create(
        patient=patient, reason="audit", locked_by=staff_a, locked_at=at
    )
    system = RecordLock.objects.create(
        patient=patient, procedure=procedure, timepoint="month_3", reason="system", locked_by=None
    )
    query = (
        type(patient)
        .objects.filter(pk=patient.pk)
        .annotate(
            lock_rows=json_rows(
                RecordLock.objects.filter(patient=OuterRef("pk")).order_by("pk"),
                related={"locked_by": ["id", "username"]},
            )
        )
    )

    locks = json_instances(
        RecordLock, query.get().lock_rows, related={"locked_by": get_user_model()}
    )

    assert [lock.pk for lock in locks] == [locked.pk, system.pk]
    assert locks[0].locked_at == at and locks[1].unlocked_at is None
    assert (locks[1].procedure_id, locks[1].timepoint) == (procedure.pk, "month_3")
    assert locks[0].locked_by.username == "staff.a" and locks[0].locked_by.pk == staff_a.pk
    assert locks[1].locked_by is None


def test_no_children_is_an_empty_list(site_a):
    patient = make_patient(site_a)
    query = (
        type(patient)
        .objects.filter(pk=patient.pk)
        .annotate(lock_rows=json_rows(RecordLock.objects.filter(patient=OuterRef("pk"))))
    )
    assert json_instances(RecordLock, query.get().lock_rows) == []
