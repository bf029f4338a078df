"""The chasing outbox in one process against PostgreSQL and a real SMTP server (aiosmtpd):
claims, expired claims, dispatch after a lost hint, failure classes, deaths during a hung send,
reminder timing from the message actually sent, digests, and staff resolving unknowns."""

import datetime
import logging
import smtplib
import threading
import time
import zoneinfo

import pytest
import time_machine
from django.apps import apps
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.db import connection, connections
from django.urls import reverse
from django.utils import timezone

from outcomes.followups.schedule import Step
from outcomes.followups.sending import (
    contact_attempt_send,
    contact_attempts_mark_sent,
    contact_attempts_send_again,
)
from outcomes.followups.sweep import followups_ensure, followups_sweep
from outcomes.models import ContactAttempt, FollowUp, patient_emailable
from registry.models import Patient
from tests.factories import make_contact, make_patient, make_procedure, make_site

PROCEDURE_DAY = datetime.date(2026, 1, 12)
COPENHAGEN = zoneinfo.ZoneInfo("Europe/Copenhagen")
CLAIM = datetime.timedelta(seconds=120)  # CHASE_CLAIM_SECONDS by default
AGE = datetime.timedelta(seconds=600)  # CHASE_REDISPATCH_SECONDS by default


def at(days: int, hour: int = 9, minute: int = 0) -> datetime.datetime:
    """An instant ``days`` after the procedure, local Copenhagen time in winter."""
    day = PROCEDURE_DAY + datetime.timedelta(days=days)
    return datetime.datetime(day.year, day.month, day.day, hour - 1, minute, tzinfo=datetime.UTC)


def make_chased(site, *, email="karen@example.org", procedure_day=PROCEDURE_DAY, **contact):
    patient = make_patient(site, consent_date=PROCEDURE_DAY)
    if email is not None:
        make_contact(patient, email=email, preferred_language="en", **contact)
    procedure = make_procedure(patient, "osteoporotic", date=procedure_day)
    followups_ensure(procedure_ids=[procedure.pk])
    return FollowUp.objects.get(procedure=procedure, timepoint="month_3")


def sweep_and_send(now):
    """One sweep, then send what it dispatched; the statuses of the patients' messages."""
    report = followups_sweep(now=now)
    statuses = {i: contact_attempt_send(attempt_id=i, now=now) for i in report.attempt_ids}
    digests = ContactAttempt.objects.filter(kind="digest").values_list("pk", flat=True)
    return {i: status for i, status in statuses.items() if i not in set(digests)}


def attempt_of(followup, kind="invitation") -> ContactAttempt:
    return ContactAttempt.objects.get(followup=followup, kind=kind)


@pytest.fixture
def month_3(site_a):
    return make_chased(site_a)


# --- the one rule "this patient may be emailed" ---------------------------------------------


@pytest.mark.parametrize(
    ("email", "consent", "dead", "withdrawn", "emailable"),
    [
        ("a@example.org", True, False, False, True),
        ("", True, False, False, False),
        (None, True, False, False, False),  # no contact row at all
        ("a@example.org", False, False, False, False),
        ("a@example.org", True, True, False, False),
        ("a@example.org", True, False, True, False),
    ],
)
def test_patient_emailable_truth_table(site_a, email, consent, dead, withdrawn, emailable):
    patient = make_patient(site_a, consent_date=PROCEDURE_DAY)
    if email is not None:
        make_contact(patient, email=email, consent_to_contact=consent)
    Patient.objects.filter(pk=patient.pk).update(
        date_of_death=PROCEDURE_DAY if dead else None,
        consent_withdrawn_date=PROCEDURE_DAY if withdrawn else None,
    )
    assert Patient.objects.filter(patient_emailable(), pk=patient.pk).exists() is emailable
    in_followups = FollowUp.objects.filter(patient_emailable("procedure__patient__"))
    procedure = make_procedure(patient, "osteoporotic", date=PROCEDURE_DAY)
    followups_ensure(procedure_ids=[procedure.pk])
    assert in_followups.filter(procedure=procedure).exists() is (emailable and not dead)


# --- claims -------------------------------------------------------------------------------


