"""Locked records and signatures, enforced by PostgreSQL on every clinical table.

A record is a patient with everything recorded about them (the patient row, procedures,
treated levels, complications and questionnaire responses), or one follow-up's data (the
response of one procedure's timepoint). While a record has an active lock
(``registry.models.RecordLock``), every write that would change it is refused by the
database itself, whichever door it comes through: the admin, the import, the questionnaire,
a shell, raw SQL or ``COPY``. A signature (``Signature``) over a record is voided, in the same
statement, by any later change to it.

One statement-level trigger per table and operation does both: it sees the rows the statement
wrote (transition tables), finds the records they belong to, refuses the statement when one is
locked and voids the active signatures over them. Columns that are stored copies of derived
values (``registry.derived``) and the ``updated_at`` stamp are not data: an update that changes
only those is not a change, so recomputing a cohort never trips a lock. Setting the date of a
withdrawal of consent is allowed on a locked patient: withdrawal is the patient's right at any
time (GDPR art. 7(3)) and stops the chasing (``outcomes.models.patient_emailable``); changing or
clearing a recorded withdrawal is refused like any other change.
"""

from __future__ import annotations

import pgtrigger
from django.db import DatabaseError

LOCK_CONSTRAINT = "record_locked"
OLD_ROWS = "old_rows"
NEW_ROWS = "new_rows"

# Columns whose change is not a change of the record's data, on every table.
NOT_DATA = ("created_at", "updated_at")

# SELECT (patient_id, procedure_id, timepoint) of the rows of ``{rows}`` (aliased ``r``):
# the records they belong to. procedure_id and timepoint are set for questionnaire responses
# only, which can also be locked one follow-up at a time.
PATIENT_KEYS = "SELECT r.id, NULL::bigint, NULL::varchar FROM {rows} AS r"
PATIENT_FK_KEYS = "SELECT r.patient_id, NULL::bigint, NULL::varchar FROM {rows} AS r"
PROCEDURE_FK_KEYS = (
    "SELECT p.patient_id, NULL::bigint, NULL::varchar FROM {rows} AS r "
    'JOIN "registry_procedure" AS p ON p.id = r.procedure_id'
)
TIMEPOINT_KEYS = (
    "SELECT p.patient_id, r.procedure_id, r.timepoint::varchar FROM {rows} AS r "
    'JOIN "registry_procedure" AS p ON p.id = r.procedure_id'
)

# A lock or signature covers the key: a whole-patient one, or the one follow-up's.
COVERS = (
    "{t}.patient_id = k.patient_id AND ({t}.procedure_id IS NULL "
    "OR ({t}.procedure_id = k.procedure_id AND {t}.timepoint = k.timepoint))"
)


