"""Follow-up chasing against PostgreSQL: time travel, death, completion, failures, races."""

import datetime
import threading

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from outcomes.followups.links import link_token, token_hash
from outcomes.followups.sending import contact_attempt_send
from outcomes.followups.sweep import followups_ensure, followups_sweep
from outcomes.models import ContactAttempt, FollowUp
from registry.models import Patient, Procedure
from tests.factories import (
    make_contact,
    make_level,
    make_patient,
    make_procedure,
    make_response,
    make_site,
)

PROCEDURE_DAY = datetime.date(2026, 1, 12)


def at(days: int, hour: int = 9) -> datetime.datetime:
    """An instant ``days`` after the procedure, 09:00 in Copenhagen."""
    day = PROCEDURE_DAY + datetime.timedelta(days=days)
    return datetime.datetime(day.year, day.month, day.day, hour - 1, tzinfo=datetime.UTC)


def sweep_and_send(days: int):
    now = at(days)
    with time_machine.travel(now, tick=False):
        report = followups_sweep(now=now)
        for attempt_id in report.attempt_ids:
            contact_attempt_send(attempt_id=attempt_id, now=now)
    return report


@pytest.fixture
def patient(site_a):
    patient = make_patient(site_a, consent_date=PROCEDURE_DAY)
    make_contact(patient, email="karen@example.org", preferred_language="en")
    return patient


@pytest.fixture
def procedure(patient):
    procedure = make_procedure(patient, "osteoporotic", date=PROCEDURE_DAY)
    followups_ensure(procedure_ids=[procedure.pk])
    return procedure


def state(procedure, timepoint):
    return FollowUp.objects.get(procedure=procedure, timepoint=timepoint).state


def kinds(procedure, timepoint):
    return sorted(
        ContactAttempt.objects.filter(
            followup__procedure=procedure, followup__timepoint=timepoint, status="sent"
        ).values_list("kind", flat=True)
    )


def test_schedule_created_once_and_moves_with_the_procedure_date(procedure):
    assert followups_ensure() == 0
    assert list(procedure.followups.order_by("due_date").values_list("timepoint", "due_date")) == [
        ("baseline", PROCEDURE_DAY),
        ("post_op", PROCEDURE_DAY + datetime.timedelta(days=1)),
        ("month_3", PROCEDURE_DAY + datetime.timedelta(days=91)),
        ("month_12", PROCEDURE_DAY + datetime.timedelta(days=365)),
    ]
    Procedure.objects.filter(pk=procedure.pk).update(
        date=PROCEDURE_DAY + datetime.timedelta(days=5)
    )
    followups_ensure()
    month_3 = FollowUp.objects.get(procedure=procedure, timepoint="month_3")
    assert month_3.due_date == PROCEDURE_DAY + datetime.timedelta(days=96)
    assert month_3.window_start == PROCEDURE_DAY + datetime.timedelta(days=75)


def test_bulk_created_procedures_get_schedules_from_the_sweep(patient):
    (procedure,) = Procedure.objects.bulk_create(
        [
            Procedure(
                patient=patient,
                date=PROCEDURE_DAY,
                technique="vertebroplasty",
                anaesthesia="local",
                image_guidance="ct",
                indication="painful_fracture",
            )
        ]
    )
    make_level(procedure)
    followups_sweep(now=at(0))
    assert FollowUp.objects.filter(procedure__patient=patient).count() == 4