def test_a_live_claim_is_never_sent_by_another_worker(month_3):
    report = followups_sweep(now=at(70))
    (attempt_id,) = report.attempt_ids
    ContactAttempt.objects.filter(pk=attempt_id).update(
        status="sending", claimed_at=at(70), claimed_by="other-host:123"
    )
    mail.outbox.clear()
    assert contact_attempt_send(attempt_id=attempt_id, now=at(70)) == "sending"
    # Still alive one second before the claim expires: no sweep touches it.
    report = followups_sweep(now=at(70) + CLAIM - datetime.timedelta(seconds=1))
    assert (report.attempt_ids, report.claims_returned) == ([], 0)
    assert mail.outbox == []
    # Expired, and the body never started: pending again, dispatched, sent once.
    later = at(70) + CLAIM + datetime.timedelta(seconds=1)
    report = followups_sweep(now=later)
    assert (report.attempt_ids, report.claims_returned, report.unknown) == ([attempt_id], 1, 0)
    assert contact_attempt_send(attempt_id=attempt_id, now=later) == "sent"
    assert contact_attempt_send(attempt_id=attempt_id, now=later) == "sent"
    assert len(mail.outbox) == 1


def test_claim_expired_after_the_body_began_is_unknown_and_staff_resolve_it(month_3):
    (attempt_id,) = followups_sweep(now=at(70)).attempt_ids
    ContactAttempt.objects.filter(pk=attempt_id).update(
        status="sending", claimed_at=at(70), claimed_by="dead:1", send_started_at=at(70)
    )
    report = followups_sweep(now=at(70) + CLAIM + datetime.timedelta(seconds=1))
    assert (report.unknown, report.attempt_ids) == (1, [])
    attempt = ContactAttempt.objects.get(pk=attempt_id)
    assert (attempt.status, attempt.error) == (
        "unknown",
        "the result could not be recorded (the message body had started)",
    )
    # Never sent again by itself, whatever the sweeps.
    mail.outbox.clear()
    assert followups_sweep(now=at(71)).attempt_ids == []
    # Staff send again: idempotent (a second click finds it pending, then sent).
    assert contact_attempts_send_again(attempt_ids=[attempt_id]).ids == [attempt_id]
    assert contact_attempts_send_again(attempt_ids=[attempt_id]).ids == []
    (again,) = followups_sweep(now=at(71)).attempt_ids
    assert contact_attempt_send(attempt_id=again, now=at(71)) == "sent"
    assert contact_attempts_send_again(attempt_ids=[attempt_id]).ids == []
    assert len(mail.outbox) == 1
    statuses = list(
        apps.get_model("outcomes", "ContactAttemptEvent")
        .objects.filter(pgh_obj_id=attempt_id)
        .order_by("pgh_id")
        .values_list("status", flat=True)
    )
    assert statuses == ["pending", "sending", "unknown", "pending", "sending", "sent"]


def test_staff_mark_an_unknown_sent_and_the_reminder_counts_from_its_body(month_3):
    (attempt_id,) = followups_sweep(now=at(70)).attempt_ids
    ContactAttempt.objects.filter(pk=attempt_id).update(
        status="sending", claimed_at=at(70), claimed_by="dead:1", send_started_at=at(70)
    )
    followups_sweep(now=at(72))
    assert followups_sweep(now=at(79)).count(Step.REMIND_1) == 0  # unknown: not known sent
    assert contact_attempts_mark_sent(attempt_ids=[attempt_id], now=at(79)) == 1
    assert contact_attempts_mark_sent(attempt_ids=[attempt_id], now=at(79)) == 0
    assert ContactAttempt.objects.get(pk=attempt_id).sent_at == at(70)
    assert followups_sweep(now=at(79, minute=1)).count(Step.REMIND_1) == 1


# --- the outbox: lost hints, an unreachable broker ------------------------------------------


def test_lost_hints_are_dispatched_again_after_the_stated_age(month_3):
    queued = []
    report = followups_sweep(now=at(70), enqueue=queued.append)  # the broker loses them
    assert queued == report.attempt_ids and len(queued) == 1
    assert followups_sweep(now=at(70) + AGE - datetime.timedelta(seconds=1)).attempt_ids == []
    later = at(70) + AGE + datetime.timedelta(seconds=1)
    assert followups_sweep(now=later, enqueue=queued.append).attempt_ids == queued[:1]
    assert queued == [queued[0], queued[0]]


def test_unreachable_broker_leaves_attempts_for_the_next_sweep(site_a, caplog, capsys):
    for i in range(3):
        make_chased(site_a, email=f"p{i}@example.org")

    def broker_down(attempt_id):
        raise ConnectionRefusedError(111, "Connection refused")

    with caplog.at_level(logging.WARNING):
        report = followups_sweep(now=at(70), enqueue=broker_down)
    assert (report.count(Step.INVITE), report.not_queued, report.attempt_ids) == (3, 3, [])
    assert "3 left for the next sweep" in caplog.text
    pending = ContactAttempt.objects.filter(status="pending", dispatched_at=None)
    assert pending.count() == 3
    # The command, run later, delivers each exactly once; a second run sends nothing more.
    mail.outbox.clear()
    call_command("chase_followups", now=at(70, minute=20).isoformat())
    assert "3 messages sent" in capsys.readouterr().out
    call_command("chase_followups", now=at(71).isoformat())
    assert "0 messages sent" in capsys.readouterr().out
    assert sorted(m.to[0] for m in mail.outbox) == [f"p{i}@example.org" for i in range(3)]


