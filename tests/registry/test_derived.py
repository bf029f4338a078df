"""The stored cohort and index procedure (registry.derived) stay equal to their one rule,
whatever changes the levels or procedures: ORM saves, bulk writes, updates, deletes, moves,
raw SQL and COPY."""

import datetime
import threading
import time

import pytest
from django.db import connection, transaction
from django.db.models import Subquery
from pghistory.models import Events

from registry.derived import Recompute
from registry.models import (
    Cohort,
    Patient,
    Procedure,
    TreatedLevel,
    index_procedures,
    procedure_cohort,
)
from tests.factories import make_level, make_patient, make_procedure
from tests.services import scaled

E = TreatedLevel.Etiology
JAN = datetime.date(2026, 1, 5)
MAR = datetime.date(2026, 3, 1)


def assert_stored_equals_rule():
    """Every procedure's stored cohort and every patient's stored index equal the rules."""
    rule = dict(Procedure.objects.annotate(rule=procedure_cohort()).values_list("pk", "rule"))
    assert dict(Procedure.objects.values_list("pk", "cohort")) == rule
    first = index_procedures("pk")
    expected = {
        pk: (procedure, cohort)
        for pk, procedure, cohort in Patient.objects.annotate(
            p=Subquery(first.values("pk")[:1]), c=Subquery(first.values("cohort")[:1])
        ).values_list("pk", "p", "c")
    }
    stored = {
        pk: (procedure, cohort)
        for pk, procedure, cohort in Patient.objects.values_list(
            "pk", "index_procedure_id", "index_cohort"
        )
    }
    assert stored == expected


def cohort_of(procedure) -> str:
    return Procedure.objects.values_list("cohort", flat=True).get(pk=procedure.pk)


def index_of(patient) -> tuple:
    return Patient.objects.values_list("index_procedure_id", "index_cohort").get(pk=patient.pk)


def test_a_new_procedure_sets_cohort_and_index(site_a):
    patient = make_patient(site_a)
    assert index_of(patient) == (None, None)
    procedure = make_procedure(patient, E.OSTEOPOROTIC, E.METASTASIS, date=MAR)
    assert cohort_of(procedure) == Cohort.PATHOLOGIC
    assert index_of(patient) == (procedure.pk, Cohort.PATHOLOGIC)
    earlier = make_procedure(patient, E.OSTEOPOROTIC, date=JAN)
    assert index_of(patient) == (earlier.pk, Cohort.OSTEOPOROTIC)
    assert_stored_equals_rule()


def test_changing_a_level_changes_the_cohort_of_its_procedure_and_patient(site_a):
    patient = make_patient(site_a)
    procedure = make_procedure(patient, E.OSTEOPOROTIC, E.OSTEOPOROTIC)
    level = procedure.levels.order_by("level").first()
    level.etiology = E.MULTIPLE_MYELOMA
    level.save()
    assert cohort_of(procedure) == Cohort.PATHOLOGIC
    assert index_of(patient) == (procedure.pk, Cohort.PATHOLOGIC)
    # A bulk update, as a data migration or an import would write it.
    TreatedLevel.objects.filter(procedure=procedure).update(etiology=E.HAEMANGIOMA)
    assert cohort_of(procedure) == Cohort.OTHER
    assert index_of(patient) == (procedure.pk, Cohort.OTHER)


def test_deleting_and_moving_levels(site_a):
    first = make_procedure(make_patient(site_a), E.OSTEOPOROTIC, E.METASTASIS)
    second = make_procedure(make_patient(site_a), E.OSTEOPOROTIC)
    with transaction.atomic():
        first.levels.filter(etiology=E.METASTASIS).delete()
    assert cohort_of(first) == Cohort.OSTEOPOROTIC
    # A level entered on the wrong procedure, moved to the right one.
    moved = make_level(first, level=TreatedLevel.Level.L3, etiology=E.LYMPHOMA_LEUKAEMIA)
    assert cohort_of(first) == Cohort.PATHOLOGIC
    TreatedLevel.objects.filter(pk=moved.pk).update(procedure=second)
    assert (cohort_of(first), cohort_of(second)) == (Cohort.OSTEOPOROTIC, Cohort.PATHOLOGIC)
    assert_stored_equals_rule()


def test_bulk_create_raw_sql_and_copy_are_covered(site_a):
    bulk = make_procedure(make_patient(site_a), E.OSTEOPOROTIC)
    TreatedLevel.objects.bulk_create(
        [
            TreatedLevel(
                procedure=bulk,
                level=TreatedLevel.Level.L1,
                etiology=E.METASTASIS,
                approach=TreatedLevel.Approach.BIPEDICULAR,
                cement_type=TreatedLevel.CementType.PMMA,
                cement_volume_ml=3,
            )
        ]
    )
    assert cohort_of(bulk) == Cohort.PATHOLOGIC
    raw = make_procedure(make_patient(site_a), E.OSTEOPOROTIC)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE registry_treatedlevel SET etiology = 'multiple_myeloma'"
            " WHERE procedure_id = %s",
            [raw.pk],
        )
    assert cohort_of(raw) == Cohort.PATHOLOGIC
    copied = make_procedure(make_patient(site_a), E.OSTEOPOROTIC)
    # A row as a bulk load would write it: the level's own row, copied as L5 with metastasis.
    source = copied.levels.get()
    columns = [f.column for f in TreatedLevel._meta.concrete_fields if f.column != "id"]
    values = {"level": str(TreatedLevel.Level.L5), "etiology": "'metastasis'"}
    select = ", ".join(values.get(column, column) for column in columns)
    with connection.cursor() as cursor:
        out = f"COPY (SELECT {select} FROM registry_treatedlevel WHERE id = %s) TO STDOUT"  # noqa: S608
        with cursor.copy(out, [source.pk]) as copy:
            rows = b"".join(bytes(block) for block in copy)
        with cursor.copy(f"COPY registry_treatedlevel ({', '.join(columns)}) FROM STDIN") as copy:
            copy.write(rows)
    assert copied.levels.count() == 2
    assert cohort_of(copied) == Cohort.PATHOLOGIC
    assert_stored_equals_rule()


