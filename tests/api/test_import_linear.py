"""The import's cost per row does not grow with the file, and its follow-up schedules and
history are those of before (issue 32, docs/benchmarks.md "Import").

The follow-ups are written by a fixed number of set-based statements per chunk of
procedures; the tables are written in batches; so importing four times the patients runs
exactly as many statements while the batches are not full. The schedules, completions and
history rows are compared with the way they were written before: ``followups_ensure`` for the
imported procedures and one completing UPDATE per timepoint."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from api import imports
from api.imports import cases_import
from outcomes.followups.sweep import followups_ensure
from outcomes.models import FollowUp, QuestionnaireResponse, Timepoint
from registry.models import Patient, Procedure
from tests.benchmarks.test_import_benchmark import _files
from tests.factories import make_site

Event = FollowUp.events.rel.related_model  # pghistory's event rows, written by triggers


@pytest.fixture
def ben(db):
    return make_site("BEN")


def _before(self) -> None:
    """The import's follow-ups as written before issue 32 (the reference)."""
    if self.result.problems:
        return
    procedure_ids = [p.pk for p in self.procedures.values() if p.pk]
    followups_ensure(procedure_ids=procedure_ids)
    answered = QuestionnaireResponse.objects.filter(procedure_id__in=procedure_ids)
    for timepoint in Timepoint.values:
        FollowUp.objects.filter(
            procedure_id__in=answered.filter(timepoint=timepoint).values("procedure_id"),
            timepoint=timepoint,
        ).exclude(state=FollowUp.State.COMPLETED).update(
            state=FollowUp.State.COMPLETED, completed_at=self.now, cancel_reason=""
        )


def _written(first: int, total: int) -> list[tuple]:
    """Every follow-up of the series' procedures and its history, by offsets from the
    procedure's date so that two series on different dates compare."""
    out = []
    procedures = Procedure.objects.filter(
        patient__registry_id__in=[f"BEN-{n:06d}" for n in range(first, first + total)]
    ).order_by("patient__registry_id")
    for procedure in procedures:
        for followup in FollowUp.objects.filter(procedure=procedure).order_by("timepoint"):
            history = [
                (
                    event.pgh_label,
                    event.state,
                    (event.due_date - procedure.date).days,
                    event.completed_at is not None,
                )
                for event in Event.objects.filter(pgh_obj_id=followup.pk).order_by("pgh_id")
            ]
            out.append(
                (
                    followup.timepoint,
                    (followup.due_date - procedure.date).days,
                    (followup.window_start - procedure.date).days,
                    (followup.window_end - procedure.date).days,
                    followup.state,
                    followup.cancel_reason,
                    followup.completed_at is not None,
                    tuple(history),
                )
            )
    return out


def test_follow_ups_and_their_history_are_those_written_before(ben, monkeypatch):
    assert cases_import(files=_files(6, 0)).ok
    now = _written(0, 6)
    with monkeypatch.context() as patch:
        patch.setattr(imports.Importer, "_follow_ups", _before)
        assert cases_import(files=_files(6, 100)).ok
    before = _written(100, 6)
    assert len(now) == 6 * 4
    assert now == before
    completed = [row for row in now if row[4] == "completed"]
    assert {row[0] for row in completed} == {"baseline", "month_3"}
    assert all([label for label, *_ in row[7]] == ["insert", "update"] for row in completed)


def test_a_re_import_writes_no_follow_up_and_no_history(ben):
    files = _files(5, 0)
    assert cases_import(files=files).ok
    followups, events = FollowUp.objects.count(), Event.objects.count()
    again = cases_import(files=files)
    assert again.ok and all(t.created == t.changed == 0 for t in again.tables.values())
    assert (FollowUp.objects.count(), Event.objects.count()) == (followups, events)


def test_importing_four_times_the_patients_runs_as_many_statements(ben):
    with CaptureQueriesContext(connection) as small:
        assert cases_import(files=_files(5, 0)).ok
    with CaptureQueriesContext(connection) as large:
        assert cases_import(files=_files(20, 1000)).ok
    assert Patient.objects.count() == 25
    assert len(small.captured_queries) == len(large.captured_queries)


def test_the_import_puts_the_sessions_rules_back(ben):
    """Within a caller's transaction, the import's settings (pgtrigger.ignore, the foreign
    keys checked at each statement) are the caller's again afterwards: a foreign key is
    checked at commit, as Django declares it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('pgtrigger.ignore', true)")
        (ignore,) = cursor.fetchone()
    assert cases_import(files=_files(3, 0)).ok
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('pgtrigger.ignore', true)")
        assert cursor.fetchone()[0] in (ignore or "", None)
    with transaction.atomic():
        # Deferred again: a follow-up of no procedure is written, and refused only when the
        # constraints are checked.
        FollowUp.objects.create(
            procedure_id=10**9,
            timepoint="baseline",
            due_date="2020-01-01",
            window_start="2020-01-01",
            window_end="2020-01-01",
        )
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        transaction.set_rollback(True)


def test_re_importing_four_times_the_patients_runs_as_many_statements(ben):
    """No look-up per row of what the registry holds (a patient's index procedure was
    validated with one query per patient already imported)."""
    small_files, large_files = _files(5, 0), _files(20, 1000)
    assert cases_import(files=small_files).ok
    assert cases_import(files=large_files).ok
    with CaptureQueriesContext(connection) as small:
        assert cases_import(files=small_files).ok
    with CaptureQueriesContext(connection) as large:
        assert cases_import(files=large_files).ok
    assert len(small.captured_queries) == len(large.captured_queries)