# --- failures: permanent, transient, unknown; no address stored or logged -------------------


def test_refused_address_fails_at_once_to_the_worklist_and_is_stored_nowhere(month_3, smtp, caplog):
    address = "karen@example.org"
    smtp.mode = "refuse"
    # The server's refusal echoes the address, as real servers do.
    client = smtplib.SMTP("127.0.0.1", smtp.port, timeout=2)
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        client.sendmail("registry@localhost", [address], b"Subject: probe\r\n\r\nx")
    client.quit()
    assert address in str(refused.value)
    with caplog.at_level(logging.DEBUG):
        statuses = sweep_and_send(at(70))
        assert list(statuses.values()) == ["failed"]
        attempt = attempt_of(month_3)
        assert (attempt.status, attempt.error, attempt.error_code, attempt.tries) == (
            "failed",
            "SMTP 550 permanent: recipient refused",
            550,
            1,
        )
        month_3.refresh_from_db()
        assert month_3.on_phone_worklist_since == at(70).date()
        assert month_3.worklist_reason == "email_refused"
        # Never tried again, and no reminder follows a message that never left.
        for days in (71, 77, 84):
            followups_sweep(now=at(days))
        assert ContactAttempt.objects.filter(followup=month_3).count() == 1
    assert smtp.state.refused == 2  # our probe and the one send
    assert address not in caplog.text
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_type = 'BASE TABLE'"
        )
        tables = [row[0] for row in cursor.fetchall()]
        holding = []
        for table in tables:
            cursor.execute(
                f'SELECT count(*) FROM "{table}" t WHERE t::text ILIKE %s',  # noqa: S608
                [f"%{address}%"],
            )
            if cursor.fetchone()[0]:
                holding.append(table)
    assert "outcomes_contactattempt" in tables and "outcomes_contactattemptevent" in tables
    assert set(holding) <= {"registry_patientcontact", "registry_patientcontactevent"}
    assert "registry_patientcontact" in holding  # the search does find the address


def test_stall_before_the_body_is_a_transient_timeout_and_nothing_is_delivered(month_3, smtp):
    smtp.mode = "stall_before_data"
    statuses = sweep_and_send(at(70))
    assert list(statuses.values()) == ["pending"]
    attempt = attempt_of(month_3)
    assert (attempt.error, attempt.error_code, attempt.send_started_at) == ("timeout", None, None)
    smtp.release()
    assert smtp.messages == []
    later = at(70) + datetime.timedelta(seconds=61)
    assert list(sweep_and_send(later).values()) == ["sent"]
    assert len(smtp.messages) == 1


def test_no_reply_after_the_body_is_unknown_not_sent_again(month_3, smtp):
    smtp.mode = "stall_after_data"
    statuses = sweep_and_send(at(70))
    smtp.release()
    assert list(statuses.values()) == ["unknown"]
    assert attempt_of(month_3).error.startswith("no reply after the message body")
    assert followups_sweep(now=at(72)).attempt_ids == []
    assert len(smtp.messages) == 1  # the server did get it: only staff can tell


@pytest.mark.django_db(transaction=True)
def test_death_recorded_while_a_send_hangs_finishes_at_once_and_nothing_leaves(settings):
    from tests.services import SmtpServer, scaled

    site = make_site("HNG")
    followup = make_chased(site)
    (attempt_id,) = followups_sweep(now=at(70)).attempt_ids
    with SmtpServer() as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        settings.EMAIL_TIMEOUT = 10
        server.mode = "stall_before_data"
        result = {}

        def send():
            try:
                result["status"] = contact_attempt_send(attempt_id=attempt_id, now=at(70))
            finally:
                connections.close_all()

        sender = threading.Thread(target=send)
        sender.start()
        deadline = time.monotonic() + scaled(10)
        while not server.stalled and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.stalled == 1
        started = time.monotonic()
        Patient.objects.filter(pk=followup.procedure.patient_id).update(date_of_death=at(70).date())
        recording_took = time.monotonic() - started
        server.release()  # the server answers; the sender checks again before the body
        sender.join(15)
        assert recording_took < 1.0
        assert result["status"] == "skipped"
        assert server.messages == []
    attempt = ContactAttempt.objects.get(pk=attempt_id)
    assert (attempt.status, attempt.error) == ("skipped", "patient deceased")
    assert FollowUp.objects.get(pk=followup.pk).state == "cancelled"


