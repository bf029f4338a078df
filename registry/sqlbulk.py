"""Set-based writes of many rows in one statement.

``QuerySet.bulk_update`` writes a batch as one ``UPDATE … SET col = CASE WHEN id = 1 THEN …``
per column, and building those expressions in Python costs far more than PostgreSQL's work:
under cProfile 91 % of the chasing sweep's time was ``bulk_update`` compiling CASE/WHEN
(issue 32). ``rows_update`` sends the same values as one array per column and lets PostgreSQL
join them (``UPDATE … FROM unnest(…)``): the SQL text is the same whatever the batch's size, and
Python only lists values. Row triggers (history, ``updated_at``) fire per row exactly as for
``bulk_update``, since the same rows get the same values.

``rows_insert`` is its counterpart for ``bulk_create``: one ``INSERT … SELECT FROM unnest(…)``
with the values ``bulk_create`` would send (defaults and ``auto_now_add`` included), in SQL
whose text does not depend on the number of rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models


def _param(value):
    # Choices members are str subclasses; psycopg picks a list's type from its elements.
    return str(value) if isinstance(value, str) else value


def rows_update(model: type[models.Model], objs: Sequence, fields: list[str]) -> int:
    """Write ``fields`` of every object in ``objs`` (saved rows of ``model``: instances, or any
    objects with ``pk`` and the fields as attributes) in one ``UPDATE … FROM unnest(…)``;
    return the number of rows updated. Like ``bulk_update`` it
    calls no ``save()`` and sends no signals."""
    if not objs:
        return 0
    meta = model._meta
    pk = meta.pk
    columns = [meta.get_field(name) for name in fields]
    arrays = [[obj.pk for obj in objs]] + [
        [_param(field.get_db_prep_value(getattr(obj, field.attname), connection)) for obj in objs]
        for field in columns
    ]
    quote = connection.ops.quote_name
    casts = ", ".join(
        f"%s::{field.rel_db_type(connection) if field is pk else field.db_type(connection)}[]"
        for field in [pk, *columns]
    )
    names = ", ".join(quote(field.column) for field in [pk, *columns])
    assignments = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in columns)
    sql = (
        f"UPDATE {quote(meta.db_table)} AS t SET {assignments} "  # noqa: S608 - our names
        f"FROM unnest({casts}) AS v({names}) WHERE t.{quote(pk.column)} = v.{quote(pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, arrays)
        return cursor.rowcount


def _array_type(field) -> str:
    return f"{field.db_type(connection)}[]"


def rows_insert(model: type[models.Model], objs: Sequence[models.Model]) -> int:
    """Insert ``objs`` (unsaved instances of ``model``) in one ``INSERT … SELECT FROM
    unnest(…)``, every concrete column but the primary key taking the value ``bulk_create``
    would send (``pre_save``: defaults, ``auto_now_add``); return the number of rows inserted.
    No ``ON CONFLICT``: a unique constraint refuses the whole statement. Like ``bulk_create``
    it calls no ``save()`` and sends no signals; it leaves the primary keys of ``objs``
    unset."""
    if not objs:
        return 0
    meta = model._meta
    columns = [field for field in meta.concrete_fields if not field.primary_key]
    arrays = [
        [_param(field.get_db_prep_save(field.pre_save(obj, True), connection)) for obj in objs]
        for field in columns
    ]
    quote = connection.ops.quote_name
    names = ", ".join(quote(field.column) for field in columns)
    casts = ", ".join(f"%s::{_array_type(field)}" for field in columns)
    sql = f"INSERT INTO {quote(meta.db_table)} ({names}) SELECT * FROM unnest({casts})"  # noqa: S608 - our names
    with connection.cursor() as cursor:
        cursor.execute(sql, arrays)
        return cursor.rowcount
