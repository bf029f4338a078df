"""The sweep writes a batch's transitions set-based (issue 32): its statements do not grow
with the batch, and the history it leaves is one event per follow-up that moved, as before."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from outcomes.followups.schedule import Step
from outcomes.followups.sweep import followups_ensure, followups_sweep
from outcomes.models import ContactAttempt, FollowUp
from registry.sqlbulk import rows_update
from tests.factories import make_contact, make_patient, make_procedure, make_site

PROCEDURE_DAY = datetime.date(2026, 1, 12)
DAY_70 = datetime.datetime(2026, 3, 23, 8, tzinfo=datetime.UTC)  # 3-month windows open
Event = FollowUp.events.rel.related_model  # pghistory's event rows, written by triggers


def _cohort(code: str, patients: int) -> list[int]:
    """``patients`` emailable patients of a new site, each with a procedure on day 0 and its
    schedule; the ids of their follow-ups."""
    site = make_site(code, time_zone="Europe/Copenhagen")
    ids = []
    for _ in range(patients):
        patient = make_patient(site, consent_date=PROCEDURE_DAY)
        make_contact(patient, email=f"p{patient.pk}@example.org")
        ids.append(make_procedure(patient, "osteoporotic", date=PROCEDURE_DAY).pk)
    followups_ensure(procedure_ids=ids)
    return list(FollowUp.objects.filter(procedure_id__in=ids).values_list("pk", flat=True))


def _sweep(followup_ids: list[int]):
    """One sweep on day 70, in one batch; (report, statements, history events written)."""
    before = Event.objects.count()
    with CaptureQueriesContext(connection) as queries:
        report = followups_sweep(now=DAY_70, batch_size=1000)
    assert report.batches == 1
    mine = {pk for pk, _timepoint, _step in report.actions}
    assert mine == set(followup_ids) - set(
        FollowUp.objects.filter(pk__in=followup_ids, timepoint="month_12").values_list(
            "pk", flat=True
        )
    )
    return report, len(queries), Event.objects.count() - before


@pytest.mark.django_db
def test_sweep_statements_per_batch_do_not_grow_with_the_batch():
    # Adversary: a per-follow-up statement (a save(), a lookup in the loop) hidden in the
    # batch; 200 follow-ups then cost more statements than 50.
    small_ids = _cohort("SML", 50)
    small, small_statements, _ = _sweep(small_ids)
    large_ids = _cohort("LRG", 200)
    large, large_statements, _ = _sweep(large_ids)
    # Each patient: month-3 invited, the earlier timepoints closed; month-12 not yet open.
    assert (small.count(Step.INVITE), large.count(Step.INVITE)) == (50, 200)
    assert len(large.actions) == 4 * len(small.actions) >= 4 * 100
    assert large_statements == small_statements
    assert small_statements <= 20


@pytest.mark.django_db
def test_sweep_writes_one_history_event_per_followup_moved_with_its_new_state():
    # Adversary: a set-based write that skips the row triggers (or fires them twice, or
    # writes rows that did not move): the audit trail would disagree with the rows.
    ids = _cohort("HIS", 30)
    report, _statements, events = _sweep(ids)
    assert events == len(report.actions) >= 60
    new_state = {pk: FollowUp.objects.get(pk=pk).state for pk, _t, _s in report.actions}
    written = Event.objects.filter(pgh_obj_id__in=ids, pgh_label="update")
    assert sorted(written.values_list("pgh_obj_id", "state")) == sorted(new_state.items())
    assert list(new_state.values()).count("invited") == report.count(Step.INVITE) == 30
    invited = FollowUp.objects.filter(pk__in=ids, state="invited")
    assert all(f.link_token_hash and f.invited_on for f in invited)
    assert ContactAttempt.objects.filter(followup__in=invited, kind="invitation").count() == 30
    # A second sweep the same day moves nothing and writes no history.
    before = Event.objects.count()
    assert followups_sweep(now=DAY_70, batch_size=1000).actions == []
    assert Event.objects.count() == before


@pytest.mark.django_db
def test_rows_update_writes_each_row_its_own_values_of_every_type():
    ids = _cohort("ROW", 3)
    followups = list(FollowUp.objects.filter(pk__in=ids, timepoint="month_3").order_by("pk"))
    first, second, third = followups
    moment = datetime.datetime(2026, 3, 23, 8, 30, tzinfo=datetime.UTC)
    first.state, first.completed_at = FollowUp.State.COMPLETED, moment
    second.state, second.reminders_sent = FollowUp.State.REMINDED, 2
    second.on_phone_worklist_since = datetime.date(2026, 3, 30)
    second.worklist_reason = FollowUp.WorklistReason.NO_ANSWER
    third.state, third.cancel_reason = FollowUp.State.CANCELLED, FollowUp.CancelReason.DEATH
    fields = ["state", "completed_at", "reminders_sent", "on_phone_worklist_since",
              "worklist_reason", "cancel_reason"]  # fmt: skip
    assert rows_update(FollowUp, followups, fields) == 3
    got = {
        f.pk: (f.state, f.completed_at, f.reminders_sent, f.on_phone_worklist_since,
               f.worklist_reason, f.cancel_reason)
        for f in FollowUp.objects.filter(pk__in=[first.pk, second.pk, third.pk])
    }  # fmt: skip
    assert got[first.pk][:3] == ("completed", moment, 0)
    assert got[second.pk][:5] == ("reminded", None, 2, datetime.date(2026, 3, 30), "no_answer")
    assert got[third.pk][0] == "cancelled" and got[third.pk][5] == "death"
    assert rows_update(FollowUp, [], fields) == 0
