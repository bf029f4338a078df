"""Sending contact attempts and new links (design.md §5-6): claim, send, record.

The guarantee is **at most one delivery per step, and every doubt visible**:

1. *Claim.* One committed UPDATE moves the attempt from ``pending`` (due) to ``sending`` with the
   claim time and a claim token of this process (``host:pid:random``). Only one worker's UPDATE
   can match; a redelivered task, a second hint or a racing sweep finds the attempt claimed and
   does nothing. A claim lives ``CHASE_CLAIM_SECONDS``.
2. *Check.* Death, withdrawal, completion and "may be emailed" are read again. Right before the
   ``DATA`` command the sender checks its own deadline (``SenderClock``: time since the claim by
   this process's clocks, which run on while it is frozen); once the server answers ``354`` one
   UPDATE marks ``send_started_at`` only while the claim is still ours, has at least one
   ``EMAIL_TIMEOUT`` left, the follow-up is still pending and the patient still emailable; and
   the deadline is checked once more before the first byte of the body. A worker frozen (SIGSTOP,
   a paused VM) past its claim therefore sends nothing when it resumes: it drops the connection
   in the middle of ``DATA``, which makes the server discard the message.
3. *Send* with no transaction open and no row locked (a hung server blocks no one; recording a
   death finishes at once), within ``EMAIL_TIMEOUT`` per SMTP operation. A death recorded while
   the body is on its way (after the last check) is not stopped: the window is the body's
   transfer and the server's reply, at most one ``EMAIL_TIMEOUT``.
4. *Record* ``sent`` with ``sent_at`` = the server's 250 reply (or the classified failure) in a
   short transaction; a lost database connection is retried on a fresh connection for
   ``CHASE_RECORD_RETRY_SECONDS``.

A worker killed (or cut off from the database) between 2 and 4 leaves ``sending`` behind; when
its claim expires the sweep makes it ``pending`` again when the body never started (nothing was
delivered), else ``unknown``: the server may have the message and only staff can tell (mark
sent, or send again, which waits until no holder of the old claim can still send). Exactly once
is impossible without the mail server's help; a patient receiving a reminder twice is worse than
a visible unknown.

The steps are the channel's only contact with the attempt (``SendGuard``); a second channel
plugs its own transport into the same claim, guard and record.

Errors are stored and logged as a classified reason (SMTP code and class), never the address or
the server's text, which often echoes the address.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import re
import secrets
import smtplib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.core.mail.message import sanitize_address
from django.db import InterfaceError, OperationalError, transaction
from django.db import connection as db_connection
from django.db.models import Exists, F, OuterRef, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from outcomes.followups import links, sms, texting
from outcomes.followups.delivery import Delivery
from outcomes.followups.messages import digest_message, patient_message, patient_text
from outcomes.followups.schedule import local_today
from outcomes.models import (
    ContactAttempt,
    FollowUp,
    attempt_refused_q,
    patient_emailable,
    patient_textable,
)
from registry.models import Patient, PatientContact

logger = logging.getLogger(__name__)

Status = ContactAttempt.Status
Channel = ContactAttempt.Channel


# --- delivery and the classification of its failures ---------------------------------------


class ClaimLost(Exception):
    """The attempt is no longer ours (or no longer to be sent, or our claim ran out): nothing
    of its body has left."""


class SendGuard:
    """What a transport asks before a message can no longer be taken back. ``before_data()``
    right before the message is announced (SMTP ``DATA``), ``before_body()`` right before its
    first byte; either raises ``ClaimLost`` to stop, and then nothing is delivered. This one
    lets everything through (staff's own sends, which hold no claim)."""

    def before_data(self) -> None:
        return None

    def before_body(self) -> None:
        return None


def _boottime() -> float:
    # CLOCK_BOOTTIME runs on while the machine or VM is suspended; monotonic elsewhere.
    clock = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(clock) if clock is not None else time.monotonic()


class SenderClock:
    """The sender's own reading of the time since it claimed an attempt at ``start``.

    ``now()`` is ``start`` plus the larger of the wall-clock and the boot-clock time elapsed in
    this process: both keep running while the process is frozen, so a worker that resumes
    knows how late it is without asking anyone (the task's time limits are enforced by the
    pool's parent, which may have been frozen too)."""

    def __init__(self, start: datetime.datetime):
        self.start = start
        self._wall = time.time()
        self._boot = _boottime()

    def elapsed(self) -> float:
        return max(time.time() - self._wall, _boottime() - self._boot, 0.0)

    def now(self) -> datetime.datetime:
        return self.start + datetime.timedelta(seconds=self.elapsed())


def _smtp_code(exc: Exception) -> int | None:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _message in exc.recipients.values()]
        return codes[0] if codes else None
    return getattr(exc, "smtp_code", None)


