"""The sweep writes a batch's transitions set-based (issue 32): its statements do not grow
with the batch, and the history it leaves is one event per follow-up that moved, as before."""

import datetime
import re

import pghistory
import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from outcomes.followups.schedule import Step
from outcomes.followups.sweep import followups_ensure, followups_sweep
from outcomes.models import ContactAttempt, FollowUp
from registry.sqlbulk import rows_insert, rows_update
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


# --- Issue 32, second step: attempts inserted set-based, history written per statement ----

AttemptEvent = ContactAttempt.events.rel.related_model
TRACKED = [
    f.attname
    for f in Event._meta.concrete_fields
    if not f.name.startswith("pgh_") and f.name not in ("id",)
]


def _attempt_inserts(queries) -> list[str]:
    """The contact attempts' INSERTs, their array literals (the values) blanked out."""
    return [
        re.sub(r"'[^']*'", "?", q["sql"])
        for q in queries
        if q["sql"].startswith('INSERT INTO "outcomes_contactattempt"')
    ]


@pytest.mark.django_db
def test_a_batch_inserts_its_attempts_in_one_statement_whatever_its_size():
    # Adversary: one INSERT per attempt, or SQL whose text grows with the batch (VALUES
    # lists): 200 attempts would then send other statements than 50.
    texts = []
    for code, patients in (("AIS", 50), ("AIL", 200)):
        ids = _cohort(code, patients)
        with CaptureQueriesContext(connection) as queries:
            report = followups_sweep(now=DAY_70, batch_size=1000)
        (insert,) = _attempt_inserts(queries.captured_queries)
        texts.append(insert)
        attempts = ContactAttempt.objects.filter(followup_id__in=ids)
        assert attempts.count() == report.count(Step.INVITE) == patients
        assert set(attempts.values_list("kind", "channel", "status", "tries", "error")) == {
            ("invitation", "email", "pending", 0, "")
        }
        site_id = FollowUp.objects.filter(pk__in=ids).values("procedure__patient__site").first()
        assert set(attempts.values_list("site_id", flat=True)) == {
            site_id["procedure__patient__site"]
        }
        # One insert event per attempt, written by one statement-level trigger call.
        events = AttemptEvent.objects.filter(pgh_obj_id__in=attempts.values("pk"))
        assert events.count() == patients
        assert set(events.values_list("pgh_label", "status")) == {("insert", "pending")}
    assert texts[0] == texts[1]


@pytest.mark.django_db
def test_sweep_history_events_hold_the_rows_they_record_column_by_column():
    # Adversary: a statement-level trigger joining old and new rows wrongly (old values, a
    # row of another follow-up, unchanged rows included): every event must equal its
    # follow-up's row as the sweep left it, in every tracked column.
    ids = _cohort("EVT", 20)
    before = set(Event.objects.values_list("pgh_id", flat=True))
    report = followups_sweep(now=DAY_70, batch_size=1000)
    events = Event.objects.exclude(pgh_id__in=before)
    assert events.count() == len(report.actions) == 60
    rows = {row["id"]: row for row in FollowUp.objects.filter(pk__in=ids).values("id", *TRACKED)}
    for event in events.values("pgh_obj_id", "pgh_label", *TRACKED):
        row = rows[event["pgh_obj_id"]]
        assert event["pgh_label"] == "update"
        assert {k: event[k] for k in TRACKED} == {k: row[k] for k in TRACKED}
    assert {e["state"] for e in events.values("state")} == {"invited", "missed"}


@pytest.mark.django_db
def test_update_history_per_statement_matches_the_row_trigger_for_other_writers():
    # The same events as the row trigger wrote for the ORM's other writes: one per row a
    # statement changed, none for a statement that changes nothing tracked, and the
    # pghistory context attached to every event of the statement.
    ids = _cohort("OTH", 3)
    month_3 = list(FollowUp.objects.filter(pk__in=ids, timepoint="month_3").order_by("pk"))
    first = month_3[0]
    before = Event.objects.count()
    first.phone_note = "call after 10"
    first.save()
    assert Event.objects.count() == before + 1
    # Nothing changes: no event (the row trigger's condition, now the statement's join).
    FollowUp.objects.filter(pk__in=ids).update(phone_note=F("phone_note"))
    FollowUp.objects.filter(pk=-1).update(state="open")
    assert Event.objects.count() == before + 1
    with pghistory.context(user=None, url="/sweep-test/"):
        changed = FollowUp.objects.filter(pk__in=[f.pk for f in month_3]).update(
            phone_outcome="refused"
        )
    assert changed == 3
    latest = Event.objects.order_by("-pgh_id")[:3]
    assert {e.pgh_obj_id for e in latest} == {f.pk for f in month_3}
    assert {e.phone_outcome for e in latest} == {"refused"}
    (context,) = {e.pgh_context_id for e in latest}
    assert context is not None
    assert latest[0].pgh_context.metadata["url"] == "/sweep-test/"


@pytest.mark.django_db
def test_followup_updated_at_still_moves_for_every_writer_and_only_on_change():
    ids = _cohort("UPD", 1)
    followup = FollowUp.objects.get(pk=ids[0])
    stored = followup.updated_at
    FollowUp.objects.filter(pk=followup.pk).update(phone_note=F("phone_note"))
    assert FollowUp.objects.get(pk=followup.pk).updated_at == stored
    # A write naming updated_at with an old value still gets the database's time.
    FollowUp.objects.filter(pk=followup.pk).update(
        phone_note="x", updated_at=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        (now,) = cursor.fetchone()
    assert FollowUp.objects.get(pk=followup.pk).updated_at == now


@pytest.mark.django_db
def test_rows_insert_writes_defaults_and_refuses_a_duplicate_step_as_a_whole():
    ids = _cohort("INS", 2)
    first, second = FollowUp.objects.filter(pk__in=ids, timepoint="month_3").order_by("pk")
    site_id = first.procedure.patient.site_id

    def attempt(followup, channel="email"):
        return ContactAttempt(
            followup_id=followup.pk, site_id=site_id, kind="reminder_1", channel=channel
        )

    assert rows_insert(ContactAttempt, [attempt(first), attempt(second, "sms")]) == 2
    got = ContactAttempt.objects.filter(followup_id__in=ids).order_by("followup_id")
    assert list(got.values_list("followup_id", "channel", "status", "claimed_by")) == [
        (first.pk, "email", "pending", ""),
        (second.pk, "sms", "pending", ""),
    ]
    assert all(a.created_at is not None for a in got)
    # A second reminder 1 by email for ``first``: the unique constraint refuses the whole
    # statement, so ``second``'s new email reminder is not written either.
    with pytest.raises(IntegrityError), transaction.atomic():
        rows_insert(ContactAttempt, [attempt(second), attempt(first)])
    assert got.count() == 2
    assert rows_insert(ContactAttempt, []) == 0
