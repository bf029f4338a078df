"""Celery tasks: thin wrappers that take ids and call one service each."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from outcomes.followups.sending import SendFailed, contact_attempt_send
from outcomes.followups.sweep import followups_sweep
from outcomes.questionnaire.ratelimit import link_failures_prune


@shared_task(name="outcomes.chase_followups")
def chase_followups() -> dict:
    now = timezone.now()
    report = followups_sweep(now=now, enqueue=send_contact_attempt.delay)
    link_failures_prune(now=now)
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


@shared_task(name="outcomes.data_quality_nightly")
def data_quality_nightly() -> dict:
    from outcomes.quality.services import quality_run

    runs = quality_run()
    return {run.site_id: sum(run.counts.values()) for run in runs}