def classify(exc: BaseException, *, body_sent: bool) -> Delivery:
    """A failure as outcome, reason and SMTP code: never the exception's text (it may carry
    the address). ``body_sent``: the failure came after the message body began."""
    code = _smtp_code(exc) if isinstance(exc, Exception) else None
    if (code is not None and not body_sent) or isinstance(exc, smtplib.SMTPDataError):
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            what = "recipient refused"
        elif isinstance(exc, smtplib.SMTPSenderRefused):
            what = "sender refused"
        elif isinstance(exc, smtplib.SMTPDataError):
            what = "message refused"
        elif isinstance(exc, smtplib.SMTPAuthenticationError):
            what = "authentication failed"
        else:
            what = "refused"
        code = code or 0
        # 5xx is final for this recipient or message. Our own sender or login being refused is
        # a configuration fault of the registry, not the patient's: keep trying.
        permanent = 500 <= code < 600 and what in ("recipient refused", "message refused")
        outcome = "permanent" if permanent else "transient"
        return Delivery(outcome, f"SMTP {code} {outcome}: {what}", code)
    if body_sent:
        return Delivery("unknown", f"no reply after the message body ({_kind(exc)})")
    return Delivery("transient", _kind(exc))


def _kind(exc: BaseException) -> str:
    if isinstance(exc, SoftTimeLimitExceeded):
        return "task time limit"
    # smtplib reports a socket timeout as "server disconnected"; the cause tells them apart.
    if isinstance(exc, TimeoutError | socket.timeout) or isinstance(
        exc.__context__, TimeoutError | socket.timeout
    ):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return "server disconnected"
    if isinstance(exc, OSError):
        return f"network error {exc.errno or ''}".strip()
    return f"error {type(exc).__name__}"


def deliver(
    message: EmailMessage,
    *,
    guard: SendGuard | None = None,
    clock: Callable[[], datetime.datetime] = timezone.now,
) -> Delivery:
    """Send ``message`` and say what became of it, asking ``guard`` before the ``DATA``
    command and again before the body (``ClaimLost`` propagates: nothing was delivered).

    With the SMTP backend each stage is run separately so that a failure before the body is
    known not to have delivered anything; every socket operation is bounded by EMAIL_TIMEOUT.
    Stopped between ``354`` and the body, the connection is dropped without the final dot, so
    the server discards what it has (RFC 5321 §4.1.1.4). Other backends (files, memory) are
    sent in one call after both questions.
    """
    guard = guard or SendGuard()
    backend = get_connection(timeout=settings.EMAIL_TIMEOUT)
    if not isinstance(backend, SmtpBackend):
        guard.before_data()
        guard.before_body()
        try:
            backend.send_messages([message])
        except ClaimLost:
            raise
        except Exception as exc:  # noqa: BLE001 - classified, never re-raised with its text
            return classify(exc, body_sent=False)
        return Delivery("sent", at=clock())
    body_sent = False
    try:
        backend.open()
        connection = backend.connection
        encoding = message.encoding or settings.DEFAULT_CHARSET
        sender = sanitize_address(message.from_email, encoding)
        recipients = [sanitize_address(address, encoding) for address in message.recipients()]
        connection.ehlo_or_helo_if_needed()
        code, reply = connection.mail(sender)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        for recipient in recipients:
            code, reply = connection.rcpt(recipient)
            if code not in (250, 251):
                raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
        try:
            guard.before_data()
        except ClaimLost:
            connection.rset()
            raise
        connection.putcmd("data")
        code, reply = connection.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        try:
            guard.before_body()
        except ClaimLost:
            _drop(backend)
            raise
        body_sent = True
        code, reply = _send_body(connection, message.message().as_bytes(linesep="\r\n"))
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)
        accepted_at = clock()
    except ClaimLost:
        raise
    except Exception as exc:  # noqa: BLE001 - classified, never re-raised with its text
        return classify(exc, body_sent=body_sent)
    finally:
        with contextlib.suppress(Exception):  # the message's fate is already known
            backend.close()
    return Delivery("sent", at=accepted_at)


def _send_body(connection: smtplib.SMTP, body: bytes) -> tuple[int, bytes]:
    """The second half of ``smtplib.SMTP.data()``: the dot-stuffed body and the final dot, and
    the server's reply."""
    stuffed = re.sub(rb"(?m)^\.", b"..", body)
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    connection.send(stuffed + b".\r\n")
    return connection.getreply()


def _drop(backend: SmtpBackend) -> None:
    """Close the socket in the middle of DATA: no QUIT (it would become part of the body)."""
    with contextlib.suppress(Exception):
        backend.connection.close()
    backend.connection = None


# --- claim, send, record --------------------------------------------------------------------


