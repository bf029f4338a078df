"""Append-only audit tables that no statement of the application's role can rewrite.

django-pgtrigger's trigger functions first ask ``_pgtrigger_should_ignore(TG_NAME)``, which
reads the session setting ``pgtrigger.ignore``; any role may set that custom setting
(``SET LOCAL pgtrigger.ignore = '{pgtrigger_append_only_…}'``) and then UPDATE or DELETE the
rows a ``pgtrigger.Protect`` trigger was meant to guard. The triggers here compile to the same
SQL without that check: their function consults no session setting at all, so the refusal
holds for every role that may write the table, including one with UPDATE and DELETE
privileges. (The shipped application role has neither on these tables: ``deploy/roles.sql``.)
"""

from __future__ import annotations

from typing import Any

import pghistory
import pgtrigger
from pgtrigger import compiler


class StrictTriggerSql(compiler.UpsertTriggerSql):
    """pgtrigger's installation template (v1) without the ``pgtrigger.ignore`` look-up.

    Migrations name this class, so the template is versioned like pgtrigger's own: do not edit
    it in place; add a new class if it ever has to change."""

    def get_template(self) -> str:
        return """
            CREATE OR REPLACE FUNCTION {pgid}()
            RETURNS TRIGGER AS $$
                {declare}
                BEGIN
                    {func}
                END;
            $$ LANGUAGE plpgsql;

            DROP TRIGGER IF EXISTS {pgid} ON {table};
            CREATE {constraint} TRIGGER {pgid}
                {when} {operation} ON {table}
                {timing}
                {referencing}
                FOR EACH {level} {condition}
                EXECUTE PROCEDURE {execute};

            COMMENT ON TRIGGER {pgid} ON {table} IS '{hash}';
        """


class StrictTrigger(pgtrigger.Trigger):
    """``pgtrigger.Trigger`` whose function consults no session setting (no
    ``pgtrigger.ignore``): for rules that guard a table against the application's own role."""

    def compile(self, model) -> compiler.Trigger:
        compiled = super().compile(model)
        kwargs: dict[str, Any] = dict(compiled.sql.kwargs)
        kwargs.pop("ignore_func_name", None)
        return compiler.Trigger(name=compiled.name, sql=StrictTriggerSql(**kwargs))


class Refuse(pgtrigger.Protect):
    """``pgtrigger.Protect`` whose refusal cannot be switched off by a session setting."""

    def get_func(self, model):
        return (
            "RAISE EXCEPTION 'The audit trail cannot be changed: % on % refused.',"
            " TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';"
        )

    def compile(self, model) -> compiler.Trigger:
        compiled = super().compile(model)
        kwargs: dict[str, Any] = dict(compiled.sql.kwargs)
        kwargs.pop("ignore_func_name", None)
        return compiler.Trigger(name=compiled.name, sql=StrictTriggerSql(**kwargs))


def append_only() -> Refuse:
    """The trigger every audit (pghistory event) table carries: no UPDATE, no DELETE."""
    return Refuse(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete)


def track(*trackers, **kwargs):
    """``pghistory.track`` whose event table is append-only by ``append_only()``.

    ``PGHISTORY_APPEND_ONLY`` stays off: pghistory's own protection is a ``pgtrigger.Protect``
    that the caller can switch off with ``pgtrigger.ignore``."""
    meta = dict(kwargs.pop("meta", None) or {})
    meta["triggers"] = [*meta.get("triggers", []), append_only()]
    return pghistory.track(*trackers, append_only=False, meta=meta, **kwargs)