class RecordGuard(pgtrigger.Trigger):
    """After a statement writes rows of a clinical table: refuse it when a row belongs to a
    locked record, else void the signatures over the records it changed."""

    level = pgtrigger.Statement
    when = pgtrigger.After

    def __init__(
        self,
        *,
        name: str,
        operation: pgtrigger.Operation,
        keys: str,
        not_data: tuple[str, ...],
        also_changed: str = "",
    ) -> None:
        tables = {
            pgtrigger.Insert: {"new": NEW_ROWS},
            pgtrigger.Update: {"old": OLD_ROWS, "new": NEW_ROWS},
            pgtrigger.Delete: {"old": OLD_ROWS},
        }[operation]
        self.operation_ = operation
        self.keys = keys
        self.not_data = (*NOT_DATA, *not_data)
        self.also_changed = also_changed
        super().__init__(
            name=name,
            operation=operation,
            referencing=pgtrigger.Referencing(**tables),
            declare=[("locked_patient", "bigint")],
        )

    def _rows(self) -> list[str]:
        """The relations holding the written rows that change data (each aliased later)."""
        if self.operation_ == pgtrigger.Insert:
            return [NEW_ROWS]
        if self.operation_ == pgtrigger.Delete:
            return [OLD_ROWS]
        ignored = "ARRAY[" + ", ".join(f"'{c}'" for c in self.not_data) + "]::text[]"
        changed = f"(to_jsonb(n) - {ignored}) IS DISTINCT FROM (to_jsonb(o) - {ignored})"
        if self.also_changed:
            changed = f"({changed} OR {self.also_changed})"
        join = f"{NEW_ROWS} AS n JOIN {OLD_ROWS} AS o ON o.id = n.id WHERE {changed}"
        return [f"(SELECT n.* FROM {join})", f"(SELECT o.* FROM {join})"]  # noqa: S608

    def get_func(self, model) -> str:
        # Our own table, column and transition-table names only: no input reaches this SQL.
        keys = " UNION ALL ".join(self.keys.format(rows=rows) for rows in self._rows())
        keyed = f"({keys}) AS k(patient_id, procedure_id, timepoint)"
        return f"""
-- Nothing locked or signed anywhere (the usual case, and every bulk load): one index probe.
IF NOT EXISTS (SELECT 1 FROM "registry_recordlock" WHERE "unlocked_at" IS NULL)
   AND NOT EXISTS (SELECT 1 FROM "registry_signature" WHERE "voided_at" IS NULL) THEN
    RETURN NULL;
END IF;
SELECT k.patient_id INTO locked_patient FROM {keyed}
JOIN "registry_recordlock" AS l ON l."unlocked_at" IS NULL AND {COVERS.format(t="l")}
LIMIT 1;
IF locked_patient IS NOT NULL THEN
    RAISE EXCEPTION 'the record of patient % is locked: a data manager must unlock it, with a reason, before it can change',
        coalesce(
            (SELECT "registry_id" FROM "registry_patient" WHERE "id" = locked_patient),
            locked_patient::text
        )
        USING ERRCODE = 'check_violation', CONSTRAINT = '{LOCK_CONSTRAINT}';
END IF;
UPDATE "registry_signature" AS s
SET "voided_at" = now(), "void_reason" = 'the signed data changed after signing'
FROM {keyed}
WHERE s."voided_at" IS NULL AND {COVERS.format(t="s")};
RETURN NULL;"""  # noqa: S608, E501


def record_guards(keys: str, *, not_data: tuple[str, ...] = (), also_changed: str = ""):
    """The three guards (insert, update, delete) of one clinical table; ``keys`` selects the
    records of the written rows (``PATIENT_KEYS`` …), ``not_data`` names the table's stored
    derived columns."""
    return [
        RecordGuard(
            name=f"record_guard_on_{label}",
            operation=operation,
            keys=keys,
            not_data=not_data,
            also_changed=also_changed,
        )
        for label, operation in [
            ("insert", pgtrigger.Insert),
            ("update", pgtrigger.Update),
            ("delete", pgtrigger.Delete),
        ]
    ]


def is_lock_refusal(error: BaseException) -> bool:
    """Whether a database error is the refusal of a change to a locked record."""
    if not isinstance(error, DatabaseError):
        return False
    diag = getattr(getattr(error, "__cause__", None), "diag", None)
    return getattr(diag, "constraint_name", None) == LOCK_CONSTRAINT


def is_guarded(model) -> bool:
    """Whether ``model``'s table has the record guards (its rows belong to lockable records)."""
    return any(t.name == "record_guard_on_update" for t in model._meta.triggers)


def record_key(obj) -> tuple[int, int | None, str] | None:
    """(patient id, procedure id, timepoint) of the record a clinical row belongs to, the
    procedure and timepoint only for a row of one follow-up (a questionnaire response)."""
    if not is_guarded(type(obj)):
        return None
    if obj._meta.model_name == "patient":
        return (obj.pk, None, "") if obj.pk else None
    if getattr(obj, "patient_id", None):
        patient_id = obj.patient_id
    elif getattr(obj, "procedure_id", None):
        patient_id = obj.procedure.patient_id
    else:
        return None
    timepoint = getattr(obj, "timepoint", "") or ""
    return patient_id, (obj.procedure_id if timepoint else None), timepoint
