"""Celery tasks: thin wrappers that take ids and call one service each."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from outcomes.followups.sending import SendFailed, contact_attempt_send
from outcomes.followups.sweep import followups_sweep
from outcomes.health.checks import sweep_record
from outcomes.questionnaire.ratelimit import link_failures_prune


@shared_task(name="outcomes.chase_followups")
def chase_followups() -> dict:
    now = timezone.now()
    report = followups_sweep(now=now, enqueue=send_contact_attempt.delay)
    link_failures_prune(now=now)
    sweep_record(
        started_at=now,
        finished_at=timezone.now(),
        actions=len(report.actions),
        messages=len(report.attempt_ids),
    )
    return {"actions": len(report.actions), "messages": len(report.attempt_ids)}


@shared_task(
    name="outcomes.send_contact_attempt",
    autoretry_for=(SendFailed,),
    retry_backoff=60,
    retry_backoff_max=3600,
    retry_jitter=True,
    max_retries=6,
)
def send_contact_attempt(attempt_id: int) -> str:
    return contact_attempt_send(attempt_id=attempt_id)
