"""The chasing sweep (design.md §3, §5).

The sweep claims pending follow-ups in batches of ``SWEEP_BATCH_SIZE`` with
``SELECT … FOR UPDATE SKIP LOCKED`` (a fixed number of queries per batch), decides each one's
next step with the pure rules of ``outcomes.followups.schedule``, and records every message to
send as a ``ContactAttempt`` row whose unique constraint makes a second send of the same step
impossible. Those rows are an outbox: the sweep then dispatches every attempt due and not
finished, including those whose queued message a broker lost, and
``outcomes.followups.sending`` sends each at most once.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q, Subquery

from outcomes.followups import links, sms, texting
from outcomes.followups.schedule import (
    PLAN,
    PLAN_BY_TIMEPOINT,
    FollowUpFacts,
    Step,
    local_today,
    next_step,
    schedule_for,
)
from outcomes.followups.sending import claimable
from outcomes.models import (
    ContactAttempt,
    FollowUp,
    QuestionnaireResponse,
    attempt_refused_q,
    patient_emailable,
    patient_textable,
)
from outcomes.quality.models import DataQuery
from registry.models import Patient, PatientContact, Procedure, Site
from registry.sqlbulk import rows_insert, rows_update

logger = logging.getLogger(__name__)


SWEEP_BATCH_SIZE = 500

# An expired claim whose body had started: its sender stopped, froze, or lost the database
# after the body; the worker's log says which, when it could say anything.
RESULT_NOT_RECORDED = "the result could not be recorded (the message body had started)"


ENSURE_BATCH_SIZE = 2000


def followups_ensure(*, procedure_ids: list[int] | None = None) -> int:
    """Create the missing follow-ups of procedures (idempotent) and move the dates of those
    not started when a procedure's date changed. Returns how many were created."""
    procedures = Procedure.objects.all()
    if procedure_ids is not None:
        procedures = procedures.filter(pk__in=procedure_ids)
    missing = procedures.filter(
        ~Exists(FollowUp.objects.filter(procedure=OuterRef("pk"), timepoint="month_12"))
        | ~Exists(FollowUp.objects.filter(procedure=OuterRef("pk"), timepoint="baseline"))
    ).values_list("pk", "date")
    created = 0
    batch: list[FollowUp] = []
    for procedure_id, procedure_date in missing.iterator(chunk_size=ENSURE_BATCH_SIZE):
        for dates in schedule_for(procedure_date):
            batch.append(
                FollowUp(
                    procedure_id=procedure_id,
                    timepoint=dates.timepoint,
                    due_date=dates.due_date,
                    window_start=dates.window_start,
                    window_end=dates.window_end,
                )
            )
        if len(batch) >= ENSURE_BATCH_SIZE:
            created += len(FollowUp.objects.bulk_create(batch, ignore_conflicts=True))
            batch = []
    if batch:
        created += len(FollowUp.objects.bulk_create(batch, ignore_conflicts=True))
    _move_unstarted(procedures)
    return created


def _move_unstarted(procedures) -> None:
    """Follow-ups not started whose due date no longer matches their procedure's date take
    the dates the schedule gives for the new date."""
    day = datetime.timedelta(days=1)
    moved = Q()
    for plan in PLAN:
        moved |= Q(timepoint=plan.timepoint) & ~Q(
            due_date=F("procedure__date") + plan.due_offset * day
        )
    stale = FollowUp.objects.filter(
        moved, procedure__in=procedures.values("pk"), state=FollowUp.State.SCHEDULED
    )
    for followup_id, timepoint, procedure_date in stale.values_list(
        "pk", "timepoint", "procedure__date"
    ):
        (dates,) = [d for d in schedule_for(procedure_date) if d.timepoint == timepoint]
        FollowUp.objects.filter(pk=followup_id, state=FollowUp.State.SCHEDULED).update(
            due_date=dates.due_date,
            window_start=dates.window_start,
            window_end=dates.window_end,
        )


@dataclass
class SweepReport:
    actions: list[tuple[int, str, str]] = field(default_factory=list)  # (followup, timepoint, step)
    # Attempts dispatched by this sweep (queued, or for the caller to send when no enqueue).
    attempt_ids: list[int] = field(default_factory=list)
    batches: int = 0
    digests: int = 0
    not_queued: int = 0  # the broker refused: left for the next sweep
    claims_returned: int = 0  # claims expired before sending: pending again
    unknown: int = 0  # claims expired after the body began: for staff

    def count(self, step: Step) -> int:
        return sum(1 for _f, _t, s in self.actions if s == step.value)