def worker_name() -> str:
    """This process, and a random part that makes each claim its own: a resumed process
    never mistakes a later claim (its own pid reused, or a second try) for the one it held."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def claim_seconds() -> float:
    return float(settings.CHASE_CLAIM_SECONDS)


def claimable(now: datetime.datetime) -> Q:
    """Attempts a sender may claim now: pending and due."""
    return Q(status=Status.PENDING) & (Q(next_try_at__isnull=True) | Q(next_try_at__lte=now))


class ClaimGuard(SendGuard):
    """The claim's checks before a message leaves (module docstring, step 2).

    Before ``DATA``: at least two ``EMAIL_TIMEOUT`` of the claim left (one for the ``354``, one
    for the body and its reply), by the sender's own clock. Before the body: the one statement
    that marks ``send_started_at`` (still ours, one ``EMAIL_TIMEOUT`` left, follow-up pending,
    patient emailable), then the clock once more, since the statement itself may have waited.
    """

    def __init__(
        self,
        attempt: ContactAttempt,
        worker: str,
        clock: SenderClock,
        timeout: float | None = None,
    ):
        self.attempt = attempt
        self.worker = worker
        self.clock = clock
        self.started = False
        self.expired = False
        # The longest one stage may take: an SMTP operation, or for a text the connection
        # plus the answer to its one request (sms.py).
        self.timeout = settings.EMAIL_TIMEOUT if timeout is None else timeout

    def left(self) -> float:
        return claim_seconds() - self.clock.elapsed()

    def before_data(self) -> None:
        if self.left() <= 2 * self.timeout:
            self.expired = True
            raise ClaimLost("claim about to run out")

    def before_body(self) -> None:
        if not _mark_started(self.attempt, self.worker, self.clock.now(), self.timeout):
            raise ClaimLost("no longer ours or no longer to be sent")
        self.started = True
        if self.left() <= self.timeout:
            self.expired = True
            raise ClaimLost("claim ran out")


def contact_attempt_send(
    *, attempt_id: int, now: datetime.datetime | None = None, worker: str = ""
) -> str:
    """Send one contact attempt at most once; returns its status afterwards.

    ``pending`` after a transient failure (tried again from ``next_try_at``), ``failed`` when
    refused for good (the follow-up goes to the phone worklist), ``skipped`` when the patient
    died, withdrew, answered or may no longer be emailed, ``unknown`` when the server may have
    the message. An attempt claimed by another worker, or already finished, is left alone and
    its status returned.
    """
    now = now or timezone.now()
    clock = SenderClock(now)
    worker = (worker or worker_name())[:200]
    claimed = (
        ContactAttempt.objects.filter(claimable(now), pk=attempt_id)
        .update(status=Status.SENDING, claimed_at=now, claimed_by=worker, send_started_at=None)
    )  # fmt: skip
    if not claimed:
        return _status(attempt_id)
    attempt = ContactAttempt.objects.select_related("site").get(pk=attempt_id)
    try:
        if attempt.kind == ContactAttempt.Kind.DIGEST:
            message, followup = digest_message(attempt), None
        else:
            followup = _followup(attempt)
            skip = _skip_reason(followup, attempt.channel) or _already_sent_to_address(
                attempt, followup, now
            )
            if skip:
                return _skip(attempt, followup, worker, now, skip)
            if attempt.channel == Channel.SMS:
                zone = followup.procedure.patient.site.time_zone
                if quiet := texting.quiet_until(clock.now(), zone):
                    return _defer(attempt, worker, until=quiet)
                message = _patient_text(attempt, followup)
            else:
                message = _patient_email(attempt, followup)
    except Exception:
        _release(attempt, worker)
        raise

    sms_channel = attempt.channel == Channel.SMS
    guard = ClaimGuard(attempt, worker, clock, 2 * settings.SMS_TIMEOUT if sms_channel else None)
    try:
        if sms_channel:
            delivery = _deliver_text(message, attempt, guard, clock)
        else:
            delivery = deliver(message, guard=guard, clock=clock.now)
    except ClaimLost:
        if guard.expired:
            logger.warning(
                "contact attempt %s: the claim ran out before the body (%.0f s after the claim); "
                "nothing sent",
                attempt.pk,
                clock.elapsed(),
            )
        if followup is not None and (
            skip := _skip_reason(_followup(attempt), attempt.channel)
            or _already_sent_to_address(attempt, followup, now)
        ):
            return _skip(attempt, followup, worker, now, skip)
        _release(attempt, worker)
        return _status(attempt_id)
    return _record_delivery(attempt, followup, worker, now, delivery)


def _status(attempt_id: int) -> str:
    return (
        ContactAttempt.objects.filter(pk=attempt_id).values_list("status", flat=True).first()
        or "missing"
    )


def _followup(attempt: ContactAttempt) -> FollowUp:
    return (
        FollowUp.objects.select_related("procedure__patient__site")
        .annotate(
            emailable=Exists(
                Patient.objects.filter(patient_emailable(), pk=OuterRef("procedure__patient"))
            ),
            textable=Exists(
                Patient.objects.filter(patient_textable(), pk=OuterRef("procedure__patient"))
            ),
        )
        .get(pk=attempt.followup_id)
    )


# Skip reasons that concern only the channel: the other one may still reach the patient.
NO_EMAIL = "no email or no consent to contact"
NO_SMS = "no mobile number, no consent to contact, texts stopped, or SMS not configured"


def _skip_reason(followup: FollowUp, channel: str = "email") -> str:
    patient = followup.procedure.patient
    if patient.date_of_death is not None:
        return "patient deceased"
    if patient.consent_withdrawn_date is not None:
        return "consent withdrawn"
    if followup.state in FollowUp.FINAL_STATES:
        return f"follow-up {followup.state}"
    if channel == Channel.SMS:
        if not (followup.textable and sms.sms_configured()):
            return NO_SMS
    elif not followup.emailable:
        return NO_EMAIL
    return ""


def _skip(attempt: ContactAttempt, followup: FollowUp, worker: str, now, reason: str) -> str:
    """Record ``skipped``; when only this channel is closed (no address, STOP), the same step
    goes by the other channel if it is open, else to the phone worklist."""
    if reason not in (NO_EMAIL, NO_SMS):
        return _record(attempt, worker, status=Status.SKIPPED, error=reason)
    with transaction.atomic():
        status = _record(attempt, worker, status=Status.SKIPPED, error=reason)
        if status == Status.SKIPPED:
            _fallback(attempt, followup, now, reason=FollowUp.WorklistReason.NO_EMAIL)
    return status


def _other_channel_open(followup: FollowUp, channel: str) -> bool:
    """The channel other than ``channel`` may reach the patient: usable now, and not refused
    for good earlier in this follow-up (a bounced address is not tried again for the next
    step, as the sweep would not)."""
    other = Channel.EMAIL if channel == Channel.SMS else Channel.SMS
    if channel == Channel.SMS:
        usable = bool(followup.emailable)
    else:
        usable = bool(followup.textable) and sms.sms_configured()
    return usable and not (
        ContactAttempt.objects.filter(attempt_refused_q(other), followup_id=followup.pk).exists()
    )


def _fallback(attempt: ContactAttempt, followup: FollowUp, now, *, reason: str) -> None:
    """The step of ``attempt`` by the other channel (once: the unique constraint per step and
    channel makes a second fallback, or a fallback back, a no-op), else the phone worklist.
    The patient's preference is not asked: a refused or closed channel is no choice."""
    other = Channel.EMAIL if attempt.channel == Channel.SMS else Channel.SMS
    if attempt.kind in STEP_KINDS and _other_channel_open(followup, attempt.channel):
        ContactAttempt.objects.bulk_create(
            [
                ContactAttempt(
                    followup_id=followup.pk,
                    site_id=attempt.site_id,
                    kind=attempt.kind,
                    channel=other,
                )
            ],
            ignore_conflicts=True,
        )
        # Created now, or earlier and still to be sent: that one carries the step.
        if ContactAttempt.objects.filter(
            followup_id=followup.pk, kind=attempt.kind, channel=other, status__in=OPEN_STATUSES
        ).exists():
            return
    followup_to_worklist(followup=followup, now=now, reason=reason)


