"""Writes of the API app: tokens and the export log."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.utils import timezone
from knox.models import AuthToken

from api.models import ExportLog


def api_token_create(*, user) -> tuple[AuthToken, str]:
    """A new API token for ``user``: the stored row and the token itself, which is shown once
    and never stored (only its digest is). It expires after ``API_TOKEN_TTL_DAYS``."""
    return AuthToken.objects.create(
        user=user, expiry=datetime.timedelta(days=settings.API_TOKEN_TTL_DAYS)
    )


def api_tokens_revoke(*, user=None, tokens=None) -> int:
    """Revoke (delete) ``tokens``, or every token of ``user``; returns how many."""
    queryset = tokens if tokens is not None else AuthToken.objects.filter(user=user)
    count, _by_model = queryset.delete()
    return count


def export_log_start(*, user, kind: str, resource: str, filters: dict) -> ExportLog:
    return ExportLog.objects.create(user=user, kind=kind, resource=resource, filters=filters)


def export_log_finish(*, log: ExportLog, rows: int, completed: bool) -> None:
    log.rows = rows
    log.completed = completed
    log.finished_at = timezone.now()
    log.save(update_fields=["rows", "completed", "finished_at"])


def export_log_read(*, user, resource: str, filters: dict, rows: int) -> ExportLog:
    """A completed API read of ``rows`` rows (one page, or one object)."""
    now = timezone.now()
    return ExportLog.objects.create(
        user=user,
        kind=ExportLog.Kind.READ,
        resource=resource,
        filters=filters,
        rows=rows,
        completed=True,
        started_at=now,
        finished_at=now,
    )