# --- timing: each reminder counts from the message actually sent ----------------------------


def test_reminders_count_from_the_message_actually_sent(month_3):
    followups_sweep(now=at(70))  # invitation decided; the queue is down for ten days
    for days in (77, 79):
        assert followups_sweep(now=at(days)).count(Step.REMIND_1) == 0  # not before it left
    invitation = attempt_of(month_3)
    assert contact_attempt_send(attempt_id=invitation.pk, now=at(80)) == "sent"
    assert followups_sweep(now=at(86)).count(Step.REMIND_1) == 0
    assert list(sweep_and_send(at(87)).values()) == ["sent"]
    assert list(sweep_and_send(at(93)).values()) == []
    assert list(sweep_and_send(at(94)).values()) == ["sent"]  # reminder 2, 7 days after 87
    assert list(sweep_and_send(at(94, minute=2)).values()) == []
    sent = list(
        ContactAttempt.objects.filter(followup=month_3)
        .order_by("sent_at")
        .values_list("sent_at", flat=True)
    )
    # sent_at is the server's 250 (a few ms after each sweep's moment): compare the days.
    gaps = [(b.date() - a.date()).days for a, b in zip(sent, sent[1:], strict=False)]
    assert len(sent) == 3 and min(gaps) >= 7


def test_after_a_gap_in_sweeps_reminders_stay_a_week_apart(month_3):
    sweep_and_send(at(70))
    assert list(sweep_and_send(at(90)).values()) == ["sent"]  # reminder 1, late
    assert list(sweep_and_send(at(90, minute=2)).values()) == []  # not reminder 2 as well
    assert list(sweep_and_send(at(96)).values()) == []
    assert list(sweep_and_send(at(97)).values()) == ["sent"]
    assert ContactAttempt.objects.filter(followup=month_3, status="sent").count() == 3


# --- digests: every worklist follow-up announced in exactly one ----------------------------


def test_each_worklist_followup_is_announced_in_exactly_one_digest(site_a, smtp):
    early = make_chased(site_a, email="early@example.org")
    late = make_chased(
        site_a,
        email="late@example.org",
        procedure_day=PROCEDURE_DAY + datetime.timedelta(days=14),
    )
    for days in (70, 77):
        sweep_and_send(at(days))
    # Day 84: the early patient's second reminder puts them on the worklist; the day's digest
    # announces them. The late patient's invitation is refused after that digest went out.
    followups_sweep(now=at(84))
    digest_84 = ContactAttempt.objects.get(kind="digest", digest_date=at(84).date())
    smtp.mode = "accept"
    for attempt in ContactAttempt.objects.filter(status="pending").exclude(followup=late):
        contact_attempt_send(attempt_id=attempt.pk, now=at(84))
    smtp.mode = "refuse"
    assert contact_attempt_send(attempt_id=attempt_of(late).pk, now=at(84, hour=11)) == "failed"
    smtp.mode = "accept"
    followups_sweep(now=at(84, hour=15))  # a later sweep the same day: no second digest
    assert ContactAttempt.objects.filter(kind="digest").count() == 1
    late.refresh_from_db()
    assert (late.on_phone_worklist_since, late.announced_in) == (at(84).date(), None)
    sweep_and_send(at(85))
    digest_85 = ContactAttempt.objects.get(kind="digest", digest_date=at(85).date())
    assert set(digest_84.announced.all()) == {early}
    assert set(digest_85.announced.all()) == {late}
    bodies = {
        m.header("X-Registry-Message"): m.message.get_payload(decode=True).decode()
        for m in smtp.messages
        if m.rcpt_tos == [site_a.contact_email]
    }
    assert set(bodies) == {str(digest_84.pk), str(digest_85.pk)}
    early_id, late_id = early.procedure.patient.registry_id, late.procedure.patient.registry_id
    assert early_id in bodies[str(digest_84.pk)] and late_id not in bodies[str(digest_84.pk)]
    assert late_id in bodies[str(digest_85.pk)] and early_id not in bodies[str(digest_85.pk)]
    assert "email address was refused" in bodies[str(digest_85.pk)]


# --- staff: attempts by state and site, send again ------------------------------------------