STEP_KINDS = (
    ContactAttempt.Kind.INVITATION,
    ContactAttempt.Kind.REMINDER_1,
    ContactAttempt.Kind.REMINDER_2,
)
# Messages a patient entered twice must not get twice on one day (a manual link is asked for).
SENT_ONCE_PER_ADDRESS = (
    ContactAttempt.Kind.INVITATION,
    ContactAttempt.Kind.REMINDER_1,
    ContactAttempt.Kind.REMINDER_2,
)
OPEN_STATUSES = (Status.PENDING, Status.SENDING)


def _defer(attempt: ContactAttempt, worker: str, *, until: datetime.datetime) -> str:
    """Quiet hours at the site: the text waits, unsent and untried, until they end."""
    ContactAttempt.objects.filter(pk=attempt.pk, status=Status.SENDING, claimed_by=worker).update(
        status=Status.PENDING, next_try_at=until, dispatched_at=None, send_started_at=None
    )
    return _status(attempt.pk)


def _patient_text(attempt: ContactAttempt, followup: FollowUp) -> str:
    contact = PatientContact.objects.get(patient_id=followup.procedure.patient_id)
    url = links.link_url(links.link_token(followup))
    with translation.override(contact.preferred_language):
        return patient_text(attempt.kind, followup, url)


def _deliver_text(text: str, attempt: ContactAttempt, guard: ClaimGuard, clock: SenderClock):
    """One text by the SMS provider, the claim's checks right before its one request (there is
    no separate body: the request is the message)."""
    site = attempt.site
    phone = (
        PatientContact.objects.filter(patient__procedures__followups=attempt.followup_id)
        .values_list("phone", flat=True)
        .get()
    )

    def before_send() -> None:
        guard.before_data()
        guard.before_body()

    return sms.sms_send(
        to=phone,
        body=text,
        sender=site.sms_sender or settings.SMS_FROM,
        callback_url=sms.status_callback_url(attempt.pk),
        before_send=before_send,
        clock=clock.now,
    )