STEP_KIND = {
    Step.INVITE: ContactAttempt.Kind.INVITATION,
    Step.REMIND_1: ContactAttempt.Kind.REMINDER_1,
    Step.REMIND_2: ContactAttempt.Kind.REMINDER_2,
}


def _sent_at(kind: str):
    return Subquery(
        ContactAttempt.objects.filter(
            followup=OuterRef("pk"), kind=kind, status=ContactAttempt.Status.SENT
        ).values("sent_at")[:1]
    )


def _refused(channel: str):
    """This follow-up's messages were refused for good by ``channel`` (a bounced address, a
    number the provider refused, a text its receipt says was not delivered): its later steps
    take the other channel."""
    return Exists(
        ContactAttempt.objects.filter(attempt_refused_q(channel), followup=OuterRef("pk"))
    )


def followup_channel(followup, *, sms_on: bool) -> str | None:
    """The channel of a follow-up's next message (``texting.channel_choose``) from the sweep's
    annotations: ``None`` when it can be reached by neither (the phone worklist)."""
    return texting.channel_choose(
        preferred=followup.preferred_channel or texting.EMAIL,
        email=followup.emailable and not followup.email_refused,
        sms=sms_on and followup.textable and not followup.sms_refused,
    )


def followups_sweep(
    *,
    now: datetime.datetime,
    enqueue: Callable[[int], None] | None = None,
    batch_size: int = SWEEP_BATCH_SIZE,
) -> SweepReport:
    """One chasing sweep as of ``now``: ensure schedules, move every pending follow-up one step
    on batch by batch (each batch its own transaction), create the day's digests, then
    dispatch every contact attempt that is due and not finished (``contact_attempts_dispatch``).

    ``enqueue(attempt_id)`` queues a send; without it the caller sends ``report.attempt_ids``.
    """
    followups_ensure()
    report = SweepReport()
    last_pk = 0
    horizon = now.date() + datetime.timedelta(days=1)  # no site is more than a day ahead
    while True:
        with transaction.atomic():
            batch = list(
                FollowUp.objects.pending()
                .select_for_update(skip_locked=True, of=("self",))
                .filter(pk__gt=last_pk, window_start__lte=horizon)
                .annotate(
                    has_response=Exists(
                        QuestionnaireResponse.objects.filter(
                            procedure=OuterRef("procedure"), timepoint=OuterRef("timepoint")
                        )
                    ),
                    emailable=Exists(
                        Patient.objects.filter(
                            patient_emailable(), pk=OuterRef("procedure__patient")
                        )
                    ),
                    textable=Exists(
                        Patient.objects.filter(
                            patient_textable(), pk=OuterRef("procedure__patient")
                        )
                    ),
                    preferred_channel=Subquery(
                        PatientContact.objects.filter(
                            patient=OuterRef("procedure__patient")
                        ).values("preferred_channel")[:1]
                    ),
                    email_refused=_refused(ContactAttempt.Channel.EMAIL),
                    sms_refused=_refused(ContactAttempt.Channel.SMS),
                    invitation_sent_at=_sent_at(ContactAttempt.Kind.INVITATION),
                    reminder_1_sent_at=_sent_at(ContactAttempt.Kind.REMINDER_1),
                )
                .order_by("pk")
                .values(*BATCH_COLUMNS)[:batch_size]
            )
            if not batch:
                break
            # Plain rows, not four model instances a follow-up (13 % of the sweep's time).
            batch = [SimpleNamespace(**row) for row in batch]
            last_pk = batch[-1].pk
            report.batches += 1
            _advance_batch(batch, now, report)
    report.digests = _create_digests(now)
    contact_attempts_dispatch(now=now, enqueue=enqueue, report=report)
    return report


def _local_date(moment: datetime.datetime | None, time_zone: str) -> datetime.date | None:
    return None if moment is None else local_today(moment, time_zone)