def test_admin_lists_attempts_by_state_and_sends_again_once(client, manager, month_3, smtp):
    smtp.mode = "stall_after_data"
    sweep_and_send(at(70))
    smtp.release()
    attempt = attempt_of(month_3)
    assert attempt.status == "unknown"
    client.force_login(manager)
    url = reverse("admin:outcomes_contactattempt_changelist")
    page = client.get(url, {"status__exact": "unknown", "site": month_3_site(month_3)})
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [attempt]
    # The worker's id (host:pid) stays in the logs, off the staff pages.
    change = reverse("admin:outcomes_contactattempt_change", args=[attempt.pk])
    assert attempt.claimed_by and attempt.claimed_by not in page.content.decode()
    assert attempt.claimed_by not in client.get(change).content.decode()
    assert client.get(url, {"status__exact": "sent"}).context["cl"].result_count == 0
    action = {"action": "send_again", "_selected_action": [attempt.pk]}
    client.post(url, action)
    client.post(url, action)  # a double click
    attempt.refresh_from_db()
    assert (attempt.status, attempt.next_try_at) == ("pending", None)
    later = at(70, minute=5)
    assert list(sweep_and_send(later).values()) == ["sent"]
    client.post(url, action)  # sent: left alone
    assert attempt_of(month_3).status == "sent"
    assert len(smtp.messages) == 2  # the unknown one and the one staff asked for


def test_send_again_waits_while_the_old_claim_may_still_be_held(client, manager, month_3):
    # The adversary: a worker frozen (paused VM) with the claim, shown unknown by the sweep.
    # Until its claim has run out (plus one EMAIL_TIMEOUT for clocks), Send again refuses.
    (attempt_id,) = followups_sweep(now=at(70)).attempt_ids
    claimed = timezone.now() - datetime.timedelta(seconds=60)
    ContactAttempt.objects.filter(pk=attempt_id).update(
        status="unknown", claimed_at=claimed, claimed_by="frozen:1:ab", send_started_at=claimed
    )
    result = contact_attempts_send_again(attempt_ids=[attempt_id])
    assert (result.ids, result.waiting) == ([], 1)
    ready_at = claimed + CLAIM + datetime.timedelta(seconds=settings.EMAIL_TIMEOUT)
    assert result.ready_at == ready_at
    client.force_login(manager)
    url = reverse("admin:outcomes_contactattempt_changelist")
    action = {"action": "send_again", "_selected_action": [attempt_id]}
    page = client.post(url, action, follow=True).content.decode()
    assert "1 unknown messages were not sent again" in page
    # In the time zone of the user's sites (the factories' sites are in Copenhagen).
    assert f"Try again after {ready_at.astimezone(COPENHAGEN):%H:%M:%S}." in page
    assert attempt_of(month_3).status == "unknown"
    with time_machine.travel(ready_at + datetime.timedelta(seconds=1), tick=False):
        assert contact_attempts_send_again(attempt_ids=[attempt_id]).ids == [attempt_id]
    assert attempt_of(month_3).status == "pending"


def month_3_site(followup) -> str:
    return followup.procedure.patient.site.code


# --- a patient entered twice gets one invitation ------------------------------------------


def test_one_invitation_per_timepoint_to_one_address_on_one_day(site_a):
    mail.outbox.clear()
    twins = [make_chased(site_a, email=email) for email in ("same@example.org",) * 3]
    twins.append(make_chased(site_a, email="Same@Example.org"))
    other = make_chased(site_a, email="other@example.org")

    statuses = sweep_and_send(at(91))

    invitations = {f.pk: attempt_of(f) for f in [*twins, other]}
    assert sorted(statuses[a.pk] for a in invitations.values()) == [
        "sent",
        "sent",
        "skipped",
        "skipped",
        "skipped",
    ]
    assert invitations[other.pk].status == "sent"
    skipped = [a for a in invitations.values() if a.pk != invitations[other.pk].pk]
    skipped = [ContactAttempt.objects.get(pk=a.pk) for a in skipped]
    assert (
        sorted(a.error for a in skipped if a.status == "skipped")
        == ["the same message went to this email address today (a likely duplicate)"] * 3
    )
    sent_to = sorted(m.to[0].lower() for m in mail.outbox if m.to[0] != "a0@example.org")
    assert sent_to.count("same@example.org") == 1 and sent_to.count("other@example.org") == 1


def test_the_same_address_on_another_day_is_sent(site_a):
    first = make_chased(site_a, email="same@example.org")
    later = make_chased(
        site_a,
        email="same@example.org",
        procedure_day=PROCEDURE_DAY + datetime.timedelta(days=60),
    )
    assert sweep_and_send(at(91)) == {attempt_of(first).pk: "sent"}
    assert sweep_and_send(at(151)) == {attempt_of(later).pk: "sent"}