DUPLICATE_ADDRESS = "the same message went to this email address today (a likely duplicate)"


def _same_message_to_address(attempt: ContactAttempt, followup: FollowUp, now):
    """Other patients' emails of the same kind and timepoint to the same email address
    (any case), started today at the site (None without an address): a patient entered twice
    (a likely duplicate) gets one invitation, not two."""
    zone = followup.procedure.patient.site.time_zone
    day_start = datetime.datetime.combine(
        local_today(now, zone), datetime.time(), tzinfo=ZoneInfo(zone)
    )
    email = (
        PatientContact.objects.filter(patient_id=followup.procedure.patient_id)
        .values_list("email", flat=True)
        .first()
    )
    if not email:
        return None
    # Emails only: the same step's text to the patient (then undelivered, so the step went
    # by email) is not a duplicate email.
    return ContactAttempt.objects.filter(
        channel=Channel.EMAIL,
        kind=attempt.kind,
        followup__timepoint=followup.timepoint,
        followup__procedure__patient__contact__email__iexact=email,
        status__in=[Status.SENDING, Status.SENT, Status.UNKNOWN],
        send_started_at__gte=day_start,
    ).exclude(pk=attempt.pk)


def _already_sent_to_address(attempt: ContactAttempt, followup: FollowUp, now) -> str:
    # An email address shared by two patient records; texts are not matched by number.
    if attempt.kind not in SENT_ONCE_PER_ADDRESS or attempt.channel != Channel.EMAIL:
        return ""
    same = _same_message_to_address(attempt, followup, now)
    return DUPLICATE_ADDRESS if same is not None and same.exists() else ""


def _patient_email(attempt: ContactAttempt, followup: FollowUp) -> EmailMessage:
    contact = PatientContact.objects.get(patient_id=followup.procedure.patient_id)
    message = _link_email(attempt.kind, followup, contact, links.link_token(followup))
    message.extra_headers["X-Registry-Message"] = str(attempt.pk)
    return message


def _link_email(kind: str, followup: FollowUp, contact: PatientContact, token: str):
    url = links.link_url(token)
    with translation.override(contact.preferred_language):
        subject, body = patient_message(kind, followup, url)
    return EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [contact.email])


def _mark_started(
    attempt: ContactAttempt, worker: str, now: datetime.datetime, timeout: float | None = None
) -> bool:
    """Right before the body: still ours, with at least one EMAIL_TIMEOUT of the claim left as
    of ``now`` (the sender's clock), and (for a patient) the follow-up still pending, the
    patient still emailable and the same message not yet started to the same address today.
    One statement, committed at once; two workers sending to one address take turns on an
    advisory lock of the address (held by the session, not a transaction), so the second sees
    the first's start."""
    timeout = settings.EMAIL_TIMEOUT if timeout is None else timeout  # for a text: SMS's
    valid_after = now - datetime.timedelta(seconds=claim_seconds() - timeout)
    mine = ContactAttempt.objects.filter(
        pk=attempt.pk, status=Status.SENDING, claimed_by=worker, claimed_at__gt=valid_after
    )
    if attempt.followup_id is None:
        return mine.update(send_started_at=now) == 1
    mine = mine.filter(
        Exists(
            FollowUp.objects.pending().filter(
                patient_textable("procedure__patient__")
                if attempt.channel == Channel.SMS
                else patient_emailable("procedure__patient__"),
                pk=attempt.followup_id,
            )
        )
    )
    if attempt.kind not in SENT_ONCE_PER_ADDRESS or attempt.channel != Channel.EMAIL:
        return mine.update(send_started_at=now) == 1
    followup = _followup(attempt)
    # A session (not transaction) lock, so the UPDATE commits on its own: a worker frozen right
    # after it holds no row lock (the sweep would wait on it) and its mark is visible. Another
    # worker sending the same message to the same address waits at most one timeout for it.
    with db_connection.cursor() as cursor:
        cursor.execute(
            "SELECT hashtext(%s), hashtext(lower(coalesce("
            "(SELECT email FROM registry_patientcontact WHERE patient_id = %s), '')))",
            [f"{attempt.kind}:{followup.timepoint}", followup.procedure.patient_id],
        )
        key = cursor.fetchone()
        # While the lock is held the server ends this session if it sits idle one timeout (a
        # frozen worker), which frees the lock for the others.
        cursor.execute(
            "SELECT set_config('idle_session_timeout', %s, false)", [f"{int(timeout * 1000)}ms"]
        )
        if not _advisory_lock(cursor, key, timeout):
            cursor.execute("RESET idle_session_timeout")
            return False
        try:
            same = _same_message_to_address(attempt, followup, now)
            if same is not None:
                mine = mine.filter(~Exists(same))
            marked = mine.update(send_started_at=now) == 1
        except BaseException:
            _advisory_unlock(cursor, key)
            raise
        # A worker frozen here and ended by the server has its mark committed; the clock check
        # that follows (ClaimGuard.before_body) stops its body.
        _advisory_unlock(cursor, key)
        return marked


