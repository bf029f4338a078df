"""Reads that may come from a read replica (``DATABASE_REPLICA_URL``).

Only code that opts in with ``reading_from_replica()`` reads from the replica: the CSV exports,
the cohort report and the API's list views, the large reads that would otherwise compete with
data entry. Everything else, and every write (the export log included), goes to the primary,
so a user never reads back a stale copy of what they just saved.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

REPLICA = "replica"

_use_replica: ContextVar[bool] = ContextVar("use_replica", default=False)


@contextmanager
def reading_from_replica() -> Iterator[str]:
    """Route the ORM's reads in this block to the replica, when one is configured; yields the
    alias that raw SQL in the block should use."""
    token = _use_replica.set(True)
    try:
        yield read_alias()
    finally:
        _use_replica.reset(token)


def read_alias() -> str:
    if _use_replica.get() and REPLICA in settings.DATABASES:
        return REPLICA
    return DEFAULT_DB_ALIAS


class ReplicaRouter:
    def db_for_read(self, model, **hints) -> str:
        return read_alias()

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True  # the replica is a copy of the primary: same rows, same ids

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS  # the replica follows the primary's schema by replication
