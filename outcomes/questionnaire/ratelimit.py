"""Rate limit on failed link requests per client address (design.md §6).

Only a keyed hash of the address is stored; counts live in fixed windows of
``QUESTIONNAIRE_BAD_LINK_WINDOW_SECONDS``.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac

from django.conf import settings
from django.db import connection

from outcomes.models import LinkFailure


def client_key(address: str) -> str:
    """A keyed hash of a client address: enough to count failures, useless to identify."""
    return hmac.new(
        settings.SECRET_KEY.encode(), f"client:{address}".encode(), hashlib.sha256
    ).hexdigest()


def _window_start(now: datetime.datetime) -> datetime.datetime:
    seconds = settings.QUESTIONNAIRE_BAD_LINK_WINDOW_SECONDS
    epoch = int(now.timestamp())
    return datetime.datetime.fromtimestamp(epoch - epoch % seconds, tz=datetime.UTC)


def link_failure_record(*, address: str, now: datetime.datetime) -> int:
    """Count one failed link request from ``address``; return the count in this window."""
    table = LinkFailure._meta.db_table
    with connection.cursor() as cursor:
        # One atomic statement, so concurrent requests from many processes count exactly.
        cursor.execute(
            f"""
            INSERT INTO {table} (client_key, window_start, count) VALUES (%s, %s, 1)
            ON CONFLICT (client_key, window_start)
            DO UPDATE SET count = {table}.count + 1
            RETURNING count
            """,  # noqa: S608 - the table name is ours, values are parameters
            [client_key(address), _window_start(now)],
        )
        return cursor.fetchone()[0]


def link_failures_exceeded(*, address: str, now: datetime.datetime) -> bool:
    return link_failure_record(address=address, now=now) > settings.QUESTIONNAIRE_BAD_LINK_LIMIT


def link_failures_prune(*, now: datetime.datetime) -> int:
    """Forget failure counts of windows that have ended."""
    deleted, _ = LinkFailure.objects.filter(window_start__lt=_window_start(now)).delete()
    return deleted