def _advisory_unlock(cursor, key) -> None:
    try:
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)
        cursor.execute("RESET idle_session_timeout")
    except (InterfaceError, OperationalError):
        # The server ended the session (idle while frozen): the lock went with it.
        db_connection.close()


def _advisory_lock(cursor, key, timeout: float) -> bool:
    """Take the session advisory lock ``key`` within ``timeout`` seconds (False if not)."""
    deadline = time.monotonic() + timeout
    while True:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
        if cursor.fetchone()[0]:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _release(attempt: ContactAttempt, worker: str) -> None:
    """Give a claim back (nothing was sent: stopped at the latest before the body's first
    byte); a later sweep dispatches it again."""
    ContactAttempt.objects.filter(pk=attempt.pk, status=Status.SENDING, claimed_by=worker).update(
        status=Status.PENDING, send_started_at=None
    )


_LOST_CONNECTION = (InterfaceError, OperationalError)


def _retrying(fn):
    """Run a short recording transaction again when PostgreSQL picks it as a deadlock victim
    (e.g. against the death trigger cancelling the same follow-up), or on a fresh connection
    when the connection was lost (a restarted or failed-over server, a killed backend), for
    up to CHASE_RECORD_RETRY_SECONDS: the message has left, and only its record is missing."""

    def run(*args, **kwargs):
        deadline = time.monotonic() + settings.CHASE_RECORD_RETRY_SECONDS
        pause = 0.1
        while True:
            try:
                return fn(*args, **kwargs)
            except _LOST_CONNECTION as exc:
                deadlock = "deadlock" in str(exc).lower()
                # Inside a caller's transaction a new connection would not be in it.
                if time.monotonic() + pause > deadline or (
                    not deadlock and db_connection.in_atomic_block
                ):
                    raise
                logger.warning(
                    "recording a contact attempt met %s; trying again",
                    "a deadlock" if deadlock else f"a database error ({type(exc).__name__})",
                )
                if not deadlock:
                    # A broken connection stays broken: the next query opens a new one.
                    db_connection.close()
                    time.sleep(pause)
                    pause = min(pause * 2, 2.0)

    return run


@_retrying
def _record(attempt: ContactAttempt, worker: str, *, status: str, error: str) -> str:
    ContactAttempt.objects.filter(pk=attempt.pk, status=Status.SENDING, claimed_by=worker).update(
        status=status, error=error
    )
    return _status(attempt.pk)


def backoff(tries: int) -> datetime.timedelta:
    """Wait before try ``tries + 1``: CHASE_RETRY_BACKOFF_SECONDS doubled per try, capped."""
    seconds = settings.CHASE_RETRY_BACKOFF_SECONDS * 2 ** max(tries - 1, 0)
    return datetime.timedelta(seconds=min(seconds, settings.CHASE_RETRY_BACKOFF_MAX_SECONDS))


def _record_delivery(
    attempt: ContactAttempt, followup: FollowUp | None, worker: str, now, delivery: Delivery
) -> str:
    if delivery.outcome != "sent":
        log = logger.error if delivery.outcome in ("permanent", "unknown") else logger.warning
        log(
            "contact attempt %s (%s) %s: %s",
            attempt.pk,
            attempt.kind,
            delivery.outcome,
            delivery.reason,
        )
    try:
        return _record_delivery_once(attempt, followup, worker, now, delivery)
    except _LOST_CONNECTION:
        # The sweep makes it unknown when the claim expires ("the result could not be
        # recorded"); the log says what really happened, for staff resolving it.
        logger.error(
            "contact attempt %s (%s) %s, but the result could not be recorded "
            "(database unreachable for %s s)",
            attempt.pk,
            attempt.kind,
            "accepted by the server (250)" if delivery.outcome == "sent" else delivery.outcome,
            settings.CHASE_RECORD_RETRY_SECONDS,
        )
        raise


