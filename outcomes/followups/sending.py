"""Sending contact attempts and new links (design.md §5-6): claim, send, record.

The guarantee is **at most one delivery per step, and every doubt visible**:

1. *Claim.* One committed UPDATE moves the attempt from ``pending`` (due) to ``sending`` with the
   claim time and the worker's name. Only one worker's UPDATE can match; a redelivered task, a
   second hint or a racing sweep finds the attempt claimed and does nothing.
2. *Check.* Death, withdrawal, completion and "may be emailed" are read again, and once more in
   the same UPDATE that marks ``send_started_at`` right before the message body goes to the
   server, so a death recorded a moment earlier stops the message.
3. *Send* with no transaction open and no row locked (a hung server blocks no one; recording a
   death finishes at once), within ``EMAIL_TIMEOUT`` per SMTP operation.
4. *Record* ``sent`` (or the classified failure) in a short transaction.

A worker killed between 2 and 4 leaves ``sending`` behind; when its claim expires
(``CHASE_CLAIM_SECONDS``, longer than the task's hard time limit) the sweep makes it
``pending`` again when the body never started (nothing was delivered), else ``unknown``: the
server may have the message and only staff can tell (mark sent, or send again). Exactly once is
impossible without the mail server's help; a patient receiving a reminder twice is worse than a
visible unknown.

Errors are stored and logged as a classified reason (SMTP code and class), never the address or
the server's text, which often echoes the address.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import smtplib
import socket
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.core.mail.message import sanitize_address
from django.db import OperationalError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from outcomes.followups import links
from outcomes.followups.messages import digest_message, patient_message
from outcomes.followups.schedule import local_today
from outcomes.models import ContactAttempt, FollowUp, patient_emailable
from registry.models import Patient, PatientContact

logger = logging.getLogger(__name__)

Status = ContactAttempt.Status


# --- delivery and the classification of its failures ---------------------------------------


@dataclass(frozen=True)
class Delivery:
    """What became of one message: ``sent``, ``transient`` (not delivered, try again),
    ``permanent`` (refused for good) or ``unknown`` (the server may have it)."""

    outcome: str
    reason: str = ""
    code: int | None = None


class ClaimLost(Exception):
    """The attempt is no longer ours (or no longer to be sent) right before the body."""


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


def deliver(message: EmailMessage, *, before_body: Callable[[], None]) -> Delivery:
    """Send ``message`` and say what became of it. ``before_body()`` runs right before the
    message body goes to the server (after the recipient was accepted); it may raise
    ``ClaimLost`` to stop, and then nothing is delivered.

    With the SMTP backend each stage is run separately so that a failure before the body is
    known not to have delivered anything; every socket operation is bounded by EMAIL_TIMEOUT.
    Other backends (files, memory) are sent in one call after ``before_body()``.
    """
    backend = get_connection(timeout=settings.EMAIL_TIMEOUT)
    if not isinstance(backend, SmtpBackend):
        before_body()
        try:
            backend.send_messages([message])
        except ClaimLost:
            raise
        except Exception as exc:  # noqa: BLE001 - classified, never re-raised with its text
            return classify(exc, body_sent=False)
        return Delivery("sent")
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
            before_body()
        except ClaimLost:
            connection.rset()
            raise
        body_sent = True
        code, reply = connection.data(message.message().as_bytes(linesep="\r\n"))
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)
    except ClaimLost:
        raise
    except Exception as exc:  # noqa: BLE001 - classified, never re-raised with its text
        return classify(exc, body_sent=body_sent)
    finally:
        with contextlib.suppress(Exception):  # the message's fate is already known
            backend.close()
    return Delivery("sent")


# --- claim, send, record --------------------------------------------------------------------


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claimable(now: datetime.datetime) -> Q:
    """Attempts a sender may claim now: pending and due."""
    return Q(status=Status.PENDING) & (Q(next_try_at__isnull=True) | Q(next_try_at__lte=now))


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
            skip = _skip_reason(followup) or _already_sent_to_address(attempt, followup, now)
            if skip:
                return _record(attempt, worker, now, status=Status.SKIPPED, error=skip)
            message = _patient_email(attempt, followup)
    except Exception:
        _release(attempt, worker)
        raise

    def before_body() -> None:
        if not _mark_started(attempt, worker, now):
            raise ClaimLost

    try:
        delivery = deliver(message, before_body=before_body)
    except ClaimLost:
        if followup is not None and (
            skip := _skip_reason(_followup(attempt))
            or _already_sent_to_address(attempt, followup, now)
        ):
            return _record(attempt, worker, now, status=Status.SKIPPED, error=skip)
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
            )
        )
        .get(pk=attempt.followup_id)
    )


def _skip_reason(followup: FollowUp) -> str:
    patient = followup.procedure.patient
    if patient.date_of_death is not None:
        return "patient deceased"
    if patient.consent_withdrawn_date is not None:
        return "consent withdrawn"
    if followup.state in FollowUp.FINAL_STATES:
        return f"follow-up {followup.state}"
    if not followup.emailable:
        return "no email or no consent to contact"
    return ""


# Messages a patient entered twice must not get twice on one day (a manual link is asked for).
SENT_ONCE_PER_ADDRESS = (
    ContactAttempt.Kind.INVITATION,
    ContactAttempt.Kind.REMINDER_1,
    ContactAttempt.Kind.REMINDER_2,
)
DUPLICATE_ADDRESS = "the same message went to this email address today (a likely duplicate)"


def _same_message_to_address(attempt: ContactAttempt, followup: FollowUp, now):
    """Other patients' messages of the same kind and timepoint to the same email address
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
    return ContactAttempt.objects.filter(
        kind=attempt.kind,
        followup__timepoint=followup.timepoint,
        followup__procedure__patient__contact__email__iexact=email,
        status__in=[Status.SENDING, Status.SENT, Status.UNKNOWN],
        send_started_at__gte=day_start,
    ).exclude(pk=attempt.pk)