# The columns the batch's rows are read with (``_advance_batch``), and those it writes back.
UPDATED_FIELDS = [
    "state",
    "completed_at",
    "cancel_reason",
    "invited_on",
    "reminders_sent",
    "on_phone_worklist_since",
    "worklist_reason",
    "link_nonce",
    "link_token_hash",
    "link_issued_at",
    "link_opened_at",
]
BATCH_COLUMNS = [
    "pk",
    "timepoint",
    "window_start",
    "window_end",
    *UPDATED_FIELDS,
    "has_response",
    "emailable",
    "textable",
    "preferred_channel",
    "email_refused",
    "sms_refused",
    "invitation_sent_at",
    "reminder_1_sent_at",
    "procedure__patient__date_of_death",
    "procedure__patient__consent_withdrawn_date",
    "procedure__patient__site_id",
    "procedure__patient__site__time_zone",
]


def _advance_batch(batch: list[SimpleNamespace], now, report: SweepReport) -> None:
    """Decide and record each follow-up's next step; ``batch`` holds ``BATCH_COLUMNS`` of
    each (attributes named as the columns, the patient's as ``procedure__patient__…``)."""
    attempts: list[ContactAttempt] = []
    changed: list[SimpleNamespace] = []
    sms_on = sms.sms_configured()
    for followup in batch:
        channel = followup_channel(followup, sms_on=sms_on)
        date_of_death = followup.procedure__patient__date_of_death
        zone = followup.procedure__patient__site__time_zone
        today = local_today(now, zone)
        step = next_step(
            FollowUpFacts(
                state=followup.state,
                timepoint=followup.timepoint,
                window_start=followup.window_start,
                window_end=followup.window_end,
                reminders_sent=followup.reminders_sent,
                invitation_sent_on=_local_date(followup.invitation_sent_at, zone),
                reminder_1_sent_on=_local_date(followup.reminder_1_sent_at, zone),
                has_response=followup.has_response,
                patient_deceased=date_of_death is not None,
                consent_withdrawn=followup.procedure__patient__consent_withdrawn_date is not None,
                contactable=channel is not None,
            ),
            today,
        )
        if step is Step.NOTHING:
            continue
        report.actions.append((followup.pk, followup.timepoint, step.value))
        changed.append(followup)
        if step is Step.COMPLETE:
            followup.state = FollowUp.State.COMPLETED
            followup.completed_at = now
        elif step is Step.CANCEL:
            followup.state = FollowUp.State.CANCELLED
            followup.cancel_reason = (
                FollowUp.CancelReason.DEATH if date_of_death else FollowUp.CancelReason.WITHDRAWAL
            )
        elif step is Step.MISS:
            followup.state = FollowUp.State.MISSED
        elif step is Step.OPEN:
            followup.state = FollowUp.State.OPEN
            if followup.on_phone_worklist_since is None:
                followup.on_phone_worklist_since = today
                followup.worklist_reason = (
                    FollowUp.WorklistReason.NO_EMAIL
                    if PLAN_BY_TIMEPOINT[followup.timepoint].chased
                    else FollowUp.WorklistReason.NOT_CHASED
                )
        else:
            kind = STEP_KIND[step]
            if step is Step.INVITE:
                followup.state = FollowUp.State.INVITED
                followup.invited_on = today
                links.link_issue(followup, now=now)
            else:
                followup.state = FollowUp.State.REMINDED
                followup.reminders_sent += 1
                if step is Step.REMIND_2 and followup.on_phone_worklist_since is None:
                    followup.on_phone_worklist_since = today
                    followup.worklist_reason = FollowUp.WorklistReason.NO_ANSWER
            if channel is None:
                # A reminder due while no channel is left (both refused or closed): a call.
                if followup.on_phone_worklist_since is None:
                    followup.on_phone_worklist_since = today
                    followup.worklist_reason = FollowUp.WorklistReason.NO_EMAIL
                continue
            attempts.append(
                ContactAttempt(
                    followup_id=followup.pk,
                    site_id=followup.procedure__patient__site_id,
                    kind=kind,
                    channel=channel,
                )
            )
    # One UPDATE … FROM unnest(…) for the whole batch (not bulk_update's CASE/WHEN, whose
    # compilation in Python was 91 % of the sweep's time): the same rows, the same values, so
    # the same history rows from the same triggers.
    if changed:
        rows_update(FollowUp, changed, UPDATED_FIELDS)
    # No ON CONFLICT here: these follow-ups are locked by this transaction and their state
    # moved on together with the rows, so a duplicate step can only be a bug, and the unique
    # constraint then rolls the whole batch back rather than send anything twice. One
    # INSERT … SELECT FROM unnest(…) (not bulk_create, whose compilation in Python was a third
    # of its cost): the same rows, and one history statement writes their insert events.
    rows_insert(ContactAttempt, attempts)