@_retrying
def _record_delivery_once(
    attempt: ContactAttempt, followup: FollowUp | None, worker: str, now, delivery: Delivery
) -> str:
    # Ours while sending; or already made unknown by a sweep that thought us dead: we know
    # better, it was sent (or not).
    mine = ContactAttempt.objects.filter(
        pk=attempt.pk, claimed_by=worker, status__in=[Status.SENDING, Status.UNKNOWN]
    )
    with transaction.atomic():
        if delivery.outcome == "sent":
            # When the server took it (its 250), not when the claim was made.
            sent_at = delivery.at or now
            mine.update(
                status=Status.SENT,
                sent_at=sent_at,
                tries=F("tries") + 1,
                error="",
                provider_id=delivery.provider_id,
            )
            if followup is not None:
                today = local_today(sent_at, followup.procedure.patient.site.time_zone)
                updates = {"last_contact_on": today}
                if attempt.kind == ContactAttempt.Kind.INVITATION:
                    updates["invitations_sent"] = F("invitations_sent") + 1
                FollowUp.objects.filter(pk=followup.pk).update(**updates)
        elif delivery.outcome == "transient":
            mine.update(
                status=Status.PENDING,
                tries=F("tries") + 1,
                error=delivery.reason,
                error_code=delivery.code,
                provider_error_code=delivery.provider_code,
                next_try_at=now + backoff(attempt.tries + 1),
                dispatched_at=None,
                send_started_at=None,
            )
        elif delivery.outcome == "permanent":
            mine.update(
                status=Status.FAILED,
                tries=F("tries") + 1,
                error=delivery.reason,
                error_code=delivery.code,
                provider_error_code=delivery.provider_code,
            )
            if followup is not None:
                _fallback(
                    attempt,
                    followup,
                    now,
                    reason=FollowUp.WorklistReason.SMS_REFUSED
                    if attempt.channel == Channel.SMS
                    else FollowUp.WorklistReason.EMAIL_REFUSED,
                )
        else:
            mine.update(
                status=Status.UNKNOWN,
                tries=F("tries") + 1,
                error=delivery.reason,
                error_code=delivery.code,
                provider_error_code=delivery.provider_code,
            )
    return _status(attempt.pk)


def sms_receipt_apply(
    *,
    attempt_id: int,
    message_sid: str,
    status: str,
    error_code: str,
    now: datetime.datetime | None = None,
) -> bool:
    """A delivery receipt (``sms.sms_receipt_record``) and, when it says the text was
    ``undelivered`` or ``failed``, what a refusal at send time does: the same step by email
    when the patient may be emailed, else the phone worklist (``SMS_UNDELIVERED``). Nothing
    more for a follow-up no longer pending, a patient who died or withdrew, or a digest.

    At most once per text: the receipt's conditional UPDATE (only while the attempt has no
    final word) and the fallback are one transaction, so of a receipt replayed or delivered
    twice at once only the one whose UPDATE changed the row goes on (the other waits on the
    row lock, then matches nothing); the unique constraint per step and channel makes the
    email attempt once even so. Returns whether the receipt changed the attempt."""
    now = now or timezone.now()
    with transaction.atomic():
        changed = sms.sms_receipt_record(
            attempt_id=attempt_id, message_sid=message_sid, status=status, error_code=error_code
        )
        if not changed or status not in sms.NOT_DELIVERED:
            return changed
        attempt = ContactAttempt.objects.get(pk=attempt_id)
        if attempt.followup_id is None or attempt.kind not in STEP_KINDS:
            return changed
        followup = _followup(attempt)
        skip = _skip_reason(followup, Channel.EMAIL)
        if skip and skip != NO_EMAIL:  # died, withdrew, answered or closed: no one to chase
            return changed
        _fallback(attempt, followup, now, reason=FollowUp.WorklistReason.SMS_UNDELIVERED)
    return changed


def followup_to_worklist(*, followup: FollowUp, now, reason: str) -> None:
    """Put a follow-up on its site's phone worklist (once; the first reason stays)."""
    today = local_today(now, followup.procedure.patient.site.time_zone)
    FollowUp.objects.pending().filter(pk=followup.pk, on_phone_worklist_since__isnull=True).update(
        on_phone_worklist_since=today, worklist_reason=reason
    )


# --- staff resolving attempts ----------------------------------------------------------------


@dataclass(frozen=True)
class SendAgain:
    """``ids``: made due again. ``waiting``: unknown attempts whose old claim might still be
    held by a live (frozen) sender, until ``ready_at``."""

    ids: list[int]
    waiting: int = 0
    ready_at: datetime.datetime | None = None


def send_again_after(claimed_at: datetime.datetime) -> datetime.datetime:
    """An unknown attempt may be sent again once no holder of its old claim can still send:
    the claim's end, plus one EMAIL_TIMEOUT for the clocks of two machines to disagree (the
    holder itself starts no body later than one EMAIL_TIMEOUT before the end)."""
    return claimed_at + datetime.timedelta(seconds=claim_seconds() + settings.EMAIL_TIMEOUT)