def _already_sent_to_address(attempt: ContactAttempt, followup: FollowUp, now) -> str:
    if attempt.kind not in SENT_ONCE_PER_ADDRESS:
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


def _mark_started(attempt: ContactAttempt, worker: str, now) -> bool:
    """Right before the body: still ours, and (for a patient) the follow-up still pending, the
    patient still emailable and the same message not yet started to the same address today.
    One statement, committed at once; two workers sending to one address take turns on an
    advisory lock of the address, so the second sees the first's start."""
    mine = ContactAttempt.objects.filter(pk=attempt.pk, status=Status.SENDING, claimed_by=worker)
    if attempt.followup_id is None:
        return mine.update(send_started_at=now) == 1
    followup = _followup(attempt)
    mine = mine.filter(
        Exists(
            FollowUp.objects.pending().filter(
                patient_emailable("procedure__patient__"), pk=attempt.followup_id
            )
        )
    )
    if attempt.kind not in SENT_ONCE_PER_ADDRESS:
        return mine.update(send_started_at=now) == 1
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(lower(coalesce("
            "(SELECT email FROM registry_patientcontact WHERE patient_id = %s), ''))))",
            [f"{attempt.kind}:{followup.timepoint}", followup.procedure.patient_id],
        )
        same = _same_message_to_address(attempt, followup, now)
        if same is not None:
            mine = mine.filter(~Exists(same))
        return mine.update(send_started_at=now) == 1


def _release(attempt: ContactAttempt, worker: str) -> None:
    """Give a claim back untouched (nothing was sent)."""
    ContactAttempt.objects.filter(
        pk=attempt.pk, status=Status.SENDING, claimed_by=worker, send_started_at__isnull=True
    ).update(status=Status.PENDING)


def _retrying(fn):
    """Run a short recording transaction again when PostgreSQL picks it as a deadlock victim
    (e.g. against the death trigger cancelling the same follow-up)."""

    def run(*args, **kwargs):
        for round_ in range(5):
            try:
                return fn(*args, **kwargs)
            except OperationalError as exc:
                if round_ == 4 or "deadlock" not in str(exc).lower():
                    raise
                logger.warning("recording a contact attempt met a deadlock; trying again")
        return None

    return run


@_retrying
def _record(attempt: ContactAttempt, worker: str, now, *, status: str, error: str) -> str:
    ContactAttempt.objects.filter(pk=attempt.pk, status=Status.SENDING, claimed_by=worker).update(
        status=status, error=error
    )
    return _status(attempt.pk)


def backoff(tries: int) -> datetime.timedelta:
    """Wait before try ``tries + 1``: CHASE_RETRY_BACKOFF_SECONDS doubled per try, capped."""
    seconds = settings.CHASE_RETRY_BACKOFF_SECONDS * 2 ** max(tries - 1, 0)
    return datetime.timedelta(seconds=min(seconds, settings.CHASE_RETRY_BACKOFF_MAX_SECONDS))


@_retrying
def _record_delivery(
    attempt: ContactAttempt, followup: FollowUp | None, worker: str, now, delivery: Delivery
) -> str:
    # Ours while sending; or already made unknown by a sweep that thought us dead: we know
    # better, it was sent (or not).
    mine = ContactAttempt.objects.filter(
        pk=attempt.pk, claimed_by=worker, status__in=[Status.SENDING, Status.UNKNOWN]
    )
    if delivery.outcome != "sent":
        log = logger.error if delivery.outcome in ("permanent", "unknown") else logger.warning
        log(
            "contact attempt %s (%s) %s: %s",
            attempt.pk,
            attempt.kind,
            delivery.outcome,
            delivery.reason,
        )
    with transaction.atomic():
        if delivery.outcome == "sent":
            mine.update(status=Status.SENT, sent_at=now, tries=F("tries") + 1, error="")
            if followup is not None:
                today = local_today(now, followup.procedure.patient.site.time_zone)
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
            )
            if followup is not None:
                followup_to_worklist(
                    followup=followup, now=now, reason=FollowUp.WorklistReason.EMAIL_REFUSED
                )
        else:
            mine.update(
                status=Status.UNKNOWN,
                tries=F("tries") + 1,
                error=delivery.reason,
                error_code=delivery.code,
            )
    return _status(attempt.pk)


def followup_to_worklist(*, followup: FollowUp, now, reason: str) -> None:
    """Put a follow-up on its site's phone worklist (once; the first reason stays)."""
    today = local_today(now, followup.procedure.patient.site.time_zone)
    FollowUp.objects.pending().filter(pk=followup.pk, on_phone_worklist_since__isnull=True).update(
        on_phone_worklist_since=today, worklist_reason=reason
    )


# --- staff resolving attempts ----------------------------------------------------------------


def contact_attempts_send_again(*, attempt_ids: list[int], now=None) -> list[int]:
    """Staff's "send again" for attempts ``failed`` or ``unknown``: due again at once.
    Idempotent: an attempt already pending, sending or sent is left alone (a double click or
    two staff members never queue two sends). Returns the ids made due."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            ContactAttempt.objects.select_for_update()
            .filter(pk__in=attempt_ids, status__in=[Status.FAILED, Status.UNKNOWN])
            .values_list("pk", flat=True)
        )
        ContactAttempt.objects.filter(pk__in=ids).update(
            status=Status.PENDING,
            next_try_at=None,
            dispatched_at=None,
            send_started_at=None,
            error="",
            error_code=None,
        )
    return ids


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
    delivery = deliver(message, before_body=lambda: None)
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