def _create_digests(now) -> int:
    """One digest per site and day announcing the follow-ups that joined the site's phone
    worklist and were not yet announced, and the data queries raised since the site's last
    digest. Each follow-up is announced in exactly one digest: those that join after the day's
    digest was created wait for the next day's (queries likewise, by their raising time)."""
    unannounced = FollowUp.objects.on_worklist().filter(announced_in__isnull=True)
    # Queries raised since the site's last digest (or ever): its "new data queries".
    last_digest = ContactAttempt.objects.filter(
        kind=ContactAttempt.Kind.DIGEST, site=OuterRef("site")
    ).order_by("-created_at")
    new_queries = (
        DataQuery.objects.exclude(state=DataQuery.State.CLOSED)
        .annotate(last_digest_at=Subquery(last_digest.values("created_at")[:1]))
        .filter(Q(last_digest_at__isnull=True) | Q(raised_at__gt=F("last_digest_at")))
    )
    sites = Site.objects.filter(
        Exists(unannounced.filter(procedure__patient__site=OuterRef("pk")))
        | Exists(new_queries.filter(site=OuterRef("pk")))
    )
    created = 0
    for site in sites:
        try:
            with transaction.atomic():
                # A second sweep the same day (or a racing one) meets the unique constraint
                # and leaves the day's digest, and its announcements, as they are.
                digest = ContactAttempt.objects.create(
                    site=site,
                    kind=ContactAttempt.Kind.DIGEST,
                    digest_date=local_today(now, site.time_zone),
                )
                unannounced.filter(procedure__patient__site=site).update(announced_in=digest)
        except IntegrityError:
            continue
        created += 1
    return created


def contact_attempts_dispatch(
    *,
    now: datetime.datetime,
    enqueue: Callable[[int], None] | None,
    report: SweepReport,
    chunk_size: int = 1000,
) -> None:
    """The outbox: dispatch every contact attempt that is due and not finished.

    First, claims whose worker is gone (older than CHASE_CLAIM_SECONDS) are resolved: pending
    again when the body never started, ``unknown`` when it did. Then every attempt pending, due
    and not dispatched within CHASE_REDISPATCH_SECONDS is marked dispatched and handed to
    ``enqueue`` (a lost hint is dispatched again by a later sweep; a duplicate hint finds the
    attempt claimed). When the broker refuses, the rest is left for the next sweep with a
    warning, and the sweep ends normally.
    """
    Status = ContactAttempt.Status
    lease = datetime.timedelta(seconds=settings.CHASE_CLAIM_SECONDS)
    expired = ContactAttempt.objects.filter(status=Status.SENDING, claimed_at__lt=now - lease)
    report.claims_returned = expired.filter(send_started_at__isnull=True).update(
        status=Status.PENDING, dispatched_at=None
    )
    report.unknown = expired.filter(send_started_at__isnull=False).update(
        status=Status.UNKNOWN, error=RESULT_NOT_RECORDED
    )
    if report.unknown:
        logger.error(
            "%d contact attempts may or may not have been delivered (the result could not be "
            "recorded): resolve them in the admin",
            report.unknown,
        )
    age = datetime.timedelta(seconds=settings.CHASE_REDISPATCH_SECONDS)
    due = (
        ContactAttempt.objects.filter(claimable(now))
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=now - age))
        .order_by("pk")
    )
    last_pk = 0
    while True:
        with transaction.atomic():
            chunk = list(
                due.filter(pk__gt=last_pk)
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)[:chunk_size]
            )
            if not chunk:
                return
            ContactAttempt.objects.filter(pk__in=chunk).update(dispatched_at=now)
        last_pk = chunk[-1]
        if enqueue is None:
            report.attempt_ids.extend(chunk)
            continue
        for position, attempt_id in enumerate(chunk):
            try:
                enqueue(attempt_id)
            except Exception as exc:  # noqa: BLE001 - the broker is down: next sweep
                left = chunk[position:]
                ContactAttempt.objects.filter(pk__in=left, dispatched_at=now).update(
                    dispatched_at=None
                )
                report.not_queued = len(left) + due.filter(pk__gt=last_pk).count()
                logger.warning(
                    "could not queue contact attempts (%s); %d left for the next sweep",
                    type(exc).__name__,
                    report.not_queued,
                )
                return
            report.attempt_ids.append(attempt_id)