def test_a_whole_year_of_chasing(procedure):
    mail.outbox.clear()
    sweep_and_send(0)
    assert state(procedure, "post_op") == "invited"  # post-op window opens on the day
    assert state(procedure, "baseline") == "open"  # taken in clinic, not emailed
    sweep_and_send(7)
    assert kinds(procedure, "post_op") == ["invitation", "reminder_1"]
    sweep_and_send(8)
    assert state(procedure, "post_op") == "missed"  # window (day 0-7) closed
    assert state(procedure, "baseline") == "missed"

    sweep_and_send(69)
    assert state(procedure, "month_3") == "scheduled"
    sweep_and_send(70)
    sweep_and_send(70)  # a second sweep the same day sends nothing more
    assert kinds(procedure, "month_3") == ["invitation"]
    sweep_and_send(76)
    assert kinds(procedure, "month_3") == ["invitation"]
    sweep_and_send(77)
    sweep_and_send(84)
    assert kinds(procedure, "month_3") == ["invitation", "reminder_1", "reminder_2"]
    followup = FollowUp.objects.get(procedure=procedure, timepoint="month_3")
    assert followup.on_phone_worklist_since == PROCEDURE_DAY + datetime.timedelta(days=84)
    digests = ContactAttempt.objects.filter(kind="digest", status="sent")
    assert digests.count() >= 1
    digest_mail = [m for m in mail.outbox if m.to == ["aaa@example.org"]]
    assert procedure.patient.registry_id in digest_mail[-1].body
    assert "Karen" not in digest_mail[-1].body  # no names in the digest
    sweep_and_send(121)
    assert state(procedure, "month_3") == "missed"

    sweep_and_send(300)
    make_response(procedure, "month_12", eq5d="11111", answered_on=at(301).date())
    assert state(procedure, "month_12") == "completed"  # at once, not at the next sweep
    sweep_and_send(307)
    assert kinds(procedure, "month_12") == ["invitation"]
    patient_mail = [m for m in mail.outbox if m.to == ["karen@example.org"]]
    assert len(patient_mail) == 6  # post-op 2, 3 months 3, 12 months 1, nothing after
    assert all("/q/" in m.body for m in patient_mail)


def test_invitation_link_carries_a_token_whose_hash_only_is_stored(procedure):
    mail.outbox.clear()
    sweep_and_send(70)
    followup = FollowUp.objects.get(procedure=procedure, timepoint="month_3")
    token = link_token(followup)
    assert len(token) >= 43  # 256 bits, base64url
    assert token in mail.outbox[-1].body
    assert followup.link_token_hash == token_hash(token) != token
    row = FollowUp.objects.filter(pk=followup.pk).values().get()
    assert token not in str(row)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"date_of_death": PROCEDURE_DAY + datetime.timedelta(days=80)}, "death"),
        ({"consent_withdrawn_date": PROCEDURE_DAY + datetime.timedelta(days=80)}, "withdrawal"),
    ],
)
def test_death_or_withdrawal_cancels_pending_followups_at_once(procedure, change, reason):
    sweep_and_send(70)
    mail.outbox.clear()
    Patient.objects.filter(pk=procedure.patient_id).update(**change)  # no sweep in between
    pending = FollowUp.objects.filter(procedure=procedure, state="invited")
    assert not pending.exists()
    assert FollowUp.objects.get(procedure=procedure, timepoint="month_3").cancel_reason == reason
    for days in (77, 84, 300, 307, 314):
        sweep_and_send(days)
    assert mail.outbox == [] or all(m.to != ["karen@example.org"] for m in mail.outbox)


def test_message_queued_before_death_is_not_sent(procedure):
    report = followups_sweep(now=at(70))
    Patient.objects.filter(pk=procedure.patient_id).update(
        date_of_death=PROCEDURE_DAY + datetime.timedelta(days=70)
    )
    mail.outbox.clear()
    statuses = [contact_attempt_send(attempt_id=i, now=at(70)) for i in report.attempt_ids]
    assert set(statuses) == {"skipped"}
    assert ContactAttempt.objects.get(pk=report.attempt_ids[0]).error == "patient deceased"
    assert mail.outbox == []


def test_completed_questionnaire_stops_a_queued_reminder(procedure):
    sweep_and_send(70)
    report = followups_sweep(now=at(77))
    make_response(procedure, "month_3", eq5d="11111")
    mail.outbox.clear()
    assert contact_attempt_send(attempt_id=report.attempt_ids[0], now=at(77)) == "skipped"
    assert mail.outbox == []