def test_redating_and_deleting_procedures_moves_the_index(site_a):
    patient = make_patient(site_a)
    first = make_procedure(patient, E.METASTASIS, date=JAN)
    second = make_procedure(patient, E.OSTEOPOROTIC, date=MAR)
    assert index_of(patient) == (first.pk, Cohort.PATHOLOGIC)
    Procedure.objects.filter(pk=second.pk).update(date=datetime.date(2025, 12, 1))
    assert index_of(patient) == (second.pk, Cohort.OSTEOPOROTIC)
    with transaction.atomic():
        Procedure.objects.get(pk=second.pk).delete()
    assert index_of(patient) == (first.pk, Cohort.PATHOLOGIC)
    with transaction.atomic():
        Procedure.objects.get(pk=first.pk).delete()
    assert index_of(patient) == (None, None)


def test_same_day_procedures_take_the_first_entered(site_a):
    patient = make_patient(site_a)
    first = make_procedure(patient, E.OSTEOPOROTIC, date=JAN)
    make_procedure(patient, E.METASTASIS, date=JAN)
    assert index_of(patient) == (first.pk, Cohort.OSTEOPOROTIC)


def test_a_derived_change_writes_no_history_event_of_the_procedure_or_patient(site_a):
    patient = make_patient(site_a)
    procedure = make_procedure(patient, E.OSTEOPOROTIC)
    procedure_events = Events.objects.tracks(procedure).count()
    patient_events = Events.objects.tracks(patient).count()
    TreatedLevel.objects.filter(procedure=procedure).update(etiology=E.METASTASIS)
    assert cohort_of(procedure) == Cohort.PATHOLOGIC
    # The level's own change is in its history; the derived copies add nothing.
    assert Events.objects.tracks(procedure).count() == procedure_events
    assert Events.objects.tracks(patient).count() == patient_events


@pytest.mark.parametrize(
    ("model", "prefix"),
    [(TreatedLevel, "procedure_cohort"), (Procedure, "patient_index")],
)
def test_installed_triggers_are_compiled_from_the_current_rule(db, model, prefix):
    """The functions in the database are the SQL compiled from the rule as it is now, so a
    changed rule without a migration fails here (and in makemigrations --check)."""
    triggers = [t for t in model._meta.triggers if isinstance(t, Recompute)]
    assert sorted(t.name for t in triggers) == [
        f"{prefix}_on_delete",
        f"{prefix}_on_insert",
        f"{prefix}_on_update",
    ]
    with connection.cursor() as cursor:
        for trigger in triggers:
            cursor.execute(
                "SELECT prosrc FROM pg_proc WHERE proname = %s", [trigger.get_pgid(model)]
            )
            (source,) = cursor.fetchone()
            assert trigger.render_func(model) in source


def _wait_for_a_lock_wait(seconds: float = 10.0) -> bool:
    """Whether another session of this database is waiting on a row lock, within ``seconds``."""
    deadline = time.monotonic() + scaled(seconds)
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.05)
    return False


@pytest.mark.django_db(transaction=True)
def test_two_sessions_changing_one_procedures_levels_leave_the_right_cohort(site_a):
    """Session 1 adds a myeloma level and holds its transaction open; session 2 deletes the
    metastasis level. Session 2's trigger must wait for session 1 and count its level: the
    procedure stays pathologic (osteoporotic + myeloma). Computed from session 2's own
    snapshot it would have stored osteoporotic."""
    procedure = make_procedure(make_patient(site_a), E.OSTEOPOROTIC, E.METASTASIS)
    metastasis = procedure.levels.get(etiology=E.METASTASIS)
    added, release = threading.Event(), threading.Event()
    errors = []

    def session_1():
        try:
            with transaction.atomic():
                make_level(procedure, level=TreatedLevel.Level.L3, etiology=E.MULTIPLE_MYELOMA)
                added.set()
                release.wait(20)
        except Exception as exc:  # reported to the test below
            errors.append(exc)
        finally:
            connection.close()

    def session_2():
        try:
            with transaction.atomic():
                TreatedLevel.objects.filter(pk=metastasis.pk).delete()
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    first = threading.Thread(target=session_1)
    first.start()
    assert added.wait(20)
    second = threading.Thread(target=session_2)
    second.start()
    waited = _wait_for_a_lock_wait()
    release.set()
    first.join(30)
    second.join(30)
    assert errors == []
    assert waited, "session 2 recomputed without waiting for session 1"
    assert sorted(procedure.levels.values_list("etiology", flat=True)) == [
        E.MULTIPLE_MYELOMA,
        E.OSTEOPOROTIC,
    ]
    assert cohort_of(procedure) == Cohort.PATHOLOGIC
    assert_stored_equals_rule()
