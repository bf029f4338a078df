"""Readiness checks (``/readyz``) and the operations figures on the admin home page.

Each check returns a ``Check``; the registry is ready when every one passes. None of them
raises: a failing dependency is reported, with the reason, never turned into a 500.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from outcomes.models import ContactAttempt, SweepRun
from registry.models import Site

logger = logging.getLogger(__name__)

CHASE_SWEEP = "chase_followups"
BROKER_TIMEOUT_SECONDS = 2.0
DEFAULT_QUEUE = "celery"


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
    from registry.project.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_SECONDS)
            # The Redis transport connects lazily; declaring the queue passively talks to it.
            depth = conn.default_channel.queue_declare(
                queue=DEFAULT_QUEUE, passive=True
            ).message_count
    except Exception as error:  # noqa: BLE001
        if _is_missing_queue(error):
            return Check(True, {"queue_depth": 0})
        return Check(False, {"error": _reason(error)})
    return Check(True, {"queue_depth": depth})


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
    checks = {"database": check_database()}
    if checks["database"].ok:
        checks["migrations"] = check_migrations()
    else:
        checks["migrations"] = Check(False, {"error": "database unreachable"})
    checks["broker"] = check_broker()
    checks["chase_sweep"] = check_chase_sweep()
    return checks


# Every status but the two ends where nothing is left to do: what still waits to go out, is
# being sent, or failed and needs staff.
UNSENT_STATUSES = [
    status
    for status in ContactAttempt.Status.values
    if status not in (ContactAttempt.Status.SENT, ContactAttempt.Status.SKIPPED)
]


@dataclass(frozen=True)
class OperationsStatus:
    last_sweep: SweepRun | None
    sweep_overdue: bool
    queue_depth: int | None
    broker_error: str
    unsent_attempts: int
    failed_attempts: int
    unsent_filter: str = ",".join(UNSENT_STATUSES)


def operations_status(*, user) -> OperationsStatus:
    """What the admin home page shows staff who oversee the chasing; message counts are
    limited to the user's sites, like the contact attempts list they link to."""
    run = SweepRun.objects.filter(name=CHASE_SWEEP).first()
    broker = check_broker()
    unsent = ContactAttempt.objects.filter(
        status__in=UNSENT_STATUSES, site__in=Site.objects.for_user(user)
    )
    return OperationsStatus(
        last_sweep=run,
        sweep_overdue=not check_chase_sweep().ok,
        queue_depth=broker.detail.get("queue_depth") if broker.ok else None,
        broker_error=broker.detail.get("error", ""),
        unsent_attempts=unsent.count(),
        failed_attempts=unsent.filter(status=ContactAttempt.Status.FAILED).count(),
    )


def _is_missing_queue(error: Exception) -> bool:
    # A queue nobody has published to yet does not exist on the broker: depth 0, not a failure.
    return type(error).__name__ == "ChannelError" or "NOT_FOUND" in str(error)


def _reason(error: Exception) -> str:
    """The kind of failure, for the public JSON; the message (host names, ports, users) goes to
    the log only, as ``/readyz`` answers anyone who can reach the server."""
    logger.warning("readiness check failed: %s: %s", type(error).__name__, error)
    return type(error).__name__