def test_failed_email_is_recorded_and_retried_after_its_backoff(procedure, smtp):
    report = followups_sweep(now=at(70))
    attempt_id = report.attempt_ids[0]
    smtp.mode = "defer"  # 451: try again later
    assert contact_attempt_send(attempt_id=attempt_id, now=at(70)) == "pending"
    failed = ContactAttempt.objects.get(pk=attempt_id)
    assert (failed.status, failed.tries, failed.error, failed.error_code) == (
        "pending",
        1,
        "SMTP 451 transient: recipient refused",
        451,
    )
    assert failed.next_try_at == at(70) + datetime.timedelta(seconds=60)
    smtp.mode = "accept"
    # Not before its backoff: the claim does not match.
    assert contact_attempt_send(attempt_id=attempt_id, now=at(70)) == "pending"
    assert smtp.messages == []
    later = at(70) + datetime.timedelta(seconds=61)
    assert contact_attempt_send(attempt_id=attempt_id, now=later) == "sent"
    assert contact_attempt_send(attempt_id=attempt_id, now=later) == "sent"  # no resend
    assert len(smtp.messages) == 1
    assert smtp.messages[0].rcpt_tos == ["karen@example.org"]
    assert ContactAttempt.objects.get(pk=attempt_id).tries == 2


def test_sweep_queries_per_batch_are_constant(site_a, django_assert_max_num_queries):
    for _ in range(6):
        patient = make_patient(site_a)
        make_contact(patient)
        make_procedure(patient, "osteoporotic", date=PROCEDURE_DAY)
    followups_ensure()
    with CaptureQueriesContext(connection) as small:
        followups_sweep(now=at(70), batch_size=2)  # 6 month-3 + 6 baseline/post-op misses
    few_rows_many_batches = len(small.captured_queries)
    for _ in range(12):
        patient = make_patient(site_a)
        make_contact(patient)
        make_procedure(patient, "osteoporotic", date=PROCEDURE_DAY)
    followups_ensure()
    with CaptureQueriesContext(connection) as large:
        report = followups_sweep(now=at(70), batch_size=1000)
    assert report.batches == 1
    with django_assert_max_num_queries(few_rows_many_batches):
        followups_sweep(now=at(70), batch_size=1000)
    assert len(large.captured_queries) <= len(small.captured_queries)


def test_command_dry_run_and_now(procedure, capsys):
    mail.outbox.clear()
    call_command("chase_followups", dry_run=True, now=at(91).isoformat())
    out = capsys.readouterr().out
    assert "(month_3): invite" in out and "Would do" in out
    assert ContactAttempt.objects.count() == 0
    call_command("chase_followups", now=at(91).isoformat())
    assert "1 messages sent" in capsys.readouterr().out
    assert kinds(procedure, "month_3") == ["invitation"]
    call_command("chase_followups", now=at(98).isoformat())
    assert kinds(procedure, "month_3") == ["invitation", "reminder_1"]


def test_command_with_a_future_now_changes_nothing_unless_committed(procedure, capsys):
    # The adversary: someone trying the command "five days ahead" on a live database. Ahead
    # of time the 3-month follow-up is missed and its link would answer 404.
    def snapshot():
        return sorted(
            FollowUp.objects.filter(procedure=procedure).values_list(
                "timepoint", "state", "link_token_hash"
            )
        )

    with time_machine.travel(at(80), tick=False):
        mail.outbox.clear()
        before = snapshot()
        call_command("chase_followups", now=at(125).isoformat())
        out, err = capsys.readouterr()
        assert "in the future" in err and "--commit" in err
        assert "(month_3): miss" in out and "Would do" in out
        assert snapshot() == before
        assert ContactAttempt.objects.count() == 0 and mail.outbox == []

        call_command("chase_followups", now=at(125).isoformat(), commit=True)
        assert "Done" in capsys.readouterr().out
        assert state(procedure, "month_3") == "missed"


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_racing_send_exactly_one_message_per_step():
    site = make_site("RAC")
    for _ in range(30):
        patient = make_patient(site, consent_date=PROCEDURE_DAY)
        make_contact(patient)
        make_procedure(patient, "osteoporotic", date=PROCEDURE_DAY)
    followups_ensure()
    barrier = threading.Barrier(2)
    errors = []

    def worker():
        try:
            barrier.wait()
            report = followups_sweep(now=at(70), batch_size=7)
            for attempt_id in report.attempt_ids:
                contact_attempt_send(attempt_id=attempt_id, now=at(70))
        except Exception as exc:  # pragma: no cover - surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    invitations = ContactAttempt.objects.filter(kind="invitation")
    assert invitations.count() == 30
    assert invitations.filter(status="sent").count() == 30
    # Patients get their invitation in Danish (their preferred language); the site its digest.
    assert len([m for m in mail.outbox if m.to != [site.contact_email]]) == 30
