"""Stored copies of derived values, kept right by PostgreSQL from the one rule in Python.

A procedure's cohort (``registry.models.procedure_cohort``) and a patient's index procedure
(``registry.models.index_procedures``) are defined once, as ORM expressions; the UPDATEs that
store them (``registry.models.procedure_cohort_sql``, ``patient_index_sql``, their row forms
``procedure_cohort_row_sql`` and ``patient_index_row_sql``, and ``recompute_all``) are
compiled from them there, by ``compile_expression`` here. This module is
the machinery only and imports no model, so the models can use it. Lists that filter,
sort and count by them at a million treated levels need them stored and indexed:
``Procedure.cohort``, ``Patient.index_procedure`` and ``Patient.index_cohort``.

Statement-level triggers recompute them for exactly the rows a statement touched, whatever
wrote the rows: the admin, the import, the API, a data migration, raw SQL or ``COPY``. Their
bodies are compiled from those same expressions when migrations are made, so the SQL is never
written twice by hand: change the rule and ``makemigrations --check`` (part of CI's lint) fails
until a migration installs the trigger compiled from the new rule.

They are owned by the database: a row trigger on their own table (``KeepDerived``) recomputes
them from the rule whenever an INSERT or UPDATE would store anything else, so a stale
instance's ``save()``, a ``bulk_update()`` or a ``QuerySet.update()`` that names them, or raw
SQL, cannot store a wrong value; and the models never send them (``DerivedColumnsMixin``).

The chain: a level written → its procedure's ``cohort`` → that patient's index procedure and
index cohort. An UPDATE that would change nothing is skipped, so no history event or
``updated_at`` bump is written for it. Each trigger first locks the rows it recomputes, so two
transactions changing one procedure's levels at once recompute one after the other, the
second counting the first's levels.
"""

from __future__ import annotations

import pgtrigger
from django.db import DEFAULT_DB_ALIAS

OLD_ROWS = "old_rows"
NEW_ROWS = "new_rows"


def _literal(value) -> str:
    """A parameter written into trigger SQL; the rules only ever pass choice values."""
    if not isinstance(value, str):
        raise TypeError(f"only text parameters can be written into trigger SQL, not {value!r}")
    return "'" + value.replace("'", "''") + "'"


def compile_expression(model, expression) -> str:
    """``expression`` as SQL over ``model``'s table (columns as ``"table"."column"``), with its
    parameters written in: a trigger body takes no parameters."""
    query = model._base_manager.all().query
    compiler = query.get_compiler(using=DEFAULT_DB_ALIAS)
    sql, params = compiler.compile(expression.resolve_expression(query))
    return sql % tuple(_literal(param) for param in params)


class Recompute(pgtrigger.Trigger):
    """After a statement inserts, updates or deletes rows, recompute the stored values of the
    rows that ``key`` (a column of the written table) points to, by ``set_sql``.

    One trigger per operation: PostgreSQL allows transition tables on single-event triggers
    only.
    """

    level = pgtrigger.Statement
    when = pgtrigger.After

    def __init__(
        self, *, name: str, operation: pgtrigger.Operation, key: str, target: str, set_sql
    ) -> None:
        tables = {
            pgtrigger.Insert: {"new": NEW_ROWS},
            pgtrigger.Update: {"old": OLD_ROWS, "new": NEW_ROWS},
            pgtrigger.Delete: {"old": OLD_ROWS},
        }[operation]
        self.transition_tables = list(tables.values())
        self.key = key
        self.target = target
        self.set_sql = set_sql
        super().__init__(
            name=name, operation=operation, referencing=pgtrigger.Referencing(**tables)
        )

    def get_func(self, model) -> str:
        # Identifiers of our own (a column, the transition tables): no input reaches this SQL.
        ids = " UNION ".join(
            f"SELECT {self.key} FROM {table}"  # noqa: S608
            for table in self.transition_tables
        )
        # Lock the rows to recompute first (in id order), then recompute in a new statement:
        # in READ COMMITTED each statement of the function takes a new snapshot, so a
        # transaction that changed the same procedure's levels concurrently has committed by
        # then and its levels are counted. Without the lock, the later writer could store a
        # cohort computed from a snapshot that missed the other's levels.
        lock = f'PERFORM 1 FROM "{self.target}" WHERE "id" IN ({ids}) ORDER BY "id" FOR UPDATE;'
        return f"{lock}\n{self.set_sql(ids)}\nRETURN NULL;"


def recompute_triggers(prefix: str, *, key: str, target: str, set_sql) -> list[Recompute]:
    """The three triggers (insert, update, delete) that run ``set_sql`` for the rows of the
    table ``target`` that ``key`` points to."""
    return [
        Recompute(
            name=f"{prefix}_on_{operation.lower()}",
            operation=op,
            key=key,
            target=target,
            set_sql=set_sql,
        )
        for operation, op in [
            ("INSERT", pgtrigger.Insert),
            ("UPDATE", pgtrigger.Update),
            ("DELETE", pgtrigger.Delete),
        ]
    ]


class KeepDerived(pgtrigger.Trigger):
    """Before a row is inserted, or updated with new values in ``columns``, set those columns
    from the rule (``set_sql``): whatever the statement says, the stored value is the rule's.

    An UPDATE that leaves the columns alone costs nothing more: they are right already, kept
    so by the ``Recompute`` triggers whenever the rows they derive from change. The statement
    triggers' own UPDATEs pass through here too and store the same value.
    """

    when = pgtrigger.Before
    operation = pgtrigger.Insert | pgtrigger.Update

    def __init__(self, *, name: str, columns: tuple[str, ...], set_sql) -> None:
        self.columns = columns
        self.set_sql = set_sql
        super().__init__(name=name)

    def get_func(self, model) -> str:
        changed = " OR ".join(f'NEW."{c}" IS DISTINCT FROM OLD."{c}"' for c in self.columns)
        return f"IF TG_OP = 'INSERT' OR {changed} THEN\n    {self.set_sql()}\nEND IF;\nRETURN NEW;"


class DerivedColumnsMixin:
    """Model mixin: ``save()`` never sends the columns the database derives.

    An UPDATE lists every other loaded field, so a stale instance cannot write back the value it
    read (``KeepDerived`` would correct it, but the statement should not try); a row deleted
    meanwhile makes the save fail rather than insert it again. After any save the derived
    attributes are unloaded, so the next read fetches what the database stored.
    """

    derived_fields: tuple[str, ...] = ()

    def save(self, *args, update_fields=None, **kwargs):
        adding = self._state.adding or kwargs.get("force_insert")
        if not adding:
            derived = set(self.derived_fields)
            if update_fields is None:
                deferred = self.get_deferred_fields()
                update_fields = [
                    field.name
                    for field in self._meta.concrete_fields
                    if not field.primary_key
                    and not field.generated
                    and field.name not in derived
                    and field.attname not in deferred
                ]
            else:
                update_fields = [
                    name for name in update_fields if self._meta.get_field(name).name not in derived
                ]
                if not update_fields:
                    return
        super().save(*args, update_fields=update_fields, **kwargs)
        for name in self.derived_fields:
            field = self._meta.get_field(name)
            self.__dict__.pop(field.attname, None)
            if field.is_relation and field.is_cached(self):
                field.delete_cached_value(self)
