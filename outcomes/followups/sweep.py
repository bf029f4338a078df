"""The chasing sweep (design.md §3, §5).

The sweep claims pending follow-ups in batches of ``SWEEP_BATCH_SIZE`` with
``SELECT … FOR UPDATE SKIP LOCKED`` (a fixed number of queries per batch), decides each one's
next step with the pure rules of ``outcomes.followups.schedule``, and records every message to
send as a ``ContactAttempt`` row whose unique constraint makes a second send of the same step
impossible. ``outcomes.followups.sending`` sends them.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Exists, F, OuterRef

from outcomes.followups import links
from outcomes.followups.schedule import (
    PLAN,
    FollowUpFacts,
    Step,
    local_today,
    next_step,
    schedule_for,
)
from outcomes.models import ContactAttempt, FollowUp, QuestionnaireResponse
from registry.models import PatientContact, Procedure, Site

logger = logging.getLogger(__name__)


SWEEP_BATCH_SIZE = 500


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
    day = datetime.timedelta(days=1)
    for plan in PLAN:
        due = F("procedure__date") + plan.due_offset * day
        stale = FollowUp.objects.filter(
            procedure__in=procedures.values("pk"),
            timepoint=plan.timepoint,
            state=FollowUp.State.SCHEDULED,
        ).exclude(due_date=due)
        for followup_id, procedure_date in stale.values_list("pk", "procedure__date"):
            FollowUp.objects.filter(pk=followup_id, state=FollowUp.State.SCHEDULED).update(
                due_date=procedure_date + plan.due_offset * day,
                window_start=procedure_date + plan.window_start_offset * day,
                window_end=procedure_date + plan.window_end_offset * day,
            )


@dataclass
class SweepReport:
    actions: list[tuple[int, str, str]] = field(default_factory=list)  # (followup, timepoint, step)
    attempt_ids: list[int] = field(default_factory=list)
    batches: int = 0

    def count(self, step: Step) -> int:
        return sum(1 for _f, _t, s in self.actions if s == step.value)


STEP_KIND = {
    Step.INVITE: ContactAttempt.Kind.INVITATION,
    Step.REMIND_1: ContactAttempt.Kind.REMINDER_1,
    Step.REMIND_2: ContactAttempt.Kind.REMINDER_2,
}


def followups_sweep(
    *,
    now: datetime.datetime,
    enqueue: Callable[[int], None] | None = None,
    batch_size: int = SWEEP_BATCH_SIZE,
) -> SweepReport:
    """One chasing sweep as of ``now``: ensure schedules, then move every pending follow-up
    one step on, batch by batch; finally queue one digest per site with a phone worklist.

    ``enqueue(attempt_id)`` is called after each batch commits (``transaction.on_commit``).
    """
    followups_ensure()
    report = SweepReport()
    last_pk = 0
    horizon = now.date() + datetime.timedelta(days=1)  # no site is more than a day ahead
    while True:
        with transaction.atomic():
            batch = list(
                FollowUp.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(pk__gt=last_pk, window_start__lte=horizon)
                .exclude(state__in=FollowUp.FINAL_STATES)
                .select_related("procedure__patient__site")
                .annotate(
                    has_response=Exists(
                        QuestionnaireResponse.objects.filter(
                            procedure=OuterRef("procedure"), timepoint=OuterRef("timepoint")
                        )
                    ),
                    contactable=Exists(
                        PatientContact.objects.filter(
                            patient=OuterRef("procedure__patient"), consent_to_contact=True
                        ).exclude(email="")
                    ),
                )
                .order_by("pk")[:batch_size]
            )
            if not batch:
                break
            last_pk = batch[-1].pk
            report.batches += 1
            attempt_ids = _advance_batch(batch, now, report)
            if enqueue:
                for attempt_id in attempt_ids:
                    transaction.on_commit(lambda attempt_id=attempt_id: enqueue(attempt_id))
            report.attempt_ids.extend(attempt_ids)
    report.attempt_ids.extend(_queue_digests(now, enqueue))
    return report


def _advance_batch(batch: list[FollowUp], now, report: SweepReport) -> list[int]:
    attempts: list[ContactAttempt] = []
    changed: list[FollowUp] = []
    for followup in batch:
        patient = followup.procedure.patient
        today = local_today(now, patient.site.time_zone)
        step = next_step(
            FollowUpFacts(
                state=followup.state,
                timepoint=followup.timepoint,
                window_start=followup.window_start,
                window_end=followup.window_end,
                invited_on=followup.invited_on,
                reminders_sent=followup.reminders_sent,
                has_response=followup.has_response,
                patient_deceased=patient.date_of_death is not None,
                consent_withdrawn=patient.consent_withdrawn_date is not None,
                contactable=followup.contactable,
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
                FollowUp.CancelReason.DEATH
                if patient.date_of_death
                else FollowUp.CancelReason.WITHDRAWAL
            )
        elif step is Step.MISS:
            followup.state = FollowUp.State.MISSED
        elif step is Step.OPEN:
            followup.state = FollowUp.State.OPEN
            followup.on_phone_worklist_since = today
        else:
            kind = STEP_KIND[step]
            if step is Step.INVITE:
                followup.state = FollowUp.State.INVITED
                followup.invited_on = today
                links.link_issue(followup)
            else:
                followup.state = FollowUp.State.REMINDED
                followup.reminders_sent += 1
                if step is Step.REMIND_2:
                    followup.on_phone_worklist_since = today
            attempts.append(ContactAttempt(followup=followup, site=patient.site, kind=kind))
    if changed:
        FollowUp.objects.bulk_update(
            changed,
            [
                "state",
                "completed_at",
                "cancel_reason",
                "invited_on",
                "reminders_sent",
                "on_phone_worklist_since",
                "link_nonce",
                "link_token_hash",
                "link_issued_at",
                "link_opened_at",
            ],
        )
    # No ON CONFLICT here: these follow-ups are locked by this transaction and their state
    # moved on together with the rows, so a duplicate step can only be a bug, and the unique
    # constraint then rolls the whole batch back rather than send anything twice.
    return [attempt.pk for attempt in ContactAttempt.objects.bulk_create(attempts)]


def _queue_digests(now, enqueue) -> list[int]:
    worklist = FollowUp.objects.filter(
        on_phone_worklist_since__isnull=False, phone_outcome=""
    ).exclude(state__in=FollowUp.FINAL_STATES)
    sites = Site.objects.filter(Exists(worklist.filter(procedure__patient__site=OuterRef("pk"))))
    attempts = [
        ContactAttempt(
            site=site,
            kind=ContactAttempt.Kind.DIGEST,
            digest_date=local_today(now, site.time_zone),
        )
        for site in sites
    ]
    with transaction.atomic():
        # Several sweeps a day, or on several workers, create one digest per site and day.
        ContactAttempt.objects.bulk_create(attempts, ignore_conflicts=True)
        ids = list(
            ContactAttempt.objects.filter(
                kind=ContactAttempt.Kind.DIGEST,
                status=ContactAttempt.Status.PENDING,
                site__in=[a.site for a in attempts],
                digest_date__in={a.digest_date for a in attempts},
            ).values_list("pk", flat=True)
        )
        if enqueue:
            for attempt_id in ids:
                transaction.on_commit(lambda attempt_id=attempt_id: enqueue(attempt_id))
    return ids
