"""Readiness (``/readyz``), the chasing's health (``/healthz/chasing``) and the operations
figures on the admin home page.

Each check returns a ``Check``; none raises: a failing dependency is reported, with the reason,
never turned into a 500. A web process is ready when it can serve pages: its database answers
and its migrations are applied. The broker, beat and the send backlog concern the background
chasing only; they are reported apart, for alerting, so that a Redis outage or a long queue
never takes the web tier (and the patients' questionnaire links) out of a load balancer.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Min
from django.db.models.functions import Coalesce
from django.utils import timezone

from outcomes.models import ContactAttempt, SweepRun
from registry.models import Site

logger = logging.getLogger(__name__)

CHASE_SWEEP = "chase_followups"
BROKER_TIMEOUT_SECONDS = 2.0
DEFAULT_QUEUE = "celery"


def queue_names() -> list[str]:
    """The queues the workers consume: the sweep's and the sends'."""
    return [settings.CHASE_SWEEP_QUEUE, settings.CELERY_TASK_DEFAULT_QUEUE]


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: dict = field(default_factory=dict)


def sweep_record(
    *, started_at: datetime.datetime, finished_at: datetime.datetime, actions: int, messages: int
) -> None:
    """Record that the chasing sweep finished (one row, overwritten by every sweep)."""
    SweepRun.objects.update_or_create(
        name=CHASE_SWEEP,
        defaults={
            "started_at": started_at,
            "finished_at": finished_at,
            "actions": actions,
            "messages": messages,
        },
    )


def check_database() -> Check:
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        return Check(False, {"error": _reason(error)})
    return Check(True)


_migrations_applied = False


def check_migrations() -> Check:
    """Every migration this code ships is applied (a new release before ``migrate`` is not
    ready). Once true it stays true for the process, so the graph is loaded only until then."""
    global _migrations_applied
    if _migrations_applied:
        return Check(True, {"unapplied": 0})
    try:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as error:  # noqa: BLE001
        return Check(False, {"error": _reason(error)})
    unapplied = [f"{migration.app_label}.{migration.name}" for migration, _back in plan]
    _migrations_applied = not unapplied
    return Check(not unapplied, {"unapplied": len(unapplied), "first": unapplied[:3]})


def check_broker() -> Check:
    """The broker answers; ``queue_depth``: messages waiting in every queue, ``queues`` per
    queue."""
    from registry.project.celery import app

    depths: dict[str, int] = {}
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_SECONDS)
            for queue in queue_names():
                # The Redis transport connects lazily; declaring passively talks to it.
                try:
                    depths[queue] = conn.default_channel.queue_declare(
                        queue=queue, passive=True
                    ).message_count
                except Exception as error:  # noqa: BLE001
                    if not _is_missing_queue(error):
                        raise
                    depths[queue] = 0
    except Exception as error:  # noqa: BLE001
        return Check(False, {"error": _reason(error)})
    return Check(True, {"queue_depth": sum(depths.values()), "queues": depths})


def check_backlog(now: datetime.datetime | None = None) -> Check:
    """Messages due and not yet sent, read from the database (so it answers while the broker
    is down): how many, and how long the oldest has been due. Fails when that is longer than
    CHASE_BACKLOG_ALERT_SECONDS."""
    from outcomes.followups.sending import claimable

    now = now or timezone.now()
    try:
        due = ContactAttempt.objects.filter(claimable(now))
        oldest = due.aggregate(since=Min(Coalesce("next_try_at", "created_at")))["since"]
        count = due.count() if oldest is not None else 0
    except Exception as error:  # noqa: BLE001
        return Check(False, {"error": _reason(error)})
    age = 0.0 if oldest is None else max((now - oldest).total_seconds(), 0.0)
    limit = settings.CHASE_BACKLOG_ALERT_SECONDS
    return Check(
        age <= limit,
        {"due": count, "oldest_due_seconds": round(age, 1), "alert_after_seconds": limit},
    )


def check_chase_sweep(now: datetime.datetime | None = None) -> Check:
    """The last chasing sweep finished within two intervals of the beat schedule."""
    now = now or timezone.now()
    interval = chase_interval_seconds()
    try:
        run = SweepRun.objects.filter(name=CHASE_SWEEP).first()
    except Exception as error:  # noqa: BLE001
        return Check(False, {"error": _reason(error)})
    if run is None:
        return Check(False, {"error": "no chasing sweep has finished yet", "interval": interval})
    age = (now - run.finished_at).total_seconds()
    return Check(
        age <= 2 * interval,
        {
            "last_finished_at": run.finished_at.isoformat(),
            "age_seconds": round(age, 1),
            "interval": interval,
        },
    )


def chase_interval_seconds() -> float:
    return float(settings.CELERY_BEAT_SCHEDULE["chase-followups"]["schedule"])


def readiness() -> dict[str, Check]:
    """What a web process needs to serve pages: the database, with this code's migrations."""
    checks = {"database": check_database()}
    if checks["database"].ok:
        checks["migrations"] = check_migrations()
    else:
        checks["migrations"] = Check(False, {"error": "database unreachable"})
    return checks


def chasing_health() -> dict[str, Check]:
    """What the background chasing needs, for alerting: the broker, a recent sweep (beat and a
    worker alive) and no message waiting too long."""
    return {
        "broker": check_broker(),
        "chase_sweep": check_chase_sweep(),
        "backlog": check_backlog(),
    }


# What still waits to go out, is being sent, or was refused (the follow-up is on the phone
# worklist). ``unknown`` is apart: only a person can tell whether it arrived.
UNSENT_STATUSES = [
    ContactAttempt.Status.PENDING,
    ContactAttempt.Status.SENDING,
    ContactAttempt.Status.FAILED,
]


@dataclass(frozen=True)
class OperationsStatus:
    last_sweep: SweepRun | None
    sweep_overdue: bool
    queue_depth: int | None
    broker_error: str
    unsent_attempts: int
    failed_attempts: int
    unknown_attempts: int
    backlog: Check
    unsent_filter: str = ",".join(UNSENT_STATUSES)
    unknown_filter: str = ContactAttempt.Status.UNKNOWN


def operations_status(*, user) -> OperationsStatus:
    """What the admin home page shows staff who oversee the chasing; message counts are
    limited to the user's sites, like the contact attempts list they link to."""
    run = SweepRun.objects.filter(name=CHASE_SWEEP).first()
    broker = check_broker()
    attempts = ContactAttempt.objects.filter(site__in=Site.objects.for_user(user))
    unsent = attempts.filter(status__in=UNSENT_STATUSES)
    return OperationsStatus(
        last_sweep=run,
        sweep_overdue=not check_chase_sweep().ok,
        queue_depth=broker.detail.get("queue_depth") if broker.ok else None,
        broker_error=broker.detail.get("error", ""),
        unsent_attempts=unsent.count(),
        failed_attempts=unsent.filter(status=ContactAttempt.Status.FAILED).count(),
        unknown_attempts=attempts.filter(status=ContactAttempt.Status.UNKNOWN).count(),
        backlog=check_backlog(),
    )


def _is_missing_queue(error: Exception) -> bool:
    # A queue nobody has published to yet does not exist on the broker: depth 0, not a failure.
    return type(error).__name__ == "ChannelError" or "NOT_FOUND" in str(error)


def _reason(error: Exception) -> str:
    """The kind of failure, for the public JSON; the message (host names, ports, users) goes to
    the log only, as ``/readyz`` answers anyone who can reach the server."""
    logger.warning("readiness check failed: %s: %s", type(error).__name__, error)
    return type(error).__name__
