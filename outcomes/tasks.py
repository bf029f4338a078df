"""Celery tasks: thin wrappers that take ids and call one service each.

A queued send is only a hint: the contact-attempt row is the truth, and every sweep dispatches
again what is due and not finished. So neither task retries through the broker; a transient
failure sets the attempt's ``next_try_at`` and a later sweep dispatches it.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from outcomes.followups.sending import contact_attempt_send
from outcomes.followups.sweep import followups_sweep
from outcomes.health.checks import sweep_record
from outcomes.questionnaire.ratelimit import link_failures_prune


def enqueue_send(attempt_id: int) -> None:
    """Queue one send; raises at once when the broker is unreachable (no publish retries:
    the sweep leaves the attempt for the next sweep)."""
    send_contact_attempt.apply_async((attempt_id,), retry=False)


@shared_task(
    name="outcomes.chase_followups",
    soft_time_limit=settings.CHASE_SWEEP_SOFT_TIME_LIMIT,
    time_limit=settings.CHASE_SWEEP_TIME_LIMIT,
)
def chase_followups() -> dict:
    now = timezone.now()
    report = followups_sweep(now=now, enqueue=enqueue_send)
    link_failures_prune(now=now)
    sweep_record(
        started_at=now,
        finished_at=timezone.now(),
        actions=len(report.actions),
        messages=len(report.attempt_ids),
    )
    return {
        "actions": len(report.actions),
        "dispatched": len(report.attempt_ids),
        "not_queued": report.not_queued,
        "unknown": report.unknown,
    }


@shared_task(
    name="outcomes.send_contact_attempt",
    soft_time_limit=settings.CHASE_SEND_SOFT_TIME_LIMIT,
    time_limit=settings.CHASE_SEND_TIME_LIMIT,
)
def send_contact_attempt(attempt_id: int) -> str:
    return contact_attempt_send(attempt_id=attempt_id)


@shared_task(name="outcomes.data_quality_nightly")
def data_quality_nightly() -> dict:
    from outcomes.quality.services import quality_run

    runs = quality_run()
    return {run.site_id: sum(run.counts.values()) for run in runs}


@shared_task(name="outcomes.clear_sessions")
def clear_sessions() -> None:
    """Expired sessions are deleted (they may hold an import's rows): Django never does it
    by itself."""
    from django.core.management import call_command

    call_command("clearsessions")
