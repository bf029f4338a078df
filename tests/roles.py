"""The application's database role in tests, and the statements it must never get through.

``app_role()`` creates a role of its own for the test (roles are shared by every database of
the server, and other checkouts test beside us), grants it what ``registry.roles`` grants the
shipped application role, and drops it afterwards. ``audit_attacks()`` lists, for every audit
table, what an attacker holding the application's credentials would try."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

from django.db import connection
from psycopg import sql

from registry.roles import audit_tables, grant_app_role


@contextlib.contextmanager
def app_role() -> Iterator[str]:
    name = f"registry_app_test_{secrets.token_hex(4)}"
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
    grant_app_role(name)
    try:
        yield name
    finally:
        # (inside a test's transaction, its rollback takes the role away with it)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                [name],
            )
            cursor.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            cursor.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def audit_attacks() -> list[str]:
    """TRUNCATE, DISABLE TRIGGER, DROP TRIGGER, UPDATE and DELETE on every audit table, each
    after switching pgtrigger's and pghistory's session settings as an attacker would."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE NOT t.tgisinternal AND c.relname = ANY(%s) ORDER BY 1, 2",
            [audit_tables()],
        )
        triggers: dict[str, list[str]] = {}
        for table, trigger in cursor.fetchall():
            triggers.setdefault(table, []).append(trigger)
    attacks = []
    for table, names in triggers.items():
        ignore = "SET LOCAL pgtrigger.ignore = '{" + ",".join(names) + "}';"
        settable = {"pghistory_context": "metadata", "api_exportlog": "rows"}.get(
            table, "pgh_id" if table.endswith("event") else "id"
        )
        attacks += [
            f"TRUNCATE {table}",
            f"TRUNCATE {table} CASCADE",
            f"ALTER TABLE {table} DISABLE TRIGGER ALL",
            f"ALTER TABLE {table} DISABLE TRIGGER {names[0]}",
            f"DROP TRIGGER {names[0]} ON {table}",
            f"{ignore} UPDATE {table} SET {settable} = {settable}",  # noqa: S608
            f"{ignore} DELETE FROM {table}",  # noqa: S608
        ]
    return attacks