def contact_attempts_send_again(*, attempt_ids: list[int], now=None) -> SendAgain:
    """Staff's "send again" for attempts ``failed`` or ``unknown``: due again at once.
    Idempotent: an attempt already pending, sending or sent is left alone (a double click or
    two staff members never queue two sends). An ``unknown`` attempt whose claim is younger
    than ``send_again_after`` waits (its sender may be frozen, not dead)."""
    now = now or timezone.now()
    margin = datetime.timedelta(seconds=claim_seconds() + settings.EMAIL_TIMEOUT)
    with transaction.atomic():
        rows = list(
            ContactAttempt.objects.select_for_update()
            .filter(pk__in=attempt_ids, status__in=[Status.FAILED, Status.UNKNOWN])
            .values_list("pk", "status", "claimed_at")
        )
        held = [
            claimed_at
            for _pk, status, claimed_at in rows
            if status == Status.UNKNOWN and claimed_at is not None and claimed_at > now - margin
        ]
        ids = [
            pk
            for pk, status, claimed_at in rows
            if not (
                status == Status.UNKNOWN and claimed_at is not None and claimed_at > now - margin
            )
        ]
        ContactAttempt.objects.filter(pk__in=ids).update(
            status=Status.PENDING,
            next_try_at=None,
            dispatched_at=None,
            send_started_at=None,
            error="",
            error_code=None,
        )
    ready_at = send_again_after(max(held)) if held else None
    return SendAgain(ids=ids, waiting=len(held), ready_at=ready_at)


def contact_attempts_mark_sent(*, attempt_ids: list[int], now=None) -> int:
    """Staff's "mark sent" for attempts ``unknown`` (the patient confirms, or the mail log
    shows the message left): sent when its body went to the server."""
    now = now or timezone.now()
    return ContactAttempt.objects.filter(pk__in=attempt_ids, status=Status.UNKNOWN).update(
        status=Status.SENT, sent_at=Coalesce(F("send_started_at"), Value(now))
    )


# --- a new link on staff's request -----------------------------------------------------------


class LinkNotIssued(Exception):
    """A new link cannot be given for this follow-up; the message says why, for staff."""


class LinkNotEmailed(LinkNotIssued):
    """The mail server did not take the new link's email; the previous link still works.
    ``reason`` is the classified failure (SMTP code and class, never the server's text)."""

    def __init__(self, message: str, *, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class IssuedLink:
    url: str
    emailed_to: str


_LINK_FIELDS = ["link_nonce", "link_token_hash", "link_issued_at", "link_opened_at"]


def followup_link_resend(*, followup_id: int, now: datetime.datetime | None = None) -> IssuedLink:
    """Give a follow-up a new questionnaire link, invalidating the previous one, and email it
    when the patient may be emailed; otherwise staff hand the returned link over. Refuses
    (``LinkNotIssued``) outside the window, after completion or cancellation, and for a
    deceased or withdrawn patient. A failed email leaves the old link in place.

    The email leaves with no transaction open and no row locked.
    """
    now = now or timezone.now()
    with transaction.atomic():
        followup = (
            FollowUp.objects.select_for_update(of=("self",))
            .select_related("procedure__patient__site")
            .annotate(
                emailable=Exists(
                    Patient.objects.filter(patient_emailable(), pk=OuterRef("procedure__patient"))
                )
            )
            .get(pk=followup_id)
        )
        patient = followup.procedure.patient
        today = local_today(now, patient.site.time_zone)
        if patient.date_of_death is not None:
            raise LinkNotIssued(_("The patient has died."))
        if patient.consent_withdrawn_date is not None:
            raise LinkNotIssued(_("The patient has withdrawn consent."))
        if followup.state in FollowUp.FINAL_STATES:
            raise LinkNotIssued(
                _("This follow-up is %(state)s.") % {"state": followup.get_state_display()}
            )
        if not followup.window_start <= today <= followup.window_end:
            raise LinkNotIssued(
                _("The questionnaire window is %(start)s to %(end)s.")
                % {"start": followup.window_start, "end": followup.window_end}
            )
        previous = {name: getattr(followup, name) for name in _LINK_FIELDS}
        token = links.link_issue(followup, now=now)
        if followup.state == FollowUp.State.SCHEDULED:
            followup.state = FollowUp.State.OPEN
        followup.save(update_fields=["state", *_LINK_FIELDS])
    if not followup.emailable:
        return IssuedLink(url=links.link_url(token), emailed_to="")
    contact = PatientContact.objects.get(patient_id=patient.pk)
    message = _link_email(ContactAttempt.Kind.INVITATION, followup, contact, token)
    delivery = deliver(message)
    if delivery.outcome in ("transient", "permanent"):
        # Nothing left: the old link stays the patient's link.
        FollowUp.objects.filter(pk=followup.pk, link_nonce=followup.link_nonce).update(**previous)
        logger.warning("new link for follow-up %s not emailed: %s", followup.pk, delivery.reason)
        raise LinkNotEmailed(
            _("The email could not be sent (%(reason)s).") % {"reason": delivery.reason},
            reason=delivery.reason,
        )
    FollowUp.objects.filter(pk=followup.pk).update(last_contact_on=today)
    return IssuedLink(url=links.link_url(token), emailed_to=contact.email)
